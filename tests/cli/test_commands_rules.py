"""`feedwatch score` and `feedwatch backtest` as real subprocesses on the shipped rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from daemon.models import Hit, Item, Severity
from daemon.rules.backtest import Case, RuleStats, highlight, measure
from daemon.rules.matcher import Evaluation
from tests.conftest import CLI, REPO, cli_env


def feedwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, env=cli_env(), capture_output=True, text=True, check=False)


class TestScore:
    def test_explains_a_firing_rule(self) -> None:
        """score on a title prints whether each rule fires, the score and the highlighted hits."""
        out = feedwatch("score", "--title", "Heavy shelling in Martuni overnight", "--summary", "Nagorno-Karabakh")
        assert out.returncode == 0, out.stderr
        assert "karabakh-fighting: FIRES" in out.stdout
        assert "[Martuni]" in out.stdout
        assert "[shelling]" in out.stdout

    def test_json_for_machines(self) -> None:
        """--json gives every rule's verdict with hits and spans."""
        out = feedwatch("score", "--json", "--title", "Baku hosts the Azerbaijan Grand Prix")
        doc = json.loads(out.stdout)
        assert all(not r["fired"] for r in doc[0]["rules"])

    def test_feed_file(self) -> None:
        """score accepts a feed file and reports how many items would alert."""
        out = feedwatch("score", "seeds/demo.xml")
        assert out.returncode == 0, out.stderr
        assert "items would alert" in out.stdout


class TestBacktest:
    def test_labelled_set_reports_precision_recall(self) -> None:
        """backtest on a labelled JSONL prints per-rule precision and recall."""
        out = feedwatch("backtest", "--json", "tests/data/labelled.jsonl")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["items"] >= 60
        assert set(doc["rules"]) >= {"karabakh-fighting", "karabakh-diplomacy", "foreign-involvement"}
        assert doc["rules"]["karabakh-fighting"]["labelled"] == doc["items"]

    def test_bad_jsonl_line_is_named(self, tmp_path: Path) -> None:
        """A malformed JSONL line is a clear error naming the file and line, exit 2."""
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"title": "ok"}\n{not json}\n')
        out = feedwatch("backtest", str(bad))
        assert out.returncode == 2
        assert "bad.jsonl: line 2: not JSON" in out.stderr


def ev(rule: str, fired: bool) -> Evaluation:
    return Evaluation(rule, fired, 1.0, Severity.INFO, (), ())


def test_measure_confusion_matrix() -> None:
    """measure counts true/false positives/negatives only where a label exists."""
    item = Item(feed="f", key="k", title="t", link=None, summary="")
    results = [
        (Case("a", item, {"r": True}), [ev("r", True)]),
        (Case("b", item, {"r": False}), [ev("r", True)]),
        (Case("c", item, {"r": True}), [ev("r", False)]),
        (Case("d", item, {}), [ev("r", True)]),
    ]
    st: RuleStats = measure(["r"], results)["r"]
    assert (st.fired, st.tp, st.fp, st.fn, st.tn) == (3, 1, 1, 1, 0)
    assert st.precision == 0.5
    assert st.false_positives == ["b"]


def test_highlight_marks_spans() -> None:
    """highlight wraps the original text at each hit's span."""
    hit = Hit("g", "Martuni", "Martuni", "title", 11, 18, "Martuni", 1.0)
    assert highlight("Shells hit Martuni.", [hit], "title") == "Shells hit [Martuni]."
