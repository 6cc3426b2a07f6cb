"""End to end on the shipped demo: the real CLI in a subprocess, a real SQLite file, the real rules."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO, cli_env


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the shipped config, rules and demo feed, so runs never touch the checkout's var/."""
    for name in ("config.toml",):
        shutil.copy(REPO / name, tmp_path / name)
    for folder in ("rules", "seeds"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def run_once(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", "--once"], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=120, check=False
    )


def delivered(stdout: str) -> int:
    """Alerts the console showed: one per ALERT block, plus those folded into a GROUPED block by storm control."""
    folded = sum(int(n) for n in re.findall(r"^  (\d+) more items? matched ", stdout, flags=re.MULTILINE))
    return stdout.count("\nALERT [") + folded


def fired(db: Path) -> dict[str, list[str]]:
    """guid → rules that alerted for it (from the alerts the run recorded)."""
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT a.rule_id, i.key FROM alerts a JOIN items i ON i.id = a.item_id").fetchall()
    conn.close()
    out: dict[str, list[str]] = {}
    for rule, key in rows:
        out.setdefault(key.removeprefix("id:"), []).append(rule)
    return out


class TestDemo:
    def test_alerts_match_expected_and_do_not_repeat(self, demo: Path) -> None:
        """Each expected story alerts once per listed rule, quiet items never; a second run prints nothing."""
        first = run_once(demo)
        assert first.returncode == 0, first.stderr
        expected = tomllib.loads((demo / "seeds" / "expected.toml").read_text())
        got = fired(demo / "var" / "feedwatch.db")
        for story in expected["story"]:
            rules = sorted(rule for guid in story["items"] for rule in got.get(guid, []))
            assert rules == sorted(story["rules"]), story["id"]
        for guid in expected["quiet"]["items"]:
            assert guid not in got, guid
        assert delivered(first.stdout) == sum(len(s["rules"]) for s in expected["story"])
        # Every block explains itself: rule, severity, score and the matched terms.
        assert "karabakh-fighting  score" in first.stdout
        assert "why: " in first.stdout

        second = run_once(demo)
        assert second.returncode == 0, second.stderr
        assert "ALERT [" not in second.stdout

    def test_parsing_in_worker_processes_gives_the_same_alerts(self, demo: Path) -> None:
        """With parse_workers set, feeds are parsed in worker processes and the alerts are identical."""
        config = demo / "config.toml"
        config.write_text(config.read_text().replace("[polling]\n", "[polling]\nparse_workers = 2\n"))
        out = run_once(demo)
        assert out.returncode == 0, out.stderr
        expected = tomllib.loads((demo / "seeds" / "expected.toml").read_text())
        assert delivered(out.stdout) == sum(len(s["rules"]) for s in expected["story"])

    def test_deleting_state_brings_alerts_back(self, demo: Path) -> None:
        """State lives in var/: removing it makes the next run alert again."""
        assert "ALERT [" in run_once(demo).stdout
        shutil.rmtree(demo / "var")
        assert "ALERT [" in run_once(demo).stdout

    def test_version(self) -> None:
        """--version prints the program name and version."""
        out = subprocess.run([*CLI, "--version"], env=cli_env(), capture_output=True, text=True, check=True)
        assert out.stdout.startswith("feedwatch ")


class TestCheck:
    def test_shipped_files_pass(self, demo: Path) -> None:
        """`feedwatch check` accepts the shipped config and rules and lists the rules."""
        out = subprocess.run([*CLI, "check"], cwd=demo, env=cli_env(), capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert "rule karabakh-fighting" in out.stdout

    def test_broken_rule_file_is_exit_2_with_location(self, demo: Path) -> None:
        """A syntax error in a rule file fails check with exit 2 and file:line:column."""
        path = demo / "rules" / "karabakh.toml"
        path.write_text(path.read_text() + '\n[rule.broken\nthreshold = "x"\n')
        out = subprocess.run([*CLI, "check"], cwd=demo, env=cli_env(), capture_output=True, text=True, check=False)
        assert out.returncode == 2
        assert "karabakh.toml:" in out.stderr

    def test_broken_example_fails_check(self, demo: Path) -> None:
        """An example the rule no longer satisfies fails check with the rule, the example and why."""
        path = demo / "rules" / "karabakh.toml"
        path.write_text(
            path.read_text()
            + '\n[[rule.karabakh-fighting.examples]]\ntitle = "A quiet day at the stud farm"\nexpect = true\n'
        )
        out = subprocess.run([*CLI, "check"], cwd=demo, env=cli_env(), capture_output=True, text=True, check=False)
        assert out.returncode == 2
        assert "karabakh-fighting" in out.stderr
        assert "expected a match but the rule did not fire" in out.stderr

    def test_run_refuses_invalid_rules_with_exit_2(self, demo: Path) -> None:
        """A daemon that cannot load valid rules at start exits 2 with one clear line."""
        (demo / "rules" / "bad.toml").write_text('[rule.x]\nthreshhold = 2\n[rule.x.groups.g]\nterms = ["a"]\n')
        out = run_once(demo)
        assert out.returncode == 2
        assert "bad.toml" in out.stderr
        assert "threshold" in out.stderr

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ('[[feeds]]\nurl = "seeds/demo.xml"\ninterval = "fast"\n', "feeds[0].interval"),
            ("[[feeds]\n", "config.toml:1:8: TOML syntax error"),
        ],
    )
    def test_config_errors_exit_2(self, demo: Path, config: str, message: str) -> None:
        """Config mistakes end every command with exit 2 and a one-line message naming the key."""
        (demo / "config.toml").write_text(config)
        out = subprocess.run([*CLI, "check"], cwd=demo, env=cli_env(), capture_output=True, text=True, check=False)
        assert out.returncode == 2
        assert message in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1

    def test_missing_config(self, tmp_path: Path) -> None:
        """Without a config file the error says which path was tried."""
        out = subprocess.run([*CLI, "run", "--once"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
        assert out.returncode == 2
        assert "config.toml: file not found" in out.stderr
