"""Terms and lists: term strings (aliases, ``*``), term tables (weight, case, fuzzy, ``unless``, note),
``@list`` references, and the warnings about them, each at the line of the file that holds the term.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from daemon.rules.check import Checker, common_word_collisions
from daemon.rules.pattern import PatternError, parse_alias
from daemon.rules.ruleset import Alias, AliasKey, Group, Step, Term
from daemon.util.scripts import attaches, is_arabic, stem
from daemon.util.tomlpos import close_match

__all__ = ["parse_list", "parse_terms", "warn_duplicates"]

_TERM_KEYS = ("term", "regex", "weight", "case", "fuzzy", "unless", "note")


def parse_list(c: Checker, name: str, body: Any) -> tuple[Term, ...]:
    where = ("list", name)
    if not isinstance(body, dict):
        c.error(where, f"list {name!r} must be a table with `terms`")
        return ()
    c.known_keys(where, body, ("terms", "weight", "description"))
    weight = c.number(body, where, "weight", None) if "weight" in body else None
    c.string(body, where, "description", "")
    raw = body.get("terms")
    if not isinstance(raw, list) or not raw:
        c.error((*where, "terms"), "expected a non-empty array of terms")
        return ()
    terms: list[Term] = []
    seen: dict[AliasKey, Term] = {}
    for i, value in enumerate(raw):
        if isinstance(value, str) and value.startswith("@"):
            c.error((*where, "terms", i), f"lists cannot refer to other lists ({value!r})", needle=value)
            continue
        term = _parse_term(c, (*where, "terms", i), value)
        if term is None:
            continue
        # A list's weight is its terms' default; a term's own weight still wins.
        own = term.weight if term.weight is not None else weight
        term = dataclasses.replace(term, list_name=name, path=c.path, weight=own)
        for alias in term.aliases:
            first = seen.setdefault(alias.key, term)
            if first is not term:
                c.warn(f"list {name!r}: {alias.text!r} duplicates {first.source!r} (line {first.line})", term.line)
        terms.append(term)
    return tuple(terms)


def parse_terms(
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
    # A term that stays as it is is shared, not copied: a list's terms are used by every rule that names
    # the list, and one object each keeps a large pack's memory down.
    fuzzy = term.fuzzy if term.fuzzy is not None else group_fuzzy
    if not fuzzy or term.regex is not None or term.case:
        return term if term.fuzzy is None else dataclasses.replace(term, fuzzy=None)
    origin = f" (list {term.list_name!r})" if term.list_name else ""
    for alias in term.aliases:
        if alias.single_word and not alias.prefix:
            if len(alias.folded) < 5:
                c.warn(
                    f"fuzzy matching of the short word {alias.text!r}{origin} is unreliable; prefer aliases",
                    term.line,
                    path=term.path,
                )
            clashes = common_word_collisions(alias.folded, fuzzy)
            if clashes:
                words = ", ".join(clashes)
                message = f"fuzzy {fuzzy:g} on {alias.text!r}{origin} also matches common words: {words}"
                c.warn(message, term.line, path=term.path)
    return term if term.fuzzy == fuzzy else dataclasses.replace(term, fuzzy=fuzzy)


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
    if context.prefix or any(s.prefix for s in context.steps) or alias.steps:
        return True  # an open end may complete the term, or a pattern term: no warning on a guess
    if context.steps and " " in alias.folded:
        return True  # a gap may hold part of the phrase
    return any(_within(run, alias) for run in (context.folded, *(s.folded for s in context.steps)))


def _within(run: str, alias: Alias) -> bool:
    text, needle = f" {run} ", stem(alias.folded)
    at = text.find(needle)
    while at >= 0:
        before, after = text[at - 1], text[at + len(needle)] if at + len(needle) < len(text) else " "
        if (not attaches(before) or is_arabic(needle[0])) and (alias.prefix or not attaches(after)):
            return True
        at = text.find(needle, at + 1)
    return False


def _alias_term(c: Checker, w: tuple[str | int, ...], text: str, *, line: int | None) -> Term | None:
    aliases: list[Alias] = []
    keys: set[AliasKey] = set()
    for part in text.split("|"):
        raw = part.strip()
        if not raw.rstrip("*").strip():
            c.error(w, f"empty alias in term {text!r}", needle=text)
            return None
        try:
            alias = parse_alias(raw)
        except PatternError as exc:
            c.error(w, str(exc), needle=text)
            return None
        if alias is None:
            c.warn(f"term {text!r}: alias {raw.rstrip('*').strip()!r} can never match after folding", line)
            continue
        runs: list[Alias | Step] = [alias, *alias.steps]
        for run in runs:
            if run.prefix and len(run.folded) < 3:
                c.warn(f"wildcard {run.folded + '*'!r} in {raw!r} is very short and will match many words", line)
        key = alias.key
        if key in keys:
            continue  # the same after folding (Qarabağ|Qarabag): a spelling kept for readers, nothing to add
        keys.add(key)
        aliases.append(alias)
    if not aliases:
        return None
    return Term(text, tuple(aliases), line=line)


def warn_duplicates(c: Checker, rule_id: str, groups: list[Group], exclude: tuple[Term, ...]) -> None:
    """Warn about a spelling that two terms of one rule share, at the second one's own file and line."""
    # Per spelling: the place (group and term index) of its first use, one tuple for all aliases of a
    # term. A list's term is one object wherever the list is used, so the place tells two uses apart.
    seen: dict[AliasKey, tuple[int, int]] = {}
    for gi, group in enumerate(groups):
        for ti, term in enumerate(group.terms):
            here = (gi, ti)
            for alias in term.aliases:
                key = alias.key
                place = seen.setdefault(key, here)
                if place is here:
                    continue  # its first use; or two aliases of one term that fold alike, warned about where written
                first_group = groups[place[0]].name
                first = groups[place[0]].terms[place[1]]
                if first.list_name is not None and first.list_name == term.list_name:
                    if first.line == term.line:  # one list term twice: the list is used twice
                        used = f"in groups {first_group!r} and {group.name!r}; its terms count in both"
                        if first_group == group.name:
                            used = f"twice in group {group.name!r}"
                        message = f"rule {rule_id!r}: list {term.list_name!r} is used {used}"
                        c.warn(message, c.line_of(("rule", rule_id)))
                    continue  # a duplicate inside a list is reported once, where the list is written
                where = f"group {first_group!r}" if first_group != group.name else "the same group"
                origin = f" (list {term.list_name!r})" if term.list_name else ""
                c.warn(
                    f"rule {rule_id!r}: term {alias.text!r}{origin} in group {group.name!r} duplicates "
                    f"{first.source!r} in {where} ({_where(c, first)})",
                    term.line,
                    path=term.path,
                )
    for term in exclude:
        for alias in term.aliases:
            if alias.key in seen:
                message = f"rule {rule_id!r}: {alias.text!r} is both a term and an exclude term"
                c.warn(message, term.line, path=term.path)


def _where(c: Checker, term: Term) -> str:
    return f"{term.path or c.path}:{term.line}" if term.line else (term.path or c.path)
