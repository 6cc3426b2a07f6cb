"""The standard library's regex parser, reached in one guarded place.

``re._parser`` (``sre_parse`` before Python 3.11) is private: a Python release may move or change it.
The matcher (required literals, a prefilter) and the check for backtracking patterns (a warning) are
both optional refinements, so when the parser is missing or its output has changed shape they get None
and carry on without it rather than fail.
"""

from __future__ import annotations

import re
from typing import Any

_parse: Any = getattr(getattr(re, "_parser", None), "parse", None)


def parse_pattern(pattern: str, flags: int = 0) -> list[Any] | None:
    """The top-level sequence of (opcode, argument) pairs of ``pattern``, or None when unavailable."""
    if _parse is None:
        return None
    try:
        return list(_parse(pattern, flags))
    except re.error:
        return None
    except (AttributeError, TypeError, ValueError):  # a changed private API: do without
        return None
