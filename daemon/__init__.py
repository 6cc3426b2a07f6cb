"""feedwatch: watch RSS/Atom feeds with explainable rules and deliver alerts."""

# The one place the version is written (pyproject.toml reads it from here): a constant, because asking
# importlib.metadata costs every command ~25 ms at start.
__version__ = "0.1.0"
