"""The standard library's regex parser, reached in one guarded place.

``re._parser`` (``sre_parse`` before Python 3.11) is private: a Python release may move or change it.
The matcher's prefilter (:func:`required_literals`) and the check for backtracking patterns (a warning) are
both optional refinements, so when the parser is missing or its output has changed shape they get None
and carry on without it rather than fail.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_pattern", "required_literals"]

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


_MIN_LITERAL = 3


def required_literals(pattern: str, flags: int, case: bool) -> frozenset[str] | None:
    """Strings of which at least one occurs in any text ``pattern`` matches, or None if unknown.

    Walks the parsed pattern's top-level sequence: a run of literal characters is required, and so is
    a group that is an alternation of pure literals. The candidate whose shortest literal is longest
    wins. Case-insensitive literals are lower-cased, like the folded text they are checked against.
    """
    parsed = parse_pattern(pattern, flags)
    if parsed is None:
        return None
    if case and flags & re.IGNORECASE:
        return None  # matched against cased text, yet ignoring case: a substring test would not do
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) >= _MIN_LITERAL:
            candidates.append(frozenset({"".join(run)}))
        run.clear()

    for op, av in parsed:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        close_run()
        branch = None
        if name == "BRANCH":  # a non-capturing group (?:a|b), or the whole pattern
            branch = _literal_branch([(op, av)])
        elif name == "SUBPATTERN" and not av[1] and not av[2]:
            branch = _literal_branch(av[3])
        if branch is not None:
            candidates.append(branch)
    close_run()
    candidates = [c for c in candidates if min(len(x) for x in c) >= _MIN_LITERAL]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: min(len(x) for x in c))
    return best if case else frozenset(x.casefold() for x in best)


def _literal_branch(sub: Any) -> frozenset[str] | None:
    """The alternatives of a group like ``(?:fighting|hostilities)`` when each is a pure literal."""
    items = list(sub)
    if len(items) != 1 or str(items[0][0]) != "BRANCH":
        return None
    out = set()
    for alternative in items[0][1][1]:
        chars = []
        for op, av in alternative:
            if str(op) != "LITERAL":
                return None
            chars.append(chr(av))
        out.add("".join(chars))
    return frozenset(out)
