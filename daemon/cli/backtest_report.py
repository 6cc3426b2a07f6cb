"""The text and JSON reports of `feedwatch backtest`: precision and recall, then every miss with its
reason and score beside the threshold, then misses counted by reason and by language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon.rules.backtest import ANY_RULE, Case, RuleStats
from daemon.rules.misses import LanguageRow, Miss, ReasonCount

_TITLE_WIDTH = 90


def _ratio(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def score_beside_threshold(miss: Miss) -> str:
    """``score 2 / 3 (1 short)`` or ``score 6 / 3 (+3)``: how close a verdict was."""
    ev = miss.verdict
    if ev is None:
        return "no rule applied"
    gap = miss.gap or 0.0
    if ev.fired:
        return f"{ev.rule_id} score {ev.score:g} / {ev.threshold:g} ({gap:+g})"
    short = f"{-gap:g} short" if gap < 0 else "reached"
    return f"{ev.rule_id} score {ev.score:g} / {ev.threshold:g} ({short})"


def text_report(
    cases: Sequence[Case],
    stats: Mapping[str, RuleStats],
    any_stats: RuleStats,
    misses: Sequence[Miss],
    reasons: Sequence[ReasonCount],
    languages: Sequence[LanguageRow],
) -> list[str]:
    lines = [f"{len(cases)} items, {sum(1 for c in cases if c.labelled)} labelled"]
    lines.append(f"{'rule':<28} {'fired':>6} {'labelled':>9} {'precision':>10} {'recall':>7}")
    rows = list(stats.items())
    if any_stats.labelled:
        rows.append((ANY_RULE, any_stats))
    for rid, st in rows:
        lines.append(f"{rid:<28} {st.fired:>6} {st.labelled:>9} {_ratio(st.precision):>10} {_ratio(st.recall):>7}")
    for kind in ("false negative", "false positive"):
        listed = [m for m in misses if m.kind == kind]
        if not listed:
            continue
        lines += ["", f"{kind}s ({len(listed)}):"]
        for m in listed:
            title = m.case.item.title or "(untitled)"
            if len(title) > _TITLE_WIDTH:
                title = title[: _TITLE_WIDTH - 1] + "…"
            rule = "" if m.rule == ANY_RULE else f" {m.rule}"
            lines.append(f"  {m.case.id}{rule} [{m.lang}] {title}")
            lines.append(f"      {score_beside_threshold(m)}: {m.explanation}")
            if m.case.why:
                lines.append(f"      why: {m.case.why}")
    if reasons:
        lines += ["", "misses by reason:"]
        for r in reasons:
            detail = ", ".join(f"{s} {n}" for s, n in r.subjects[:6])
            more = f" (+{len(r.subjects) - 6} more)" if len(r.subjects) > 6 else ""
            label = f"{r.kind}: {r.category}"
            lines.append(f"  {label:<48} {r.count:>5}" + (f"   {detail}{more}" if detail else ""))
    if languages and any(row.tp + row.fp + row.fn + row.tn for row in languages):
        lines += ["", "by language:"]
        lines.append(f"  {'language':<16} {'items':>6} {'FN':>5} {'FP':>5} {'precision':>10} {'recall':>7}")
        for row in languages:
            prec, rec = _ratio(row.precision), _ratio(row.recall)
            lines.append(f"  {row.lang:<16} {row.items:>6} {row.fn:>5} {row.fp:>5} {prec:>10} {rec:>7}")
    return lines


def json_report(
    cases: Sequence[Case],
    stats: Mapping[str, RuleStats],
    any_stats: RuleStats,
    misses: Sequence[Miss],
    reasons: Sequence[ReasonCount],
    languages: Sequence[LanguageRow],
) -> dict[str, Any]:
    def rule_doc(st: RuleStats) -> dict[str, Any]:
        return {
            "fired": st.fired,
            "labelled": st.labelled,
            "precision": st.precision,
            "recall": st.recall,
            "false_positives": st.false_positives,
            "false_negatives": st.false_negatives,
        }

    return {
        "items": len(cases),
        "rules": {rid: rule_doc(st) for rid, st in stats.items()},
        "any_rule": rule_doc(any_stats) if any_stats.labelled else None,
        "misses": [
            {
                "id": m.case.id,
                "kind": m.kind,
                "rule": None if m.rule == ANY_RULE else m.rule,
                "lang": m.lang,
                "title": m.case.item.title,
                "deciding_rule": m.verdict.rule_id if m.verdict else None,
                "score": m.verdict.score if m.verdict else None,
                "threshold": m.verdict.threshold if m.verdict else None,
                "reason": m.category,
                "subject": m.subject,
                "explanation": m.explanation,
            }
            for m in misses
        ],
        "by_reason": [
            {"kind": r.kind, "reason": r.category, "count": r.count, "subjects": dict(r.subjects)} for r in reasons
        ],
        "by_language": [
            {
                "lang": row.lang,
                "items": row.items,
                "tp": row.tp,
                "fp": row.fp,
                "fn": row.fn,
                "tn": row.tn,
                "precision": row.precision,
                "recall": row.recall,
            }
            for row in languages
        ],
    }
