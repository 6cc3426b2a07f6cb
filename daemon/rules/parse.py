"""Turn the tables of one rule file into the immutable types of ``daemon.rules``.

Every mistake is recorded on the ``Checker`` (with file:line:column) rather than raised, so one pass
reports all of a file's errors.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

from daemon.models import FIELDS, Severity
from daemon.rules.check import Checker
from daemon.rules.ruleset import (
    DEFAULT_FIELD_FACTORS,
    DEFAULT_GROUP_WEIGHT,
    DEFAULT_THRESHOLD,
    Example,
    FieldFactors,
    Group,
    Proximity,
    Rule,
    SeverityBands,
    Term,
)
from daemon.rules.terms import parse_terms, warn_duplicates
from daemon.util.durations import parse_duration
from daemon.util.tomlpos import close_match

__all__ = ["parse_rule"]

_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_RULE_KEYS = (
    "description", "enabled", "threshold", "severity", "require", "channels", "throttle", "feeds",
    "except_feeds", "tags", "except_tags", "proximity", "fields", "groups", "exclude", "examples",
)  # fmt: skip
_GROUP_KEYS = ("weight", "fuzzy", "terms", "min_distinct")
_EXAMPLE_KEYS = ("title", "summary", "content", "feed", "tags", "expect", "severity")


def parse_rule(
    c: Checker,
    rule_id: str,
    body: Any,
    lists: Mapping[str, tuple[Term, ...]],
    channels: Collection[str] | None,
) -> Rule | None:
    w: tuple[str | int, ...] = ("rule", rule_id)
    start_errors = len(c.errors)
    if not _RULE_ID_RE.match(rule_id):
        c.error(w, f"rule id {rule_id!r} must be letters, digits, '-', '_' or '.' (at most 80)")
    if not isinstance(body, dict):
        c.error(w, "a rule must be a table")
        return None
    c.known_keys(w, body, _RULE_KEYS)
    groups: list[Group] = []
    for name, gbody in c.table(body, (*w, "groups"), "groups").items():
        group = _parse_group(c, (*w, "groups", name), name, gbody, lists)
        if group is not None:
            groups.append(group)
    if not groups and "groups" not in body:
        c.error(w, f"rule has no groups: add a [rule.{rule_id}.groups.NAME] table with terms")
    names = [g.name for g in groups]
    exclude = c.table(body, (*w, "exclude"), "exclude")
    c.known_keys((*w, "exclude"), exclude, ("terms", "groups"))
    exclude_terms = parse_terms(c, (*w, "exclude"), exclude.get("terms", []), lists, None, allow_empty=True)
    exclude_groups = c.names(exclude, (*w, "exclude"), "groups", names, "group")
    require = _parse_require(c, w, body, names, exclude_groups)
    threshold = c.number(body, w, "threshold", DEFAULT_THRESHOLD)
    if threshold <= 0:
        c.error((*w, "threshold"), f"threshold must be greater than 0, got {threshold}")
    rule_channels = _parse_channels(c, w, body, channels)
    throttle = _parse_throttle(c, w, body)
    severity = _parse_severity(c, w, body.get("severity"), threshold)
    proximity = _parse_proximity(c, w, body.get("proximity"), names)
    fields = _parse_fields(c, w, body.get("fields"))
    examples = _parse_examples(c, w, body.get("examples", []))
    description = c.string(body, w, "description", "")
    enabled = c.boolean(body, w, "enabled", True)
    feeds = [frozenset(c.strings(body, w, k)) for k in ("feeds", "except_feeds", "tags", "except_tags")]
    warn_duplicates(c, rule_id, groups, exclude_terms)
    if len(c.errors) > start_errors:
        return None
    return Rule(
        id=rule_id,
        groups=tuple(groups),
        description=description,
        enabled=enabled,
        threshold=threshold,
        severity=severity,
        require=require,
        channels=rule_channels,
        throttle=throttle,
        feeds=feeds[0],
        except_feeds=feeds[1],
        tags=feeds[2],
        except_tags=feeds[3],
        proximity=proximity,
        fields=fields,
        exclude_terms=exclude_terms,
        exclude_groups=exclude_groups,
        examples=examples,
        path=c.path,
        line=c.line_of(w),
    )


def _parse_require(
    c: Checker, w: tuple[str | int, ...], body: Mapping[str, Any], names: list[str], exclude: tuple[str, ...]
) -> tuple[str, ...]:
    """Entries of ``require``: a group name, or alternatives ``"places|actors"`` (any one will do)."""
    out: list[str] = []
    for entry in c.strings(body, w, "require"):
        alternatives = [g.strip() for g in entry.split("|")]
        bad = False
        for g in alternatives:
            if g not in names:
                bad = True
                known = ", ".join(names) or "none"
                what = f"unknown group {g!r}" if g else f"empty alternative in {entry!r}"
                c.error(
                    (*w, "require"),
                    f"require: {what}{close_match(g, names) if g else ''} (this rule has: {known})",
                    needle=entry,
                )
            elif g in exclude:
                bad = True
                c.error((*w, "require"), f"group {g!r} cannot be both required and an exclude group", needle=entry)
        if not bad:
            out.append("|".join(dict.fromkeys(alternatives)))
    return tuple(out)


def _parse_channels(
    c: Checker, w: tuple[str | int, ...], body: Mapping[str, Any], channels: Collection[str] | None
) -> tuple[str, ...]:
    names = c.strings(body, w, "channels")
    if channels is not None:
        for ch in names:
            if ch not in channels:
                hint = close_match(ch, channels)
                known = ", ".join(sorted(channels)) or "none"
                c.error((*w, "channels"), f"unknown channel {ch!r}{hint} (configured: {known})", needle=ch)
    return names


def _parse_throttle(c: Checker, w: tuple[str | int, ...], body: Mapping[str, Any]) -> timedelta | None:
    if "throttle" not in body:
        return None
    raw = body["throttle"]
    if not isinstance(raw, str):
        c.error((*w, "throttle"), f"expected a duration string like '30m', got {type(raw).__name__}")
        return None
    try:
        return timedelta(seconds=parse_duration(raw))
    except ValueError as exc:
        c.error((*w, "throttle"), str(exc))
        return None


def _parse_group(
    c: Checker, w: tuple[str | int, ...], name: str, body: Any, lists: Mapping[str, tuple[Term, ...]]
) -> Group | None:
    if not isinstance(body, dict):
        c.error(w, f"group {name!r} must be a table with `terms`")
        return None
    c.known_keys(w, body, _GROUP_KEYS)
    weight = c.number(body, w, "weight", DEFAULT_GROUP_WEIGHT)
    fuzzy = c.fuzzy(body, w)
    if "terms" not in body:
        c.error(w, f"group {name!r} has no `terms`")
        return None
    terms = parse_terms(c, w, body["terms"], lists, fuzzy, allow_empty=False)
    min_distinct = body.get("min_distinct", 1)
    if isinstance(min_distinct, bool) or not isinstance(min_distinct, int) or min_distinct < 1:
        c.error((*w, "min_distinct"), f"min_distinct: expected a whole number ≥ 1, got {min_distinct!r}")
        min_distinct = 1
    elif terms and min_distinct > len(terms):
        c.error(
            (*w, "min_distinct"),
            f"min_distinct {min_distinct} can never be met: group {name!r} has {len(terms)} term(s)",
        )
    return Group(name, weight, terms, fuzzy, min_distinct)


def _parse_severity(c: Checker, w: tuple[str | int, ...], raw: Any, threshold: float) -> SeverityBands:
    if raw is None:
        return SeverityBands()
    if isinstance(raw, str):
        try:
            return SeverityBands(fixed=Severity.parse(raw))
        except ValueError as exc:
            c.error((*w, "severity"), str(exc))
            return SeverityBands()
    if not isinstance(raw, dict):
        c.error((*w, "severity"), "expected a table like { warning = 3.0, critical = 6.0 } or a severity name")
        return SeverityBands()
    sw = (*w, "severity")
    c.known_keys(sw, raw, ("warning", "critical"))
    warning = c.number(raw, sw, "warning", None) if "warning" in raw else None
    critical = c.number(raw, sw, "critical", None) if "critical" in raw else None
    if warning is not None and critical is not None and warning >= critical:
        c.error(sw, f"severity bands must ascend: warning {warning:g} is not below critical {critical:g}")
    return SeverityBands(warning, critical)


def _parse_proximity(c: Checker, w: tuple[str | int, ...], raw: Any, names: list[str]) -> Proximity | None:
    if raw is None:
        return None
    pw = (*w, "proximity")
    if not isinstance(raw, dict):
        c.error(pw, "expected a table like { groups = ['a', 'b'], words = 12 }")
        return None
    c.known_keys(pw, raw, ("groups", "words"))
    groups = c.names(raw, pw, "groups", names, "group")
    words = raw.get("words")
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        c.error((*pw, "words"), f"expected a whole number of words ≥ 1, got {words!r}")
        return None
    if len(groups) < 2:
        c.error((*pw, "groups"), "proximity needs at least two groups")
        return None
    return Proximity(groups, words)


def _parse_fields(c: Checker, w: tuple[str | int, ...], raw: Any) -> FieldFactors:
    if raw is None:
        return FieldFactors()
    fw = (*w, "fields")
    if not isinstance(raw, dict):
        c.error(fw, "expected a table like { title = 2.0, summary = 1.0, content = 0.5 }")
        return FieldFactors()
    c.known_keys(fw, raw, FIELDS)
    values = {k: c.number(raw, fw, k, DEFAULT_FIELD_FACTORS[k]) for k in FIELDS}
    for k, v in values.items():
        if v < 0:
            c.error((*fw, k), f"field factor must be ≥ 0, got {v:g}")
    return FieldFactors(**values)


def _parse_examples(c: Checker, w: tuple[str | int, ...], raw: Any) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        c.error((*w, "examples"), "expected an array of tables ([[rule.ID.examples]])")
        return ()
    out: list[Example] = []
    for i, ex in enumerate(raw):
        ew = (*w, "examples", i)
        if not isinstance(ex, dict):
            c.error(ew, "an example must be a table")
            continue
        c.known_keys(ew, ex, _EXAMPLE_KEYS)
        sev_raw = c.string(ex, ew, "severity", "")
        severity = None
        if sev_raw:
            try:
                severity = Severity.parse(sev_raw)
            except ValueError as exc:
                c.error((*ew, "severity"), str(exc))
        feed = c.string(ex, ew, "feed", "") or None
        out.append(
            Example(
                title=c.string(ex, ew, "title", ""),
                summary=c.string(ex, ew, "summary", ""),
                content=c.string(ex, ew, "content", ""),
                feed=feed,
                tags=frozenset(c.strings(ex, ew, "tags")),
                expect=c.boolean(ex, ew, "expect", True),
                severity=severity,
                line=c.line_of(ew),
            )
        )
    return tuple(out)
