"""What a labelled backtest got wrong, and why: every false negative with the reason of the rule that
came closest, every false positive with the rule that fired, counted by reason and by language. Pure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daemon.rules.backtest import ANY_RULE, Case, Confusion
from daemon.rules.judge import Evaluation

__all__ = ["UNKNOWN_LANGUAGE", "LanguageRow", "Miss", "ReasonCount", "by_language", "by_reason", "find_misses"]

UNKNOWN_LANGUAGE = "unknown"
# Reason categories, in the order a failed rule reports them (the first one is the one counted).
_CATEGORY = {
    "excluded": "excluded",
    "required": "required group missing",
    "proximity": "groups not near each other",
    "no hits": "no term matched",
    "threshold": "below threshold",
    "not applied": "rule did not apply",
}
FIRED = "fired"


@dataclass(frozen=True, slots=True)
class Miss:
    """One wrong verdict: ``rule`` is the labelled rule, or ANY_RULE for an item-level label."""

    case: Case
    kind: str  # "false negative" | "false positive"
    rule: str
    verdict: Evaluation | None  # the deciding rule: closest to firing (FN) or first that fired (FP)
    category: str
    subject: str  # within the category: the term, the require entry, the rule that fired
    explanation: str

    @property
    def lang(self) -> str:
        return self.case.lang or UNKNOWN_LANGUAGE

    @property
    def gap(self) -> float | None:
        """Score minus threshold of the deciding rule (negative: how far below)."""
        return None if self.verdict is None else round(self.verdict.score - self.verdict.threshold, 6)


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How many misses one reason explains."""

    kind: str
    category: str
    count: int
    subjects: tuple[tuple[str, int], ...]  # most frequent first


@dataclass(frozen=True, slots=True)
class LanguageRow(Confusion):
    """Detection counts of the items in one language."""

    lang: str
    items: int
    tp: int
    fp: int
    fn: int
    tn: int


def find_misses(results: Iterable[tuple[Case, Sequence[Evaluation]]]) -> list[Miss]:
    """Every false negative and false positive, per labelled rule and for item-level labels."""
    out: list[Miss] = []
    for case, evaluations in results:
        by_rule = {e.rule_id: e for e in evaluations}
        for rule_id, want in case.labels.items():
            ev = by_rule.get(rule_id)
            fired = ev is not None and ev.fired
            if want and not fired:
                out.append(_negative(case, rule_id, ev))
            elif fired and not want:
                out.append(_positive(case, rule_id, [ev] if ev else []))
        if case.label is not None:
            fired_evs = [e for e in evaluations if e.fired]
            if case.label and not fired_evs:
                out.append(_negative(case, ANY_RULE, _closest(evaluations)))
            elif fired_evs and not case.label:
                out.append(_positive(case, ANY_RULE, fired_evs))
    return out


def _closest(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    """The rule nearest to firing: highest share of its threshold, then fewest failures, then first."""
    tried = [e for e in evaluations if not any(f.kind == "not applied" for f in e.failures)]
    if not tried:
        return evaluations[0] if evaluations else None
    return max(enumerate(tried), key=lambda ie: (ie[1].score / ie[1].threshold, -len(ie[1].failures), -ie[0]))[1]


def _negative(case: Case, rule: str, ev: Evaluation | None) -> Miss:
    if ev is None or not ev.failures:
        return Miss(case, "false negative", rule, ev, _CATEGORY["not applied"], "", "no rule looked at the item")
    first = ev.failures[0]
    category = _CATEGORY.get(first.kind, first.kind)
    subject = first.subject
    if first.kind == "threshold":
        subject = _gap_bucket(ev.threshold - ev.score)
    return Miss(case, "false negative", rule, ev, category, subject, "; ".join(ev.reasons))


def _positive(case: Case, rule: str, fired: Sequence[Evaluation]) -> Miss:
    ev = fired[0] if fired else None
    names = ", ".join(e.rule_id for e in fired)
    counted = " · ".join(
        f"{h.text} ({h.group}, {h.field}, {h.contribution:+g})" for e in fired[:1] for h in e.hits if h.contribution
    )
    return Miss(case, "false positive", rule, ev, FIRED, names, f"fired: {names}; counted {counted}")


def _gap_bucket(short: float) -> str:
    """How far below the threshold, in coarse steps people can act on."""
    for limit in (0.5, 1.0, 2.0):
        if short <= limit + 1e-9:
            return f"short by {limit:g} or less"
    return "short by more than 2"


def by_reason(misses: Iterable[Miss]) -> list[ReasonCount]:
    """Misses counted by kind and category, each with its subjects (which group, term, rule)."""
    groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for m in misses:
        groups[(m.kind, m.category)][m.subject] += 1
    rows = [
        ReasonCount(kind, category, sum(c.values()), tuple((s, n) for s, n in c.most_common() if s))
        for (kind, category), c in groups.items()
    ]
    return sorted(rows, key=lambda r: (r.kind != "false negative", -r.count, r.category))


def by_language(results: Iterable[tuple[Case, Sequence[Evaluation]]]) -> list[LanguageRow]:
    """Per language: items, and the confusion counts over every label (per rule and item-level)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for case, evaluations in results:
        row = counts[case.lang or UNKNOWN_LANGUAGE]
        row[0] += 1
        fired = {e.rule_id for e in evaluations if e.fired}
        pairs = [(want, rid in fired) for rid, want in case.labels.items()]
        if case.label is not None:
            pairs.append((case.label, bool(fired)))
        for want, did in pairs:
            row[1 + (0 if want and did else 1 if did else 2 if want else 3)] += 1
    rows = [LanguageRow(lang, *c) for lang, c in counts.items()]
    return sorted(rows, key=lambda r: (r.lang == UNKNOWN_LANGUAGE, -r.items, r.lang))
