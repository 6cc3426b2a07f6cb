"""Storage faults: the database locked by another process, and the database full; nothing lost once they clear."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.kit.reliability import (
    Daemon,
    FeedItem,
    FeedServer,
    Setup,
    WebhookReceiver,
    place,
    running,
    smtp,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def publish(feeds: FeedServer, feed: str, start: int, count: int) -> set[str]:
    names = set()
    for i in range(start, start + count):
        names.add(place(i))
        feeds.add_item(feed, FeedItem(f"i{i}", f"Shelling near {place(i)}", f"https://news.example.org/{i}"))
    return names


def titles(hook: WebhookReceiver) -> Counter[str]:
    return Counter(d.alert["title"].removeprefix("Shelling near ") for d in hook.deliveries)


class TestLockedDatabase:
    def test_exclusive_lock_held_elsewhere(self, tmp_path: Path) -> None:
        """While another process holds the database with BEGIN EXCLUSIVE, the daemon's writes fail with clear
        "database is locked" errors and it keeps running; once it lets go, every alert is delivered once.
        """
        feeds = FeedServer().start()
        hook = WebhookReceiver().start()
        url = feeds.add_feed("news")
        with smtp() as sink:
            setup = Setup({"news": url}, smtp_port=sink.port, webhook_url=hook.url, store_extra="busy_timeout = 0.5\n")
            daemon = Daemon(tmp_path, setup)
            try:
                with running(daemon):
                    expected = publish(feeds, "news", 0, 5)
                    wait_until(lambda: set(titles(hook)) == expected, 15, "the first alerts")
                    locker = sqlite3.connect(daemon.db, timeout=10, isolation_level=None)
                    locker.execute("BEGIN EXCLUSIVE")
                    try:
                        locked_at = len(daemon.events())
                        expected |= publish(feeds, "news", 5, 5)
                        time.sleep(5.0)  # ten busy timeouts: every write the daemon tries meanwhile fails
                        during = daemon.events()[locked_at:]
                        assert daemon.alive()
                        assert set(titles(hook)) == expected - {place(i) for i in range(5, 10)}
                    finally:
                        locker.execute("ROLLBACK")
                        locker.close()
                    wait_until(lambda: set(titles(hook)) == expected, 20, "the alerts held up by the lock")
                    wait_until(lambda: len(sink.handler.messages) >= len(expected), 10, "the mails")
                    time.sleep(1.0)
                    assert daemon.stop() == 0
            finally:
                feeds.stop()
                hook.stop()
            mail_ids = Counter(str(m["Message-ID"]) for m in sink.handler.messages)

        problems = [e for e in during if e.get("level") in ("warning", "error")]
        names = Counter(e["event"] for e in problems)
        print(f"events while locked: {dict(names)}")
        # Which writes get their turn on the store thread varies; each failing one is one of these.
        assert set(names) <= {"poll_failed", "heartbeat_failed", "delivery_unrecorded", "outbox_worker_error"}
        assert names["poll_failed"] + names["heartbeat_failed"] >= 1
        # Each says why, and none is a crash with a traceback.
        assert all("database is locked" in e["error"] for e in problems), problems
        assert not any("exception" in e for e in problems)
        # Nothing was sent twice: deliveries that finished during the lock were recorded once it lifted.
        assert max(titles(hook).values()) == 1
        assert max(mail_ids.values()) == 1


class TestFullDatabase:
    def test_full_database_then_more_room(self, tmp_path: Path) -> None:
        """When [store] max_size is reached, polls fail saying the database is full and the daemon keeps
        running; after the limit is raised in config.toml and the daemon is told with SIGHUP, every alert
        published meanwhile is delivered, once.
        """
        feeds = FeedServer().start()
        hook = WebhookReceiver().start()
        url = feeds.add_feed("news")
        setup = Setup({"news": url}, webhook_url=hook.url, store_extra='max_size = "240KiB"\n')
        daemon = Daemon(tmp_path, setup)
        expected: set[str] = set()
        try:
            with running(daemon):
                n = 0
                deadline = time.monotonic() + 30
                while not any("full" in e.get("error", "") for e in daemon.events("poll_failed")):
                    assert time.monotonic() < deadline, "the database never filled up:\n" + daemon.tail(5)
                    expected |= publish(feeds, "news", n, 40)
                    n += 40
                    time.sleep(1.2)
                full = daemon.events("poll_failed")[-1]
                expected |= publish(feeds, "news", n, 10)
                time.sleep(2.5)
                assert daemon.alive()
                assert not expected <= set(titles(hook))
                setup.store_extra = 'max_size = "64MiB"\n'
                daemon.write_config()
                daemon.signal(signal.SIGHUP)
                wait_until(lambda: daemon.count("store_limits_changed") == 1, 10, "the new limit")
                wait_until(lambda: set(titles(hook)) == expected, 30, "every alert once there is room")
                time.sleep(1.0)
                assert daemon.stop() == 0
        finally:
            feeds.stop()
            hook.stop()
        print(f"full: {full}")
        assert "full" in full["error"]
        assert "store.max_size is 240 KiB" in full["error"]
        assert max(titles(hook).values()) == 1
