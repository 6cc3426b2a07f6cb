"""feedwatch: watch RSS/Atom feeds with explainable rules and deliver alerts."""

import sys

# httpx imports its own command-line tool (click, pygments, rich: ~80 ms and several MB) whenever those
# happen to be installed; feedwatch never runs it, and httpx carries on without it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# The one place the version is written (pyproject.toml reads it from here): a constant, because asking
# importlib.metadata costs every command ~25 ms at start.
__version__ = "0.1.0"
