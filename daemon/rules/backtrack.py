"""Spot regex shapes known to backtrack catastrophically, for `feedwatch check` to warn about. Pure.

A backtracking engine tries every way a text can be split among the parts of a repeated group that can
match the same characters in more than one way: ``(a+)+$`` on thirty ``a`` and a ``!`` is 2**30 tries.
Two shapes cause nearly all of it: a variable quantifier inside another (``(a+)+``, ``(\\w+\\s?)*``,
``(.*x){9}``), and a repeated alternation whose branches can start on the same character (``(a|aa)+``,
``(\\d+|\\w+)*``). This is a heuristic that warns; the matcher's time budget is the protection.
"""

from __future__ import annotations

import re
from typing import Any

from daemon.rules.sre import parse_pattern

__all__ = ["backtrack_risk"]

_ANY = ("any",)
_EMPTY = ("empty",)  # the sequence can match the empty string
_CATEGORY_RE = {
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_SPACE": re.compile(r"\s"),
}
_CATEGORIES_APART = {frozenset({"CATEGORY_WORD", "CATEGORY_SPACE"}), frozenset({"CATEGORY_DIGIT", "CATEGORY_SPACE"})}
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")
Atom = tuple[Any, ...]


def backtrack_risk(pattern: str, flags: int = 0) -> str | None:
    """Why ``pattern`` may backtrack catastrophically, or None when no known shape is found."""
    parsed = parse_pattern(pattern, flags)
    if parsed is None:
        return None
    return _walk(list(parsed), bool(flags & re.IGNORECASE))


def _walk(seq: list[Any], nocase: bool) -> str | None:
    for op, av in seq:
        name = str(op)
        if name in _REPEATS:
            _low, high, body = av
            if high > 1:
                reason = _nested(list(body), _first(list(body), nocase), nocase)
                reason = reason or _ambiguous(list(body), list(body), nocase)
                if reason:
                    return reason
            if reason := _walk(list(body), nocase):
                return reason
        for sub in _children(name, av):
            if reason := _walk(sub, nocase):
                return reason
    return None


def _children(name: str, av: Any) -> list[list[Any]]:
    if name == "SUBPATTERN":
        return [list(av[3])]
    if name == "BRANCH":
        return [list(a) for a in av[1]]
    if name in ("ATOMIC_GROUP",):
        return []  # no backtracking into an atomic group
    if name in ("ASSERT", "ASSERT_NOT"):
        return [list(av[1])]
    if name == "GROUPREF_EXISTS":
        return [list(x) for x in av[1:] if x is not None]
    return []


def _nested(seq: list[Any], after: set[Atom], nocase: bool) -> str | None:
    """A variable quantifier inside a repeated body whose next character could also be its own:
    then the text can be split among the repetitions in many ways (``(a+)+``, ``(\\w+\\s?)*``), while
    ``(\\w+ ){0,2}`` splits only one way. ``after`` is what may follow ``seq`` (the next repetition).
    """
    for i, (op, av) in enumerate(seq):
        name = str(op)
        rest = seq[i + 1 :]
        follow = _first(rest, nocase) | (after if _nullable(rest) else set())
        if name in _REPEATS:
            low, high, inner = av
            own = _first(list(inner), nocase)
            if high > 1 and low != high and any(_atoms_meet(x, y) for x in own for y in follow):
                return "a quantifier nested in another (as in (a+)+) can make it backtrack catastrophically"
            if reason := _nested(list(inner), own | follow, nocase):
                return reason
        for sub in _children(name, av):
            if reason := _nested(sub, follow, nocase):
                return reason
    return None


def _nullable(seq: list[Any]) -> bool:
    for op, av in seq:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "SUBPATTERN" and _nullable(list(av[3])):
            continue
        if name == "BRANCH" and any(_nullable(list(a)) for a in av[1]):
            continue
        if name in _REPEATS and (av[0] == 0 or _nullable(list(av[2]))):
            continue
        return False
    return True


def _ambiguous(seq: list[Any], body: list[Any], nocase: bool) -> str | None:
    """An alternation in a repeated body whose branches can begin on the same character."""
    for op, av in seq:
        name = str(op)
        if name == "BRANCH":
            # An empty branch is followed by the next repetition of the body.
            starts = [_first(list(a), nocase) or _first(body, nocase) for a in av[1]]
            for i, a in enumerate(starts):
                for b in starts[i + 1 :]:
                    if _overlap(a, b):
                        return (
                            "alternatives that can match the same text inside a repetition (as in (a|aa)+) "
                            "can make it backtrack catastrophically"
                        )
        for sub in _children(name, av):
            if reason := _ambiguous(sub, body, nocase):
                return reason
    return None


def _first(seq: list[Any], nocase: bool) -> set[Atom]:
    """Atoms the sequence can begin with; empty when it can match the empty string only."""
    out: set[Atom] = set()
    for op, av in seq:
        name = str(op)
        nullable = False
        if name == "LITERAL":
            out.add(("char", chr(av).casefold() if nocase else chr(av)))
        elif name == "IN":
            out |= _class(av, nocase)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            nullable = True  # zero width
        elif name == "SUBPATTERN":
            inner = _first(list(av[3]), nocase)
            out |= inner
            nullable = not inner or _EMPTY in inner
        elif name == "BRANCH":
            for alt in av[1]:
                inner = _first(list(alt), nocase)
                out |= inner
                nullable |= not inner or _EMPTY in inner
        elif name in _REPEATS:
            inner = _first(list(av[2]), nocase)
            out |= inner
            nullable = av[0] == 0 or not inner
        else:
            out.add(_ANY)  # ANY, NOT_LITERAL, GROUPREF, atomic groups: anything may come first
        if not nullable:
            out.discard(_EMPTY)
            return out
    out.discard(_EMPTY)
    return out


def _class(items: Any, nocase: bool) -> set[Atom]:
    out: set[Atom] = set()
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            return {_ANY}
        if name == "LITERAL":
            out.add(("char", chr(av).casefold() if nocase else chr(av)))
        elif name == "RANGE":
            out.add(("range", av[0], av[1]))
        elif name == "CATEGORY" and str(av) in _CATEGORY_RE:
            out.add(("cat", str(av)))
        else:
            out.add(_ANY)
    return out


def _overlap(a: set[Atom], b: set[Atom]) -> bool:
    if not a or not b:
        return True  # two ways to match nothing
    return any(_atoms_meet(x, y) for x in a for y in b)


def _atoms_meet(x: Atom, y: Atom) -> bool:
    if x == _ANY or y == _ANY:
        return True
    if x[0] == "cat" and y[0] == "cat":
        return frozenset({x[1], y[1]}) not in _CATEGORIES_APART
    if x[0] != "char":
        x, y = y, x
    if x[0] == "char":
        ch = x[1]
        if y[0] == "char":
            return bool(ch == y[1])
        if y[0] == "range":
            return bool(y[1] <= ord(ch) <= y[2])
        return _CATEGORY_RE[y[1]].match(ch) is not None
    if x[0] == "range" and y[0] == "range":
        return bool(x[1] <= y[2] and y[1] <= x[2])
    return True  # a range against a category: assume they meet
