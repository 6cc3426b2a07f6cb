"""Everyday commands as real subprocesses: alerts list filters, show by prefix, outbox list, feeds
test/enable/disable and rules list."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import CLI, REPO, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.polling import entry, feed_toml, rss, write_config
from tests.kit.smtp import free_port

pytestmark = pytest.mark.slow  # a dozen CLI subprocesses and two full runs


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


def listed(cwd: Path, *args: str) -> list[dict[str, object]]:
    out = feedwatch(cwd, "alerts", "list", "--json", "-n", "100", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, run once with the diplomacy rule silenced."""
    folder = tmp_path_factory.mktemp("demo")
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for name in ("rules", "seeds"):
        shutil.copytree(REPO / name, folder / name)
    assert feedwatch(folder, "silence", "add", "--rule", "karabakh-diplomacy", "--for", "1h").returncode == 0
    assert feedwatch(folder, "run", "--once").returncode == 0
    return folder


class TestAlertsList:
    def test_filters(self, demo: Path) -> None:
        """--rule, --severity, --status and --since each narrow the list; -n caps it."""
        everything = listed(demo)
        assert len(everything) > 5
        rules = {a["alert"]["rule_id"] for a in listed(demo, "--rule", "karabakh-fighting")}  # type: ignore[index]
        assert rules == {"karabakh-fighting"}
        severities = {a["alert"]["severity"] for a in listed(demo, "--severity", "critical")}  # type: ignore[index]
        assert severities == {"critical"}
        silenced = listed(demo, "--status", "silenced")
        assert silenced
        assert {a["alert"]["rule_id"] for a in silenced} == {"karabakh-diplomacy"}  # type: ignore[index]
        assert all(a["silence_id"] for a in silenced)
        assert all(d["state"] == "delivered" for a in listed(demo, "--status", "delivered") for d in a["deliveries"])  # type: ignore[attr-defined]
        assert len(listed(demo, "--since", "1h")) == len(everything)
        assert listed(demo, "--since", "2999-01-01") == []
        assert len(listed(demo, "-n", "2")) == 2

    def test_bad_since(self, demo: Path) -> None:
        """An unreadable --since is a usage error naming what was expected."""
        out = feedwatch(demo, "alerts", "list", "--since", "lately")
        assert out.returncode == 2
        assert "--since" in out.stderr

    def test_show_by_prefix(self, demo: Path) -> None:
        """alerts show takes a unique prefix of an id; an ambiguous one is refused."""
        alert_id = str(listed(demo)[0]["alert"]["alert_id"])  # type: ignore[index]
        shown = json.loads(feedwatch(demo, "alerts", "show", alert_id[:12], "--json").stdout)
        assert shown["alert"]["alert_id"] == alert_id
        ambiguous = feedwatch(demo, "alerts", "show", "fw-")
        assert ambiguous.returncode == 2
        assert "ambiguous" in ambiguous.stderr

    def test_rules_list(self, demo: Path) -> None:
        """rules list names each rule with its route, its alerts of the week and the silence on it."""
        doc = json.loads(feedwatch(demo, "rules", "list", "--json").stdout)
        by_id = {r["id"]: r for r in doc["rules"]}
        assert by_id["karabakh-fighting"]["alerts_7d"] > 0
        assert by_id["karabakh-fighting"]["channels"] == ["console"]
        assert by_id["karabakh-diplomacy"]["silenced_by"]
        assert by_id["karabakh-fighting"]["silenced_by"] == []

    def test_rules_list_text_reads(self, demo: Path) -> None:
        """rules list for people puts a fixed severity in words beside the threshold, never glued to the number."""
        out = feedwatch(demo, "rules", "list")
        assert out.returncode == 0, out.stderr
        assert "karabakh-diplomacy  threshold 1 (info)  →" in out.stdout
        assert "threshold 1 (warning 1, critical 4)" in out.stdout


@pytest.mark.parametrize("command", [["alerts", "list"], ["outbox", "list"]])
@pytest.mark.parametrize("limit", ["0", "-5", "many"])
def test_limit_must_be_positive(demo: Path, command: list[str], limit: str) -> None:
    """-n takes a positive count: SQLite would read a negative LIMIT as "no limit at all"."""
    out = feedwatch(demo, *command, "-n", limit)
    assert out.returncode == 2
    assert "expected a whole number of at least 1" in out.stderr


def test_status_after_a_once_cycle(demo: Path) -> None:
    """After `run --once` alone, status says no daemon runs (exit 4) and why, not that nothing ever ran."""
    out = feedwatch(demo, "status")
    assert out.returncode == 4, out.stderr
    assert "NOT RUNNING: no daemon has run with this database (`run --once` cycles leave no heartbeat)" in out.stdout


class TestOutboxList:
    def test_dead_letter_listed(self, tmp_path: Path) -> None:
        """A delivery that failed for good makes `run --once` exit 1 and is listed as dead with its error."""
        (tmp_path / "feed.xml").write_bytes(rss(entry("a", "Shelling near Martuni")))
        config = write_config(tmp_path, feed_toml("wire", "feed.xml", backfill="all"), alerts={"max_attempts": 1})
        port = free_port()
        config.write_text(
            config.read_text().replace('default_channels = ["console"]', 'default_channels = ["hook"]')
            + f'[channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\ntimeout = "1s"\n'
        )
        once = feedwatch(tmp_path, "run", "--once")
        assert once.returncode == 1, once.stderr  # degraded: cron must notice an alert that was never delivered
        assert "1 delivery failed for good" in once.stderr
        [dead] = json.loads(feedwatch(tmp_path, "outbox", "list", "--json").stdout)
        assert (dead["channel"], dead["state"], dead["rule_id"], dead["attempts"]) == ("hook", "dead", "watch", 1)
        assert f"127.0.0.1:{port}" in dead["error"]
        text = feedwatch(tmp_path, "outbox", "list")
        assert " → hook  dead  watch [info]" in text.stdout
        assert json.loads(feedwatch(tmp_path, "outbox", "list", "--json", "--state", "delivered").stdout) == []


class TestFeedsCommands:
    def test_feeds_test_keeps_nothing(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """feeds test fetches, parses and scores a URL once and creates no database."""
        server = FeedServer(httpserver, body=rss(entry("a", "Shelling near Martuni"), entry("b", "Harvest in Goris")))
        write_config(tmp_path, "")
        out = feedwatch(tmp_path, "feeds", "test", server.url)
        assert out.returncode == 0, out.stderr
        assert "HTTP 200" in out.stdout
        assert "Shelling near Martuni  → watch [info] 2" in out.stdout
        assert "Harvest in Goris" not in out.stdout
        assert "1 of 2 items fire a rule" in out.stdout
        assert not (tmp_path / "fw.db").exists()
        dead_url = f"http://127.0.0.1:{free_port()}/feed"
        failing = feedwatch(tmp_path, "feeds", "test", dead_url)
        assert failing.returncode == 1
        assert failing.stderr.count(dead_url) == 1, failing.stderr  # one clear line, the URL named once

    def test_disable_enable_and_410(self, tmp_path: Path, httpserver: HTTPServer) -> None:
        """disable/enable edit the feed's `enabled`; enable also lifts the stop a 410 recorded."""
        server = FeedServer(httpserver, body=rss())
        config = write_config(tmp_path, "# my feeds\n" + feed_toml("wire", server.url))
        assert feedwatch(tmp_path, "feeds", "disable", "wire").returncode == 0
        assert "enabled = false" in config.read_text()
        assert "# my feeds" in config.read_text()
        assert feedwatch(tmp_path, "feeds", "enable", "wire").returncode == 0
        assert "enabled" not in config.read_text()

        server.status = 410
        feedwatch(tmp_path, "run", "--once")
        with sqlite3.connect(tmp_path / "fw.db") as db:
            assert db.execute("SELECT disabled FROM feeds WHERE name = 'wire'").fetchone() == (1,)
        lifted = feedwatch(tmp_path, "feeds", "enable", "wire")
        assert "wire was stopped" in lifted.stdout
        with sqlite3.connect(tmp_path / "fw.db") as db:
            assert db.execute("SELECT disabled, consecutive_failures FROM feeds WHERE name = 'wire'").fetchone() == (
                0,
                0,
            )
        server.status = 200
        assert feedwatch(tmp_path, "run", "--once").returncode == 0
        assert server.requests[-1].path == "/feed"
        assert len(server.requests) == 2
        assert feedwatch(tmp_path, "feeds", "enable", "nothing").returncode == 2
