"""The daemon as systemd runs it: a real `feedwatch run` subprocess, a real notify socket, real signals.

Each test starts `python -m daemon run` with NOTIFY_SOCKET bound under tmp_path and WATCHDOG_USEC=1s,
feeds from pytest-httpserver on 127.0.0.1, and polling every 2 s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from daemon.notify.email import message_id
from tests.kit.feeds import FeedServer
from tests.kit.process import QUAKE_RULE, Daemon, running_site, write_site


@pytest.fixture
def feed(httpserver: HTTPServer) -> FeedServer:
    """A feed at /wire.xml whose items the test can add to while the daemon polls it."""
    return FeedServer(httpserver, "/wire.xml", etags=False)


@pytest.fixture
def daemon(tmp_path: Path, feed: FeedServer) -> Iterator[Daemon]:
    """A site (config, quake rule, one feed with one matching item) and its not yet started daemon."""
    feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
    write_site(tmp_path, feed_url=feed.url)
    with running_site(tmp_path) as d:
        yield d


def alert_titles(d: Daemon) -> dict[str, str]:
    return {a.title: a.rule_id for a in d.alerts()}


class TestStartup:
    def test_ready_watchdog_and_status(self, daemon: Daemon) -> None:
        """READY=1 with a STATUS after start-up, then WATCHDOG=1 every WATCHDOG_USEC/2 and STATUS lines, one PID."""
        mark = daemon.start()
        ready = daemon.wait_ready(mark)
        assert daemon.notify.notes[ready].fields["STATUS"].startswith("polling 1 feed, 0 failing, outbox ")
        # Two heartbeats (1 s apart with min_interval = 1s) and a few watchdog pings after READY.
        daemon.notify.wait_for(lambda n: n.has("STATUS") and "READY" not in n.fields, after=ready + 1)
        last = daemon.notify.wait_for(lambda n: n.has("STATUS") and "READY" not in n.fields, after=ready + 1)
        daemon.notify.wait_for(lambda n: n.has("STATUS") and "READY" not in n.fields, after=last + 1)
        notes = daemon.notify.since(mark)
        assert {n.pid for n in notes} == {daemon.pid}
        pings = [n.at for n in notes if n.has("WATCHDOG", "1")]
        assert len(pings) >= 3
        gaps = [b - a for a, b in itertools.pairwise(pings[1:])]  # the first may precede start-up
        assert all(0.2 < g < 1.0 for g in gaps), gaps  # 0.5 s apart, give or take a busy loop
        statuses = [n.fields["STATUS"] for n in notes if n.has("STATUS")]
        assert all(s.startswith("polling 1 feed, ") for s in statuses), statuses
        # Once the first poll has alerted, the status line says when.
        daemon.wait_until(lambda: bool(daemon.alerts()), "the first alert")
        daemon.notify.wait_for(lambda n: "last alert none" not in n.fields.get("STATUS", "last alert none"))

    def test_matcher_compiled_right_after_start(self, tmp_path: Path, feed: FeedServer) -> None:
        """The daemon compiles its matcher right after start, though no item has needed it yet (the feed fails)."""
        feed.status = 503
        write_site(tmp_path, feed_url=feed.url)
        with running_site(tmp_path) as d:
            d.wait_ready(d.start())
            d.wait_until(lambda: "matcher_compiled" in d.stderr(), "the matcher_compiled event")
            d.wait_until(lambda: "feed_failed" in d.stderr(), "the failed poll")
            assert "feed_polled" not in d.stderr()  # no poll brought an item to score

    def test_status_json_while_running(self, daemon: Daemon) -> None:
        """`status --json` of a running daemon: running, a fresh heartbeat, the feed listed; exit 0."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: bool(daemon.alerts()), "the first poll")
        out = daemon.cli("status", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        report: dict[str, Any] = json.loads(out.stdout)
        assert report["daemon"]["running"] is True
        assert report["daemon"]["pid"] == daemon.pid
        assert report["daemon"]["heartbeat_age_seconds"] < 3
        assert [(f["name"], f["health"]) for f in report["feeds"]] == [("wire", "ok")]
        assert report["rules"]["count"] == 1
        assert report["rules"]["errors"] == []
        assert report["recent_alerts"][0]["rule"] == "quake"


class TestReload:
    def test_sighup_reloading_then_ready(self, daemon: Daemon) -> None:
        """SIGHUP: RELOADING=1 with the current MONOTONIC_USEC, then READY=1; the daemon keeps running."""
        daemon.wait_ready(daemon.start())
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        mark = daemon.signal(signal.SIGHUP)
        reloading = daemon.notify.wait_for(lambda n: n.has("RELOADING", "1"), after=mark)
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        note = daemon.notify.notes[reloading]
        assert before <= int(note.fields["MONOTONIC_USEC"]) <= after
        assert note.pid == daemon.pid
        daemon.wait_ready(reloading + 1)
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        daemon.wait_until(lambda: '"event": "reloaded"' in daemon.stderr(), "the reloaded log line")

    @pytest.mark.slow
    def test_broken_rule_keeps_old_rules_until_fixed(self, daemon: Daemon, feed: FeedServer) -> None:
        """A rule edit with a syntax error: old rules keep alerting, status shows it and exits 1; a fix clears it."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: "Strong earthquake shakes the coastal town of Alpha" in alert_titles(daemon), "q1")
        rule_file = daemon.folder / "rules" / "quake.toml"
        # The edit would also switch the rule to another word: were it applied, the next item would not alert.
        rule_file.write_text(QUAKE_RULE.replace('"earthquake*"', '"tsunami*"') + "\n[rule.quake.broken\n")
        mark = daemon.signal(signal.SIGHUP)
        daemon.wait_ready(daemon.notify.wait_for(lambda n: n.has("RELOADING", "1"), after=mark))

        feed.add("q2", "Volcano watchers report an earthquake swarm under Beta glacier")
        title = "Volcano watchers report an earthquake swarm under Beta glacier"
        daemon.wait_until(lambda: title in alert_titles(daemon), "q2 to alert under the old rule")
        assert alert_titles(daemon)[title] == "quake"

        status = daemon.cli("status")
        assert status.returncode == 1, status.stdout + status.stderr
        rules_section = status.stdout.split("\nrules ", 1)[1].split("\n\n", 1)[0]
        assert "ERROR" in rules_section
        assert "quake.toml" in rules_section
        assert '"event": "rule_file_invalid"' in daemon.stderr()

        rule_file.write_text(QUAKE_RULE)
        mark = daemon.signal(signal.SIGHUP)
        daemon.wait_ready(daemon.notify.wait_for(lambda n: n.has("RELOADING", "1"), after=mark))
        daemon.wait_until(lambda: daemon.cli("status").returncode == 0, "status to clear the rule error", timeout=8)
        assert "ERROR" not in daemon.cli("status").stdout


class TestStop:
    @pytest.mark.slow
    def test_sigterm_stops_cleanly(self, daemon: Daemon) -> None:
        """SIGTERM: STOPPING=1 and exit 0 well within the grace period; status then says no daemon runs (exit 4)."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: bool(daemon.alerts()), "the first poll")
        mark = daemon.signal(signal.SIGTERM)
        started = time.monotonic()
        daemon.notify.wait_for(lambda n: n.has("STOPPING", "1"), after=mark)
        assert daemon.wait_exit(timeout=10) == 0, daemon.stderr()
        assert time.monotonic() - started < 5
        assert '"event": "stopped"' in daemon.stderr()

        status = daemon.cli("status")
        assert status.returncode == 4, status.stdout + status.stderr
        assert "no daemon is running" in status.stdout
        report = json.loads(daemon.cli("status", "--json").stdout)
        assert report["daemon"]["running"] is False
        assert report["daemon"]["stopped_at"] is not None

    @pytest.mark.slow
    def test_killed_daemon_is_not_running(self, daemon: Daemon) -> None:
        """After SIGKILL (no clean stop recorded) status sees the daemon's PID gone and exits 4 at once."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: daemon.cli("status").returncode == 0, "a heartbeat")
        daemon.kill()
        status = daemon.cli("status")
        assert status.returncode == 4, status.stdout + status.stderr
        assert "NOT RUNNING: no daemon heartbeat since" in status.stdout


class SlowSink:
    """An SMTP server on 127.0.0.1 that records each mail as DATA arrives, then takes ``delay`` s to answer."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.message_ids: list[str] = []
        self.receiving = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.message_ids.append(str(message_from_bytes(envelope.content)["Message-ID"]))
        self.receiving.set()
        await asyncio.sleep(self.delay)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[tuple[SlowSink, int]]:
    handler = SlowSink(delay=3.0)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def mail_site(folder: Path, feed_url: str, port: int, grace: str) -> None:
    channel = f"""\
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"
helo_name = "localhost"
timeout = "10s"
from = "feedwatch@example.org"
to = ["desk@example.org"]
"""
    write_site(folder, feed_url=feed_url, grace=grace, channels=channel, default_channels='["mail"]')


class TestStopDuringDelivery:
    @pytest.mark.slow
    def test_send_in_flight_finishes_within_grace(
        self, tmp_path: Path, feed: FeedServer, sink: tuple[SlowSink, int]
    ) -> None:
        """SIGTERM while the SMTP server is still answering: the send completes, is marked delivered, exit 0."""
        handler, port = sink
        feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
        mail_site(tmp_path, feed.url, port, grace="10s")
        with running_site(tmp_path) as d:
            d.wait_ready(d.start())
            assert handler.receiving.wait(10), d.stderr()
            mark = d.signal(signal.SIGTERM)
            stopping = d.notify.wait_for(lambda n: n.has("STOPPING", "1"), after=mark)
            # A reload request during shutdown must not announce READY=1 to a stopping service.
            d.signal(signal.SIGHUP)
            assert d.wait_exit(timeout=15) == 0, d.stderr()
            assert not any(n.has("READY") or n.has("RELOADING") for n in d.notify.since(stopping))
            assert '"event": "reload_ignored"' in d.stderr()
            expected = {message_id(a.alert_id) for a in d.alerts()}
            assert len(expected) == 1
            assert handler.message_ids == sorted(expected)
            assert d.outbox() == {"pending": 0, "delivered": 1, "dead": 0}

    @pytest.mark.slow
    def test_send_past_grace_stays_queued_and_goes_out_after_restart(
        self, tmp_path: Path, feed: FeedServer, sink: tuple[SlowSink, int]
    ) -> None:
        """A send still in flight when the grace period ends stays queued; a restart re-sends it, same Message-ID."""
        handler, port = sink
        handler.delay = 8.0  # longer than grace, channel close bound and SMTP QUIT timeout together
        feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
        mail_site(tmp_path, feed.url, port, grace="1s")
        with running_site(tmp_path) as d:
            d.wait_ready(d.start())
            assert handler.receiving.wait(10), d.stderr()
            d.signal(signal.SIGTERM)
            started = time.monotonic()
            assert d.wait_exit(timeout=12) == 0, d.stderr()
            # 1 s grace + at most 2 s to close channels + interpreter exit; without the bound on closing,
            # the QUIT waiting for the busy server would add its 5 s timeout (about 7 s in all).
            assert time.monotonic() - started < 6.0
            assert '"event": "grace_period_over"' in d.stderr()
            assert d.outbox()["pending"] == 1

            handler.delay = 0.0
            d.wait_ready(d.start())
            d.wait_until(lambda: d.outbox()["pending"] == 0, "the queued alert to go out")
            d.signal(signal.SIGTERM)
            assert d.wait_exit(timeout=10) == 0, d.stderr()

            (alert,) = d.alerts()
            # The server had the first copy when the daemon gave up on its answer: the re-send is
            # a duplicate the receiver can drop, because it carries the same Message-ID.
            assert handler.message_ids == [message_id(alert.alert_id)] * 2
            assert d.outbox() == {"pending": 0, "delivered": 1, "dead": 0}
