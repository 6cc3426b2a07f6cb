"""A backtracking rule against a real `feedwatch run`: the watchdog keeps its beat, healthy feeds keep alerting,
and a restart does not stall on the item that caused it.

systemd cannot run as PID 1 here, so the one stand-in is its notify socket: an AF_UNIX datagram socket under
tmp_path named by NOTIFY_SOCKET, with WATCHDOG_USEC set as `WatchdogSec=1s` would set it. Everything else is real:
the daemon subprocess, the feeds served on 127.0.0.1, the SQLite file.
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.models import AlertKind
from tests.kit.feeds import FeedServer
from tests.kit.process import QUAKE_RULE, Daemon, running_site, write_site

pytestmark = pytest.mark.slow

MAX_GAP = 2.0  # seconds between WATCHDOG=1 pings, at most (pings are due every 0.5 s)
# `re` spends minutes on this title with either pattern (and each field is matched: title and summary).
HOSTILE_TITLE = "a" * 30 + "!"
BACKTRACK_RULE = """\
[rule.backtrack]
description = "A rule whose regex backtracks catastrophically"
threshold = 1.0

[rule.backtrack.groups.what]
terms = [{ regex = "(a+)+$" }, { regex = "(a|a)+$" }]
"""


def serve(httpserver: HTTPServer, path: str) -> FeedServer:
    return FeedServer(httpserver, path, etags=False)


@pytest.fixture
def feeds(httpserver: HTTPServer) -> tuple[FeedServer, FeedServer]:
    """The feed that will carry the hostile title, and a healthy one next to it."""
    return serve(httpserver, "/wire.xml"), serve(httpserver, "/calm.xml")


@pytest.fixture
def daemon(tmp_path: Path, feeds: tuple[FeedServer, FeedServer]) -> Iterator[Daemon]:
    wire, calm = feeds
    calm.add("c1", "Strong earthquake near Oslo")
    extra = f'\n[[feeds]]\nname = "calm"\nurl = "{calm.url}"\nbackfill = "all"\n'
    write_site(tmp_path, feed_url=wire.url, rules={"quake.toml": QUAKE_RULE, "bt.toml": BACKTRACK_RULE}, extra=extra)
    with running_site(tmp_path) as d:
        yield d


def titles(d: Daemon) -> set[str]:
    return {a.title for a in d.alerts() if a.kind != AlertKind.OPS}


def ops(d: Daemon) -> list[str]:
    return [a.title for a in d.alerts() if a.kind == AlertKind.OPS]


def pings(d: Daemon, mark: int) -> list[float]:
    return [n.at for n in d.notify.since(mark) if n.has("WATCHDOG", "1") and n.pid == d.pid]


def max_gap(d: Daemon, mark: int) -> float:
    """The longest wait between WATCHDOG=1 pings since ``mark``, counting the one still running now."""
    got = pings(d, mark)
    assert len(got) >= 4, got
    return max(b - a for a, b in itertools.pairwise([*got, time.monotonic()]))


def seen(d: Daemon, title: str) -> bool:
    with sqlite3.connect(f"file:{d.db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT 1 FROM items WHERE title = ?", (title,)).fetchone() is not None


class TestBacktrackingRule:
    def test_watchdog_feeds_and_restart_survive_a_hostile_title(
        self, daemon: Daemon, feeds: tuple[FeedServer, FeedServer]
    ) -> None:
        """Hostile titles cost only the rule: pings stay ≤ 2 s apart, the healthy feed alerts, one operator alert
        names the rule, the item is committed, and the next start goes straight past it.
        """
        wire, calm = feeds
        ready = daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: "Strong earthquake near Oslo" in titles(daemon), "the healthy backlog alert")

        wire.add("h1", HOSTILE_TITLE)
        wire.add("h2", "b" + HOSTILE_TITLE)
        calm.add("c2", "Strong earthquake near Bergen")
        daemon.wait_until(lambda: "Strong earthquake near Bergen" in titles(daemon), "a healthy alert", timeout=8)
        daemon.wait_until(
            lambda: seen(daemon, HOSTILE_TITLE) and seen(daemon, "b" + HOSTILE_TITLE),
            "the hostile items committed",
            timeout=8,
        )
        daemon.wait_until(lambda: bool(ops(daemon)), "the operator alert")
        wire.add("h3", "c" + HOSTILE_TITLE)  # overruns again: no second operator alert for the same rule
        calm.add("c3", "Strong earthquake near Lyon")
        daemon.wait_until(lambda: "Strong earthquake near Lyon" in titles(daemon), "a later healthy alert")
        daemon.wait_until(lambda: seen(daemon, "c" + HOSTILE_TITLE), "the third hostile item committed", timeout=8)
        gap = max_gap(daemon, ready + 1)
        print(f"watchdog max gap while scoring hostile titles: {gap:.3f} s")
        assert gap <= MAX_GAP
        assert len(ops(daemon)) == 1, ops(daemon)
        assert "backtrack" in ops(daemon)[0]
        assert daemon.stderr().count('"event": "rule_regex_overrun"') >= 1

        mark = daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit(20) == 0, daemon.stderr()[-2000:]
        ready = daemon.wait_ready(daemon.start(), timeout=10)
        calm.add("c4", "Strong earthquake near Turin")
        daemon.wait_until(lambda: "Strong earthquake near Turin" in titles(daemon), "an alert after the restart")
        daemon.wait_until(lambda: len(pings(daemon, ready + 1)) >= 6, "a few pings after the restart")
        gap = max_gap(daemon, ready + 1)
        print(f"watchdog max gap after the restart: {gap:.3f} s")
        assert gap <= MAX_GAP
        assert mark < ready
        assert len(ops(daemon)) == 1  # nothing was scored again
        assert '"event": "rule_regex_overrun"' not in daemon.stderr()
