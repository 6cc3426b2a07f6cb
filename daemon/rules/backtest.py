"""Pure helpers for rule tooling: load test items, explain hits, and measure precision and recall."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError
from daemon.models import Hit, Item
from daemon.rules.matcher import Evaluation


@dataclass(frozen=True, slots=True)
class Case:
    """An item to score, with optional labels (rule id → should it fire)."""

    id: str
    item: Item
    labels: Mapping[str, bool] = field(default_factory=dict)


def read_jsonl(path: Path) -> list[Case]:
    """JSON lines with title/summary/content (and optional id, feed, labels); errors name the line."""
    cases = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"line {lineno}: not JSON: {exc.msg}", path=path) from None
        if not isinstance(data, dict):
            raise ConfigError(f"line {lineno}: expected a JSON object", path=path)
        labels = data.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, bool) for v in labels.values()):
            raise ConfigError(f'line {lineno}: "labels" must map rule ids to true/false', path=path)
        ident = str(data.get("id") or f"line-{lineno}")
        cases.append(Case(ident, item_from(data, ident), labels))
    return cases


def item_from(data: Mapping[str, Any], ident: str) -> Item:
    return Item(
        feed=str(data.get("feed") or "cli"),
        key=ident,
        title=str(data.get("title") or ""),
        link=data.get("link") if isinstance(data.get("link"), str) else None,
        summary=str(data.get("summary") or ""),
        content=str(data.get("content") or ""),
    )


def highlight(text: str, hits: Iterable[Hit], field: str, *, start: str = "[", end: str = "]") -> str:
    """``text`` with every hit of ``field`` wrapped in markers (non-overlapping, left to right)."""
    spans = sorted({(h.start, h.end) for h in hits if h.field == field})
    out, pos = [], 0
    for s, e in spans:
        if s < pos:
            continue
        out += [text[pos:s], start, text[s:e], end]
        pos = e
    out.append(text[pos:])
    return "".join(out)


@dataclass(slots=True)
class RuleStats:
    fired: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def measure(rule_ids: Sequence[str], results: Iterable[tuple[Case, Sequence[Evaluation]]]) -> dict[str, RuleStats]:
    """Per-rule counts and, where a case carries a label for the rule, the confusion matrix."""
    stats = {rid: RuleStats() for rid in rule_ids}
    for case, evaluations in results:
        fired = {e.rule_id for e in evaluations if e.fired}
        for rid, st in stats.items():
            did = rid in fired
            st.fired += did
            if rid not in case.labels:
                continue
            want = case.labels[rid]
            if did and want:
                st.tp += 1
            elif did:
                st.fp += 1
                st.false_positives.append(case.id)
            elif want:
                st.fn += 1
                st.false_negatives.append(case.id)
            else:
                st.tn += 1
    return stats
