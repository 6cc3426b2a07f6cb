"""Judge one rule on the raw hits of one item: contexts, distinct terms, vetoes, ``require``,
proximity and threshold, each verdict with the reasons a reader needs. Pure.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from daemon.models import FIELDS, Hit, RuleMatch, Severity
from daemon.rules.pattern import gap_words
from daemon.rules.ruleset import EXCLUDE_GROUP, Rule, Term
from daemon.util.text import FoldedText, fold, tokenize

__all__ = ["EXCLUDE", "MAX_HITS_PER_TERM", "Evaluation", "Failure", "Raw", "Scan", "fires", "judge", "not_applied"]

MAX_HITS_PER_TERM = 5  # occurrences reported per term; the counted one is always among them
EXCLUDE = -1  # group index of a rule's exclude terms


class Failure(NamedTuple):
    """Why a rule did not fire: a ``kind`` to count by, and the sentence shown to people."""

    kind: str  # "not applied" | "excluded" | "required" | "proximity" | "no hits" | "threshold"
    message: str
    subject: str = ""  # what to group by within the kind: the term, the require entry, the groups


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How one rule judged one item: whether it fired, the score, every hit and the reasons."""

    rule_id: str
    fired: bool
    score: float
    severity: Severity
    hits: tuple[Hit, ...]
    reasons: tuple[str, ...]  # every failure's message, then notes, then (when fired) the verdict
    vetoes: tuple[Hit, ...] = ()
    channels: tuple[str, ...] = ()
    threshold: float = 0.0
    failures: tuple[Failure, ...] = ()

    def to_match(self) -> RuleMatch | None:
        if not self.fired:
            return None
        return RuleMatch(self.rule_id, self.score, self.severity, self.hits, self.channels)


class Raw(NamedTuple):
    """A hit before judging: positions are in the folded text of ``field`` (negative: the
    case-keeping folding of field ``-1 - field``); ``context`` marks an ``unless`` phrase's hit.
    """

    group: int
    term: int
    alias: str
    field: int
    start: int
    end: int
    fuzzy: float | None
    context: bool = False


class Scan:
    """Per-item state: folded fields, lazily built tokens, raw hits by rule index."""

    __slots__ = ("folded", "hits", "overrun", "spent", "tokens")

    def __init__(self, folded: list[FoldedText | None]) -> None:
        self.folded = folded
        self.hits: dict[int, list[Raw]] = defaultdict(list)
        self.tokens: list[list[int] | None] = [None] * len(folded)
        self.spent: dict[int, float] = defaultdict(float)  # regex seconds by rule index
        self.overrun: set[int] = set()  # rules whose regex budget ran out: not judged on this item

    def token_index(self, field: int, pos: int) -> int:
        starts = self.tokens[field]
        if starts is None:
            ft = self.folded[field]
            starts = [t.start for t in tokenize(ft.text)] if ft else []
            self.tokens[field] = starts
        return bisect.bisect_right(starts, pos) - 1


def not_applied(rule: Rule, why: str) -> Evaluation:
    """The verdict for a rule that did not look at the item (disabled, or filtered by feed)."""
    failure = Failure("not applied", why)
    return Evaluation(
        rule.id, False, 0.0, Severity.INFO, (), (why,), channels=rule.channels, threshold=rule.threshold,
        failures=(failure,),
    )  # fmt: skip


class _Count(NamedTuple):
    """What a verdict rests on: the hits that count, by term, and the groups that are met."""

    raws: list[Raw]  # after field factors, ``unless`` contexts and nested hits
    by_term: dict[tuple[int, int], list[Raw]]
    met: set[int]
    veto_groups: set[int]
    factors: list[float]


def _count(rule: Rule, scan: Scan, raws: list[Raw], notes: list[str]) -> _Count:
    factors = [rule.fields.get(name) for name in FIELDS]
    raws = [r for r in raws if factors[_field(r)] > 0]
    if any(r.context for r in raws):
        raws = _unmask(rule, scan, raws, notes)
    raws = _drop_nested(raws)
    by_term: dict[tuple[int, int], list[Raw]] = defaultdict(list)
    seen: set[tuple[int, int, int, int]] = set()
    for r in raws:  # an exact and a fuzzy hit of one term on one word count as one
        if (key := (r.group, r.term, r.field, r.start)) not in seen:
            seen.add(key)
            by_term[(r.group, r.term)].append(r)
    met = _met_groups(rule, by_term, notes)
    veto_groups = (
        {i for i, g in enumerate(rule.groups) if g.name in rule.exclude_groups} if rule.exclude_groups else set()
    )
    return _Count(raws, by_term, met, veto_groups, factors)


def fires(rule: Rule, scan: Scan, raws: list[Raw]) -> bool:
    """``judge(rule, scan, raws).fired``, without building the hits and reasons (most rules with a hit
    on an item do not fire, and showing why is the costly part).
    """
    raws, by_term, met, veto_groups, factors = _count(rule, scan, raws, [])
    score = 0.0
    counted = False
    for (gi, ti), group_raws in by_term.items():
        if gi == EXCLUDE or gi in veto_groups:
            if gi == EXCLUDE or gi in met:
                return False  # vetoed
            continue
        counted = True
        if gi in met:  # the same sum, in the same order, as ``judge`` (a non-met term adds 0.0)
            group = rule.groups[gi]
            weight = group.terms[ti].weight
            score += (group.weight if weight is None else weight) * max(factors[_field(r)] for r in group_raws)
    if not counted or round(score, 6) < rule.threshold - 1e-9:
        return False
    return not _unmet(rule, scan, raws, met, met - veto_groups, [])


def judge(rule: Rule, scan: Scan, raws: list[Raw]) -> Evaluation:
    """The verdict of ``rule`` given the raw hits its terms (and their contexts) had in ``scan``."""
    notes: list[str] = []
    raws, by_term, met, veto_groups, factors = _count(rule, scan, raws, notes)
    hits: list[tuple[int, int, Hit]] = []
    vetoes: list[Hit] = []
    score = 0.0
    for (gi, ti), group_raws in by_term.items():
        group_raws.sort(key=lambda r: (_field(r), r.start))
        if gi == EXCLUDE or gi in veto_groups:
            if gi == EXCLUDE or gi in met:
                vetoes.append(_hit(rule, scan, group_raws[0], 0.0))
            continue
        group = rule.groups[gi]
        term = group.terms[ti]
        weight = term.weight if term.weight is not None else group.weight
        best = max(group_raws, key=lambda r: (factors[_field(r)], -_field(r), -r.start))
        contribution = weight * factors[_field(best)] if gi in met else 0.0
        score += contribution
        shown = [best, *[r for r in group_raws if r is not best][: MAX_HITS_PER_TERM - 1]]
        if (gap := _gap_note(term, scan, best)) is not None:
            notes.append(gap)
        for r in shown:
            hit = _hit(rule, scan, r, contribution if r is best else 0.0)
            hits.append((_field(r), hit.start, hit))
    hits.sort(key=lambda h: (h[0], h[1]))
    score = round(score, 6)
    failures = [Failure("excluded", f"excluded by {v.term!r} ({v.text!r} in {v.field})", v.term) for v in vetoes]
    failures += _unmet(rule, scan, raws, met, met - veto_groups, notes)
    if not hits:
        failures.append(Failure("no hits", "no term matched"))
    elif score < rule.threshold - 1e-9:
        failures.append(Failure("threshold", f"score {score:g} below threshold {rule.threshold:g}"))
    fired = not failures
    severity = rule.severity.classify(score)
    reasons = [f.message for f in failures] + notes
    if fired:
        reasons.append(f"score {score:g} reached threshold {rule.threshold:g}; severity {severity}")
    return Evaluation(
        rule.id, fired, score, severity, tuple(h for _, _, h in hits), tuple(reasons), tuple(vetoes),
        rule.channels, rule.threshold, tuple(failures),
    )  # fmt: skip


def _unmet(rule: Rule, scan: Scan, raws: list[Raw], met: set[int], hit: set[int], notes: list[str]) -> list[Failure]:
    """The ``require`` entries no group of which counted, and a ``proximity`` not satisfied."""
    failures: list[Failure] = []
    names = {g.name: i for i, g in enumerate(rule.groups)}
    for entry in rule.require:
        alternatives = entry.split("|")
        found = [g for g in alternatives if names[g] in hit]
        if not found:
            if len(alternatives) == 1:
                failures.append(Failure("required", f"required group {entry!r} had no hit", entry))
            else:
                listed = " or ".join(repr(g) for g in alternatives)
                message = f"required {entry!r}: neither group {listed} had a hit"
                failures.append(Failure("required", message, entry))
        elif len(alternatives) > 1:
            notes.append(f"required {entry!r}: met by {' and '.join(repr(g) for g in found)}")
    if rule.proximity is not None and not _near(rule, scan, raws, names, met):
        gs = ", ".join(repr(g) for g in rule.proximity.groups)
        message = f"no hits of groups {gs} within {rule.proximity.words} words in one field"
        failures.append(Failure("proximity", message, "|".join(rule.proximity.groups)))
    return failures


def _unmask(rule: Rule, scan: Scan, raws: list[Raw], notes: list[str]) -> list[Raw]:
    """Drop every occurrence of a term that lies inside a hit of one of its ``unless`` contexts."""
    contexts: dict[tuple[int, int, int], list[Raw]] = defaultdict(list)
    for r in raws:
        if r.context:
            contexts[(r.group, r.term, r.field)].append(r)
    kept: list[Raw] = []
    for r in raws:
        if r.context:
            continue
        around = contexts.get((r.group, r.term, r.field), ())
        inside = next((c for c in around if c.start <= r.start and r.end <= c.end), None)
        if inside is None:
            kept.append(r)
            continue
        term = rule.exclude_terms[r.term] if r.group == EXCLUDE else rule.groups[r.group].terms[r.term]
        ft = scan.folded[_field(r)]
        assert ft is not None
        where = FIELDS[_field(r)]
        notes.append(
            f"{term.source!r} not counted in {where}: {ft.original_text(r.start, r.end)!r} is inside "
            f"{ft.original_text(inside.start, inside.end)!r} (unless {inside.alias!r})"
        )
    return kept


def _gap_note(term: Term, scan: Scan, r: Raw) -> str | None:
    """For a hit of an alias with a ``~N`` gap: the words the gap took, so the match can be checked."""
    if "~" not in r.alias:  # the written alias shows its gaps: nearly every hit leaves here
        return None
    alias = next((a for a in term.aliases if a.text == r.alias and a.steps), None)
    if alias is None or not any(s.gap for s in alias.steps) or r.field < 0:
        return None
    ft = scan.folded[r.field]
    assert ft is not None
    n = gap_words(alias, ft.text[r.start : r.end])
    gaps = [str(s.gap) for s in alias.steps if s.gap]
    took = f"{n} word{'s' if n != 1 else ''} in the gap{'s' if len(gaps) > 1 else ''} (up to {' + '.join(gaps)})"
    return f"{alias.text!r} matched {ft.original_text(r.start, r.end)!r} in {FIELDS[r.field]}: {took}"


def _met_groups(rule: Rule, by_term: dict[tuple[int, int], list[Raw]], notes: list[str]) -> set[int]:
    """Groups whose distinct matched terms reach their ``min_distinct``; a note for each group that
    needs more than one, met or not.
    """
    distinct: dict[int, list[int]] = defaultdict(list)
    for gi, ti in by_term:
        if gi >= 0:
            distinct[gi].append(ti)
    met: set[int] = set()
    for gi, tis in distinct.items():
        group = rule.groups[gi]
        if len(tis) >= group.min_distinct:
            met.add(gi)
        if group.min_distinct > 1:
            # The alternative that matched, not the whole term: shared lists make terms of fifty alternatives.
            found = ", ".join(repr(by_term[gi, ti][0].alias) for ti in sorted(tis))
            verdict = "met" if gi in met else "not met, its hits count nothing"
            notes.append(
                f"group {group.name!r} needs {group.min_distinct} distinct terms, found {len(tis)} ({found}): {verdict}"
            )
    return met


def _near(rule: Rule, scan: Scan, raws: list[Raw], names: dict[str, int], met: set[int]) -> bool:
    """Whether some field has a hit of every proximity group within the word window."""
    assert rule.proximity is not None
    wanted = {names[g] for g in rule.proximity.groups}
    if not wanted <= met:
        return False
    for fi in range(len(FIELDS)):
        points = sorted(
            (scan.token_index(fi, r.start), r.group) for r in raws if r.field == fi and r.group in wanted
        )  # case-sensitive regex hits (negative field) use another folding and are left out
        if _window_covers(points, wanted, rule.proximity.words):
            return True
    return False


def _hit(rule: Rule, scan: Scan, r: Raw, contribution: float) -> Hit:
    fi = _field(r)
    ft = scan.folded[fi]
    assert ft is not None
    if r.field < 0:
        ft = fold(ft.original, keep_case=True)
    start, end = ft.span(r.start, r.end)
    if r.group == EXCLUDE:
        group_name, term = EXCLUDE_GROUP, rule.exclude_terms[r.term]
    else:
        group = rule.groups[r.group]
        group_name, term = group.name, group.terms[r.term]
    return Hit(
        group=group_name, term=term.source, alias=r.alias if term.regex is None else term.source,
        field=FIELDS[fi], start=start, end=end, text=ft.original[start:end],
        contribution=round(contribution, 6), fuzzy=r.fuzzy,
    )  # fmt: skip


def _field(r: Raw) -> int:
    return r.field if r.field >= 0 else -1 - r.field


def _drop_nested(raws: list[Raw]) -> list[Raw]:
    """Within one group and field, a hit inside a longer hit of another term is the same mention
    ("Karabakh" inside "Nagorno-Karabakh") and does not count again.
    """
    if len(raws) < 2:
        return raws
    kept: list[Raw] = []
    for r in sorted(raws, key=lambda r: (r.group, r.field, r.start, -r.end)):
        k = kept[-1] if kept else None
        if k and (k.group, k.field) == (r.group, r.field) and k.term != r.term and r.end <= k.end:
            continue  # sorted by start, so r.start >= k.start
        kept.append(r)
    return kept


def _window_covers(points: list[tuple[int, int]], wanted: set[int], words: int) -> bool:
    """Sliding window over (token index, group) sorted by index: all groups within ``words``."""
    counts: dict[int, int] = defaultdict(int)
    lo = 0
    for pos, group in points:
        counts[group] += 1
        while pos - points[lo][0] > words:
            counts[points[lo][1]] -= 1
            lo += 1
        if all(counts[g] > 0 for g in wanted):
            return True
    return False
