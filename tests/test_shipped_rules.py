"""Tests for the shipped rules/karabakh.toml: it validates, its examples pass, and it keeps its
precision and recall on the labelled development set tests/data/labelled.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.matcher import Matcher
from daemon.rules.ruleset import check_examples, load_rules

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
LABELLED = REPO / "tests" / "data" / "labelled.jsonl"
# Floors guard against regressions; the goal for the shipped rules is 0.95 for both.
MIN_PRECISION = 0.95
MIN_RECALL = 0.95

needs_rules = pytest.mark.skipif(not (RULES / "karabakh.toml").exists(), reason="rules/karabakh.toml not present")


@needs_rules
class TestShippedRules:
    def test_load_without_errors_or_warnings(self) -> None:
        """The shipped rules validate cleanly."""
        report = load_rules(RULES)
        assert report.errors == ()
        assert report.warnings == ()
        assert len(report.ruleset) >= 1

    def test_examples_pass(self) -> None:
        """Every example in the shipped rules comes out as the rule says."""
        assert [str(f) for f in check_examples(load_rules(RULES).ruleset)] == []

    @pytest.mark.skipif(not LABELLED.exists(), reason="tests/data/labelled.jsonl not present")
    def test_precision_and_recall_on_labelled_set(self) -> None:
        """Micro-averaged precision and recall over every (item, rule) label stay above the floors."""
        matcher = Matcher(load_rules(RULES).ruleset)
        tp = fp = fn = 0
        for line in LABELLED.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            item = Item(
                feed=row.get("feed", "demo"),
                key=row["id"],
                title=row.get("title", ""),
                link=None,
                summary=row.get("summary", ""),
                content=row.get("content", ""),
            )
            fired = {m.rule_id for m in matcher.score(item)}
            for rule_id, expected in row["labels"].items():
                got = rule_id in fired
                tp += got and expected
                fp += got and not expected
                fn += expected and not got
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        assert precision >= MIN_PRECISION, f"precision {precision:.3f}"
        assert recall >= MIN_RECALL, f"recall {recall:.3f}"
