"""Tests for the shipped watch pack (rules/*.toml, rules/lists/*.toml): it validates, its examples pass,
it keeps its precision and recall on our own written sets (tests/data/labelled.jsonl, written.jsonl, written2.jsonl),
and, when the shared real-news dev set is present, on real published news.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.load import check_examples, load_rules
from daemon.rules.matcher import Matcher

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
WRITTEN = tuple(REPO / "tests" / "data" / name for name in ("labelled.jsonl", "written.jsonl", "written2.jsonl"))
# Rule ids that scripts and channels refer to; the pack may add more, prefixed "karabakh-".
STABLE_IDS = {"karabakh-fighting", "karabakh-diplomacy", "foreign-involvement"}
MIN_WRITTEN = 0.95
DEV_MIN_PRECISION = 0.92
DEV_MIN_RECALL = 0.85


def _find_dev() -> Path | None:
    if env := os.environ.get("FEEDWATCH_REALNEWS_DEV"):
        return Path(env)
    for folder in REPO.parents:
        if (path := folder / "shared" / "realnews" / "dev.jsonl").exists():
            return path
    return None


DEV = _find_dev()
needs_rules = pytest.mark.skipif(not (RULES / "karabakh.toml").exists(), reason="rules/karabakh.toml not present")


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fired(matcher: Matcher, row: dict[str, object]) -> set[str]:
    item = Item(
        feed="demo", key=str(row["id"]), title=str(row["title"]), link=None, summary=str(row.get("summary", ""))
    )
    return {m.rule_id for m in matcher.score(item)}


def _pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_rules(RULES).ruleset)


@needs_rules
class TestShippedRules:
    def test_load_without_errors_or_warnings(self) -> None:
        """The shipped pack validates cleanly and keeps the rule ids scripts rely on."""
        report = load_rules(RULES)
        assert report.errors == ()
        assert report.warnings == ()
        ids = set(report.ruleset.ids)
        assert ids >= STABLE_IDS
        assert all(i.startswith("karabakh-") for i in ids - STABLE_IDS), sorted(ids)

    def test_examples_pass(self) -> None:
        """Every example in the shipped rules comes out as the rule says."""
        assert [str(f) for f in check_examples(load_rules(RULES).ruleset)] == []

    def test_written_sets_per_rule_labels(self, matcher: Matcher) -> None:
        """Micro-averaged precision and recall over every (item, rule) label of our written sets reach 0.95;
        a rule left out of an item's labels has no expectation there.
        """
        tp = fp = fn = 0
        for path in WRITTEN:
            for row in _rows(path):
                fired = _fired(matcher, row)
                labels = row["labels"]
                assert isinstance(labels, dict)
                for rule_id, expected in labels.items():
                    got = rule_id in fired
                    tp += got and expected
                    fp += got and not expected
                    fn += expected and not got
        precision, recall = _pr(tp, fp, fn)
        assert precision >= MIN_WRITTEN, f"precision {precision:.3f}"
        assert recall >= MIN_WRITTEN, f"recall {recall:.3f}"

    def test_written_sets_any_rule(self, matcher: Matcher) -> None:
        """Counting an item as caught when any rule fires, precision and recall on our written sets reach 0.95."""
        tp = fp = fn = 0
        for path in WRITTEN:
            for row in _rows(path):
                labels = row["labels"]
                assert isinstance(labels, dict)
                expected, got = any(labels.values()), bool(_fired(matcher, row))
                tp += got and expected
                fp += got and not expected
                fn += expected and not got
        precision, recall = _pr(tp, fp, fn)
        assert precision >= MIN_WRITTEN, f"precision {precision:.3f}"
        assert recall >= MIN_WRITTEN, f"recall {recall:.3f}"

    def test_scoring_agrees_with_full_verdicts(self, matcher: Matcher) -> None:
        """``score`` (which skips building the reasons of rules that do not fire) fires exactly the rules,
        with exactly the matches, that ``evaluate`` judges fired, on the written sets and the rules' examples.
        """
        items = [
            Item(
                feed="demo", key=str(row["id"]), title=str(row["title"]), link=None, summary=str(row.get("summary", ""))
            )
            for path in WRITTEN
            for row in _rows(path)
        ]
        items += [
            Item(feed="demo", key=f"{rule.id}/{n}", title=ex.title, link=None, summary=ex.summary, content=ex.content)
            for rule in matcher.rules
            for n, ex in enumerate(rule.examples)
        ]
        fired = 0
        for item in items:
            full = [e.to_match() for e in matcher.evaluate(item) if e.fired]
            assert matcher.score(item) == full, item.title
            fired += bool(full)
        assert fired > 100

    def test_lookup_order_keys_change_no_verdict(self, matcher: Matcher, monkeypatch: pytest.MonkeyPatch) -> None:
        """The never-matching keys that order the automaton's lookups leave every verdict and hit as it was."""
        import daemon.rules.matcher as matcher_module

        monkeypatch.setattr(matcher_module, "_COMMON_CHARS", "")
        plain = Matcher(load_rules(RULES).ruleset)
        monkeypatch.undo()
        assert len(matcher._automaton or ()) > len(plain._automaton or ())
        items = [
            Item(
                feed="demo", key=str(row["id"]), title=str(row["title"]), link=None, summary=str(row.get("summary", ""))
            )
            for path in [*WRITTEN, *([DEV] if DEV is not None else [])]  # the real set is in many scripts
            for row in _rows(path)
        ]
        for item in items:
            assert matcher.evaluate(item) == plain.evaluate(item), item.title

    @pytest.mark.skipif(DEV is None, reason="shared/realnews/dev.jsonl not found beside or above the repo")
    def test_real_news_dev_set(self, matcher: Matcher) -> None:
        """On real published news (shared/realnews/dev.jsonl, 0/1 labels) any-rule precision reaches 0.92
        and recall 0.85.
        """
        assert DEV is not None
        tp = fp = fn = 0
        for row in _rows(DEV):
            expected, got = bool(row["label"]), bool(_fired(matcher, row))
            tp += got and expected
            fp += got and not expected
            fn += expected and not got
        precision, recall = _pr(tp, fp, fn)
        assert precision >= DEV_MIN_PRECISION, f"precision {precision:.3f}"
        assert recall >= DEV_MIN_RECALL, f"recall {recall:.3f}"


@needs_rules
@pytest.mark.parametrize("fuzzy_share", [0.0, 0.25])
def test_matcher_benchmark_copies_of_the_pack_load(tmp_path: Path, fuzzy_share: float) -> None:
    """The matcher benchmark's copies of the shipped pack, every word respelled, load without errors: a
    change to the pack cannot break the benchmark unnoticed."""
    from benchmarks.matcher import N_RULES, SEED
    from benchmarks.newsgen import replicate_rules

    text = replicate_rules(RULES, N_RULES, SEED, fuzzy_share=fuzzy_share)
    (tmp_path / "bench.toml").write_text(text, encoding="utf-8")
    report = load_rules(tmp_path)
    assert [str(e) for e in report.errors] == []
    assert len(report.ruleset) == N_RULES
