"""`feedwatch run --dry-run`: shows what would alert, sends and records nothing (real CLI, real feed server)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import CLI, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.polling import entry, feed_toml, rss, write_config

ITEMS = (
    entry("a1", "Shelling near Martuni", link="https://n.example/a1"),
    entry("a2", "Drones and artillery over Talish", link="https://n.example/a2"),
    entry("a3", "Harvest festival in Goris", link="https://n.example/a3"),
)


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


def alerted(folder: Path) -> list[tuple[str, str, str]]:
    """(rule, severity, title) of every recorded alert, sorted: what a run did, minus ids and times."""
    rows = json.loads(feedwatch(folder, "alerts", "list", "--json", "-n", "100").stdout)
    return sorted((a["alert"]["rule_id"], a["alert"]["severity"], a["alert"]["title"]) for a in rows)


def tables(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "fw.db") as db:
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("feeds", "items", "alerts", "outbox")
        }


@pytest.fixture
def feed(httpserver: HTTPServer) -> FeedServer:
    """A feed answering 304 to its own ETag: a dry run that kept the ETag would hide the items."""
    return FeedServer(httpserver, body=rss(*ITEMS))


class TestDryRun:
    @pytest.mark.slow
    @pytest.mark.parametrize("once", [False, True])
    def test_real_run_afterwards_is_as_if_it_never_happened(self, tmp_path: Path, feed: FeedServer, once: bool) -> None:
        """Dry run then real run gives exactly the real run alone; the dry run printed those alerts."""
        dry, plain = tmp_path / "dry", tmp_path / "plain"
        for folder in (dry, plain):
            folder.mkdir()
            write_config(folder, feed_toml("wire", feed.url, backfill="all"))

        preview = feedwatch(dry, "run", "--dry-run", *(["--once"] if once else []))
        assert preview.returncode == 0, preview.stderr
        assert tables(dry) == {"feeds": 0, "items": 0, "alerts": 0, "outbox": 0}
        assert len(feed.requests) == 1

        for folder in (dry, plain):
            assert feedwatch(folder, "run", "--once").returncode == 0
        assert alerted(dry) == alerted(plain)
        assert tables(dry) == tables(plain)
        assert all("If-None-Match" not in r.headers for r in feed.requests[:2])

        would = sorted(re.findall(r"^would alert  (\S+)  \[(\w+)\]  wire: (.+?)  → console$", preview.stdout, re.M))
        assert would == alerted(plain)
        assert len(would) == 2
        assert "nothing was sent or recorded" in preview.stdout

    def test_after_a_real_run_nothing_new_would_alert(self, tmp_path: Path, feed: FeedServer) -> None:
        """With the feed already polled, a dry run uses the stored ETag and, like a real run, alerts nothing."""
        write_config(tmp_path, feed_toml("wire", feed.url, backfill="all"))
        assert feedwatch(tmp_path, "run", "--once").returncode == 0
        before = tables(tmp_path)
        preview = feedwatch(tmp_path, "run", "--dry-run")
        assert preview.returncode == 0
        assert "would alert" not in preview.stdout
        assert feed.requests[-1].headers.get("If-None-Match") == feed.etag
        assert tables(tmp_path) == before

    def test_silenced_and_unreachable(self, tmp_path: Path, feed: FeedServer) -> None:
        """A silence shows as "would not send (silenced)"; a feed that cannot be fetched makes exit 1."""
        write_config(tmp_path, feed_toml("wire", feed.url, backfill="all") + feed_toml("gone", "missing.xml"))
        assert (
            feedwatch(tmp_path, "silence", "add", "--rule", "watch", "--match", "Talish", "--for", "1h").returncode == 0
        )
        preview = feedwatch(tmp_path, "run", "--dry-run")
        assert preview.returncode == 1
        assert "would alert  watch  [info]  wire: Shelling near Martuni" in preview.stdout
        assert "would not send (silenced)  watch  [warning]  wire: Drones and artillery over Talish" in preview.stdout
        assert "dry_run_feed_failed" in preview.stderr
