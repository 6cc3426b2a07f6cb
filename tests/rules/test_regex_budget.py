"""A rule's regex runs with a time budget: a backtracking pattern costs one rule one item, never the daemon."""

from __future__ import annotations

import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.backtrack import backtrack_risk
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from tests.conftest import CLI, cli_env

HOSTILE = "a" * 24 + "!"  # `re` needs over a second per field on this; longer titles take days
RULES = """\
[rule.quake]
threshold = 1.0
[rule.quake.groups.what]
terms = ["earthquake"]

[rule.backtrack]
threshold = 1.0
[rule.backtrack.groups.what]
terms = [{ regex = "(a|a)+$" }]

[rule.nested]
threshold = 1.0
[rule.nested.groups.what]
terms = [{ regex = "x*(a|aa)+$" }]
"""


def matcher(tmp_path: Path, text: str = RULES, **kwargs: float) -> Matcher:
    (tmp_path / "r.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    report = load_rules(tmp_path)
    assert report.errors == (), report.errors
    return Matcher(report.ruleset, **kwargs)


def hostile_item() -> Item:
    return Item(feed="wire", key="k", title=f"earthquake {HOSTILE}", link=None, summary=f"earthquake {HOSTILE}")


class TestBudget:
    def test_overrunning_rules_are_skipped_and_named(self, tmp_path: Path) -> None:
        """Both backtracking rules are cut off within their budget and named; the plain rule still fires."""
        m = matcher(tmp_path, regex_budget=0.05)
        started = time.monotonic()
        scored = m.score_checked(hostile_item())
        elapsed = time.monotonic() - started
        assert [x.rule_id for x in scored.matches] == ["quake"]
        assert scored.overruns == ("backtrack", "nested")
        # Unbounded, these patterns run for minutes on this title; 2 rules x 50 ms plus a loaded CI machine
        # stays far below 5 s.
        assert elapsed < 5.0, elapsed

    def test_score_leaves_out_the_overrunning_rule(self, tmp_path: Path) -> None:
        """`score` (used by `feedwatch score` and backtests) returns only the rules that finished and fired."""
        m = matcher(tmp_path, regex_budget=0.05)
        assert [x.rule_id for x in m.score(hostile_item())] == ["quake"]

    def test_evaluate_says_why(self, tmp_path: Path) -> None:
        """Explanations name the time budget as the reason an overrunning rule did not fire."""
        m = matcher(tmp_path, regex_budget=0.05)
        verdicts = {e.rule_id: e for e in m.evaluate(hostile_item())}
        assert not verdicts["backtrack"].fired
        assert any("time budget" in r for r in verdicts["backtrack"].reasons), verdicts["backtrack"].reasons

    def test_harmless_text_is_not_affected(self, tmp_path: Path) -> None:
        """The same rules on ordinary text finish and fire as usual."""
        m = matcher(tmp_path, regex_budget=0.05)
        it = Item(feed="wire", key="k", title="earthquake, then aaaa", link=None, summary="")
        scored = m.score_checked(it)
        assert scored.overruns == ()
        assert [x.rule_id for x in scored.matches] == ["quake", "backtrack", "nested"]

    def test_matching_lets_other_threads_run(self, tmp_path: Path) -> None:
        """While a regex grinds in one thread, another thread (the event loop) is never held up for long."""
        m = matcher(tmp_path, regex_budget=1.0)
        done = threading.Event()

        def grind() -> None:
            m.score(hostile_item())
            done.set()

        worker = threading.Thread(target=grind)
        started = time.monotonic()
        worker.start()
        last, worst = time.monotonic(), 0.0
        while not done.is_set():
            time.sleep(0.01)
            now = time.monotonic()
            worst, last = max(worst, now - last), now
        worker.join()
        assert time.monotonic() - started >= 1.0  # it did grind: the test measured something
        # A regex holding the GIL would stall this thread for the whole 1 s; a busy machine adds gaps of ~0.2 s.
        assert worst < 0.5, worst


class TestBacktrackWarning:
    @pytest.mark.parametrize(
        "pattern",
        [r"(a+)+$", r"(a|a)+$", r"(\w+\s?)+$", r"(a*)*b", r"(?:x+y?)+z", r"(a|aa)*c", r"^(\d+|\w+)+\.", r"(.*a){12}"],
    )
    def test_known_backtrackers_are_flagged(self, pattern: str) -> None:
        """Nested quantifiers and overlapping repeated alternatives are recognised."""
        assert backtrack_risk(pattern) is not None

    @pytest.mark.parametrize(
        "pattern",
        [
            r"cease ?fire",
            r"\bf ?16s?\b",
            r"(?:drone|missile)s?",
            r"\d{2,4} dead",
            r"(ab)+c",
            r"(?:a|b)+c",
            r"x{2}",
            r"\b(?:halt|stop)\w* (?:\w+ ){0,2}(?:fighting|war)",
        ],
    )
    def test_ordinary_patterns_pass(self, pattern: str) -> None:
        """Everyday patterns, including repeated groups without overlap, raise no warning."""
        assert backtrack_risk(pattern) is None

    def test_check_warns_and_exits_0_and_the_rule_still_loads(self, tmp_path: Path) -> None:
        """`feedwatch check` names the risky rule in a warning, exits 0, and the rule is part of the RuleSet."""
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "r.toml").write_text(RULES)
        (tmp_path / "config.toml").write_text('[daemon]\nrules_dir = "rules"\n')
        done = subprocess.run(
            [*CLI, "check"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
        assert any("(a|a)+$" in w and "backtrack" in w for w in warnings), done.stderr
        assert any("x*(a|aa)+$" in w and "backtrack" in w for w in warnings), done.stderr
        assert not any("earthquake" in w for w in warnings)
        report = load_rules(tmp_path / "rules")
        assert {r.id for r in report.ruleset.rules} == {"quake", "backtrack", "nested"}
