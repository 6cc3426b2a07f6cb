"""Turn the tables of one rule file into the immutable types of ``daemon.rules``.

Every mistake is recorded on the ``Checker`` (with file:line:column) rather than raised, so one pass
reports all of a file's errors.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

from daemon.models import FIELDS, Severity
from daemon.rules.check import Checker, common_word_collisions
from daemon.rules.ruleset import (
    DEFAULT_FIELD_FACTORS,
    DEFAULT_GROUP_WEIGHT,
    DEFAULT_THRESHOLD,
    Alias,
    Example,
    FieldFactors,
    Group,
    Proximity,
    Rule,
    SeverityBands,
    Term,
    parse_duration,
)
from daemon.util.scripts import attaches, is_arabic, stem
from daemon.util.text import fold_term
from daemon.util.tomlpos import close_match

__all__ = ["parse_list", "parse_rule"]

_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_RULE_KEYS = (
    "description", "enabled", "threshold", "severity", "require", "channels", "throttle", "feeds",
    "except_feeds", "tags", "except_tags", "proximity", "fields", "groups", "exclude", "examples",
)  # fmt: skip
_GROUP_KEYS = ("weight", "fuzzy", "terms", "min_distinct")
_TERM_KEYS = ("term", "regex", "weight", "case", "fuzzy", "unless", "note")
_EXAMPLE_KEYS = ("title", "summary", "content", "feed", "tags", "expect", "severity")


def parse_list(c: Checker, name: str, body: Any) -> tuple[Term, ...]:
    where = ("list", name)
    if not isinstance(body, dict):
        c.error(where, f"list {name!r} must be a table with `terms`")
        return ()
    c.known_keys(where, body, ("terms",))
    raw = body.get("terms")
    if not isinstance(raw, list) or not raw:
        c.error((*where, "terms"), "expected a non-empty array of terms")
        return ()
    terms: list[Term] = []
    for i, value in enumerate(raw):
        if isinstance(value, str) and value.startswith("@"):
            c.error((*where, "terms", i), f"lists cannot refer to other lists ({value!r})", needle=value)
            continue
        term = _parse_term(c, (*where, "terms", i), value)
        if term is not None:
            terms.append(dataclasses.replace(term, list_name=name))
    return tuple(terms)


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
    exclude_terms = _parse_terms(c, (*w, "exclude"), exclude.get("terms", []), lists, None, allow_empty=True)
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
    _warn_duplicates(c, rule_id, groups, exclude_terms)
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
        return parse_duration(raw)
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
    terms = _parse_terms(c, w, body["terms"], lists, fuzzy, allow_empty=False)
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


def _parse_terms(
    c: Checker,
    w: tuple[str | int, ...],
    raw: Any,
    lists: Mapping[str, tuple[Term, ...]],
    group_fuzzy: float | None,
    *,
    allow_empty: bool,
) -> tuple[Term, ...]:
    if not isinstance(raw, list):
        c.error((*w, "terms"), f"expected an array of terms, got {type(raw).__name__}")
        return ()
    if not raw and not allow_empty:
        c.error((*w, "terms"), "a group needs at least one term")
    terms: list[Term] = []
    for i, value in enumerate(raw):
        tw = (*w, "terms", i)
        if isinstance(value, str) and value.startswith("@"):
            name = value[1:].strip()
            if name not in lists:
                c.error(tw, f"unknown list {value!r}{close_match(name, lists)}", needle=value)
                continue
            terms += [_effective_fuzzy(c, t, group_fuzzy) for t in lists[name]]
            continue
        term = _parse_term(c, tw, value)
        if term is not None:
            terms.append(_effective_fuzzy(c, term, group_fuzzy))
    return tuple(terms)


def _effective_fuzzy(c: Checker, term: Term, group_fuzzy: float | None) -> Term:
    fuzzy = term.fuzzy if term.fuzzy is not None else group_fuzzy
    if not fuzzy or term.regex is not None or term.case:
        return dataclasses.replace(term, fuzzy=None)
    origin = f" (list {term.list_name!r})" if term.list_name else ""
    line = None if term.list_name else term.line
    for alias in term.aliases:
        if alias.single_word and not alias.prefix:
            if len(alias.folded) < 5:
                c.warn(
                    f"fuzzy matching of the short word {alias.text!r}{origin} is unreliable; prefer aliases",
                    line,
                )
            clashes = common_word_collisions(alias.folded, fuzzy)
            if clashes:
                words = ", ".join(clashes)
                c.warn(f"fuzzy {fuzzy:g} on {alias.text!r}{origin} also matches common words: {words}", line)
    return dataclasses.replace(term, fuzzy=fuzzy)


def _parse_term(c: Checker, w: tuple[str | int, ...], value: Any) -> Term | None:
    needle = value if isinstance(value, str) else None
    if isinstance(value, dict):
        needle = next((v for k in ("term", "regex") if isinstance(v := value.get(k), str)), None)
    if needle:
        c.needles[w] = needle
    line = c.line_of(w)
    if isinstance(value, str):
        return _alias_term(c, w, value, line=line)
    if not isinstance(value, dict):
        c.error(w, f"a term must be a string or an inline table, got {type(value).__name__}")
        return None
    c.known_keys(w, value, _TERM_KEYS)
    weight = c.number(value, w, "weight", None) if "weight" in value else None
    case = c.boolean(value, w, "case", False)
    fuzzy = c.fuzzy(value, w)
    note = c.string(value, w, "note", "")
    if ("term" in value) == ("regex" in value):
        c.error(w, "a term table needs exactly one of `term` or `regex`")
        return None
    if "regex" in value and "unless" in value:
        c.error((*w, "unless"), "`unless` works with `term`; a regex can say its exception itself")
        return None
    if "regex" in value:
        pattern = value["regex"]
        if not isinstance(pattern, str):
            c.error((*w, "regex"), f"expected a string, got {type(pattern).__name__}")
            return None
        c.check_regex((*w, "regex"), pattern, case)
        if fuzzy:
            c.warn("fuzzy has no effect on regex terms", line)
        return Term(pattern, (), pattern, weight, case, None, line=line, note=note)
    text = value["term"]
    if not isinstance(text, str):
        c.error((*w, "term"), f"expected a string, got {type(text).__name__}")
        return None
    term = _alias_term(c, w, text, line=line)
    if term is None:
        return None
    if case and fuzzy:
        c.warn(f"fuzzy is ignored for case-sensitive term {text!r}", line)
    unless = _parse_unless(c, (*w, "unless"), value.get("unless"), term) if "unless" in value else ()
    return dataclasses.replace(term, weight=weight, case=case, fuzzy=fuzzy, unless=unless, note=note)


def _parse_unless(c: Checker, w: tuple[str | int, ...], raw: Any, term: Term) -> tuple[Alias, ...]:
    """The contexts of ``unless``: term strings (aliases, ``*``, folding) the term must not sit inside."""
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        c.error(w, f"unless: expected a phrase or an array of phrases, got {raw!r}")
        return ()
    out: list[Alias] = []
    for entry in entries:
        context = _alias_term(c, w, entry, line=term.line)
        if context is None:
            continue
        for alias in context.aliases:
            if not any(_contains(alias, a) for a in term.aliases):
                c.warn(
                    f"term {term.source!r}: unless {alias.text!r} does not contain the term, so it never applies",
                    term.line,
                )
            out.append(alias)
    return tuple(out)


def _contains(context: Alias, alias: Alias) -> bool:
    """Whether ``alias`` can occur inside text that ``context`` matches (judged on the folded forms)."""
    if context.prefix:
        return True  # the context's open end may complete the term: no warning on a guess
    text, needle = f" {context.folded} ", stem(alias.folded)
    at = text.find(needle)
    while at >= 0:
        before, after = text[at - 1], text[at + len(needle)] if at + len(needle) < len(text) else " "
        if (not attaches(before) or is_arabic(needle[0])) and (alias.prefix or not attaches(after)):
            return True
        at = text.find(needle, at + 1)
    return False


def _alias_term(c: Checker, w: tuple[str | int, ...], text: str, *, line: int | None) -> Term | None:
    aliases: list[Alias] = []
    for part in text.split("|"):
        raw = part.strip()
        prefix = raw.endswith("*")
        core = raw[:-1].rstrip() if prefix else raw
        if not core:
            c.error(w, f"empty alias in term {text!r}", needle=text)
            return None
        if "*" in core:
            c.error(w, f"'*' is allowed only at the end of an alias (in {text!r}); use a regex", needle=text)
            return None
        folded = fold_term(core)
        if not folded or not any(ch.isalnum() for ch in folded):
            c.warn(f"term {text!r}: alias {core!r} can never match after folding", line)
            continue
        if prefix and len(folded) < 3:
            c.warn(f"wildcard {raw!r} is very short and will match many words", line)
        aliases.append(Alias(core, folded, fold_term(core, keep_case=True), prefix))
    if not aliases:
        return None
    return Term(text, tuple(aliases), line=line)


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


def _warn_duplicates(c: Checker, rule_id: str, groups: list[Group], exclude: tuple[Term, ...]) -> None:
    seen: dict[tuple[str, bool], str] = {}
    for group in groups:
        for term in group.terms:
            for alias in term.aliases:
                key = (alias.folded, alias.prefix)
                if key in seen:
                    where = f"group {seen[key]!r}" if seen[key] != group.name else "the same group"
                    c.warn(
                        f"rule {rule_id!r}: term {alias.text!r} in group {group.name!r} duplicates one in " + where,
                        term.line,
                    )
                else:
                    seen[key] = group.name
    for term in exclude:
        for alias in term.aliases:
            if (alias.folded, alias.prefix) in seen:
                c.warn(f"rule {rule_id!r}: {alias.text!r} is both a term and an exclude term", term.line)
