"""Crash consistency: a real daemon SIGKILLed at seeded random moments loses no alert and duplicates boundedly."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import threading
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.kit.reliability import (
    Daemon,
    Delivery,
    FeedItem,
    FeedServer,
    HookedSinkHandler,
    Setup,
    WebhookReceiver,
    place,
    smtp,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SEED = int(os.environ.get("RELIABILITY_SEED", "20241125"))
FEEDS = 20
ITEMS = 300
KILLS = 12
PHASES = ("polling", "scoring", "delivery-webhook", "delivery-email", "anytime")
_NAMED = re.compile(r"near (\w+)")


class Killer:
    """SIGKILLs the daemon from inside a server thread the moment the armed phase is reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.phase: str | None = None
        self.countdown = 0
        self.fired = threading.Event()

    def arm(self, pid: int, phase: str, after: int) -> None:
        """Kill at the ``after``-th event of ``phase``, so the daemon makes some progress first."""
        with self.lock:
            self.pid, self.phase, self.countdown = pid, phase, after
            self.fired.clear()

    def disarm(self) -> None:
        with self.lock:
            self.pid = self.phase = None

    def trigger(self, phase: str, delay: float = 0.0) -> None:
        with self.lock:
            if self.phase != phase or self.pid is None:
                return
            self.countdown -= 1
            if self.countdown > 0:
                return
            pid, self.pid, self.phase = self.pid, None, None
        if delay:
            time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        self.fired.set()


def named(title: str) -> str:
    m = _NAMED.search(title)
    assert m, title
    return m.group(1)


class TestCrashConsistency:
    def test_sigkill_at_random_moments_loses_no_alert(self, tmp_path: Path) -> None:
        """Killed 12 times while polling, scoring and delivering, the daemon still delivers every alert by
        email and webhook, and the only repeats carry the same Message-ID / Idempotency-Key, one per kill at most.
        """
        rng = random.Random(SEED)  # the kill schedule; server threads draw from their own generators
        delays = random.Random(SEED + 2)
        killer = Killer()
        feeds_srv = FeedServer().start()
        hook = WebhookReceiver().start()
        names = [f"f{i:02d}" for i in range(FEEDS)]
        expected = {place(i) for i in range(ITEMS)}
        feeds_srv.on_request = lambda path: killer.trigger("polling")
        feeds_srv.on_served = lambda path, status: (
            killer.trigger("scoring", delays.uniform(0.0, 0.04)) if status == 200 else None
        )

        def on_hook(delivery: Delivery) -> None:
            killer.trigger("delivery-webhook")

        def on_mail(msg: EmailMessage) -> None:
            killer.trigger("delivery-email")

        hook.on_delivery = on_hook
        produced = threading.Event()
        killing = threading.Event()
        killing.set()
        spread = random.Random(SEED + 1)  # the producer's own generator: the kill schedule stays reproducible

        def produce() -> None:
            # Items appear all through the kills (the rest at once after them), each its own story.
            for i in range(ITEMS):
                feed = names[spread.randrange(FEEDS)]
                title = f"Shelling near {place(i)} overnight"
                feeds_srv.add_item(feed, FeedItem(f"item-{i}", title, f"https://news.example.org/{feed}/{i}"))
                if killing.is_set():
                    time.sleep(0.1)
            produced.set()

        with smtp() as sink:
            assert isinstance(sink.handler, HookedSinkHandler)
            sink.handler.on_message = on_mail
            setup = Setup(
                {n: feeds_srv.add_feed(n) for n in names},
                smtp_port=sink.port,
                webhook_url=hook.url,
                # One delivery in flight per channel: a kill can then cut short at most one per channel.
                channel_extra={"mail": "concurrency = 1\n", "hook": "concurrency = 1\n"},
            )
            daemon = Daemon(tmp_path, setup)
            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            kills: list[str] = []
            marks: list[tuple[int, int]] = []  # deliveries received by each channel when each kill happened
            phases = [PHASES[i % len(PHASES)] for i in range(KILLS)]
            rng.shuffle(phases)
            try:
                for phase in phases:
                    anytime = phase == "anytime"
                    daemon.start(wait=not anytime)
                    if anytime:
                        time.sleep(rng.uniform(0.3, 2.5))  # start-up included
                        daemon.kill()
                    else:
                        killer.arm(daemon.pid, phase, rng.randint(1, 40 if phase == "polling" else 12))
                        if not killer.fired.wait(8.0):  # nothing of that phase happened: kill anyway
                            killer.disarm()
                            phase += " (timed out, killed anyway)"
                            daemon.kill()
                    assert daemon.proc is not None
                    assert daemon.proc.wait(10) == -signal.SIGKILL
                    kills.append(phase)
                    marks.append((len(sink.handler.messages), len(hook.deliveries)))
                    time.sleep(rng.uniform(0.0, 0.3))
                killing.clear()
                producer.join(30)
                assert produced.is_set()
                daemon.start()

                def complete() -> bool:
                    mailed = {named(str(m["Subject"])) for m in sink.handler.messages}
                    hooked = {named(d.alert["title"]) for d in hook.deliveries}
                    return mailed >= expected and hooked >= expected

                wait_until(complete, 60, "every alert on both channels")
                time.sleep(1.5)  # anything still in flight would show up as an extra delivery
                assert daemon.stop() == 0
            finally:
                killer.disarm()
                if daemon.alive():
                    daemon.kill()
                feeds_srv.stop()
                hook.stop()

            mails = list(sink.handler.messages)
        print(f"kills: {kills}")
        assert len(kills) >= 10
        assert sum("timed out" in k for k in kills) <= 2, kills

        for n, (channel, pairs) in enumerate(
            (
                ("email", [(str(m["Message-ID"]), named(str(m["Subject"]))) for m in mails]),
                ("webhook", [(d.key, named(d.alert["title"])) for d in hook.deliveries]),
            )
        ):
            per_key = Counter(key for key, _ in pairs)
            keys_per_item: dict[str, set[str]] = {}
            for key, item in pairs:
                keys_per_item.setdefault(item, set()).add(key)
            # Every item alerted, under exactly one id: a repeat is the same alert sent again, never a new one.
            assert set(keys_per_item) == expected, channel
            assert all(len(keys) == 1 for keys in keys_per_item.values()), channel
            duplicates = sum(c - 1 for c in per_key.values())
            # A repeat belongs to the kill just before it: that kill cut its first delivery short.
            bounds = [m[n] for m in marks] + [len(pairs)]
            seen: set[str] = set()
            per_kill = []
            for k in range(len(kills) + 1):
                lo, hi = (bounds[k - 1] if k else 0), bounds[k]
                keys = [key for key, _ in pairs[lo:hi]]
                per_kill.append(sum(1 for key in keys if key in seen))
                seen.update(keys)
            print(f"{channel}: {len(pairs)} deliveries, {len(per_key)} alerts, {duplicates} duplicates {per_kill}")
            assert per_kill[0] == 0
            assert max(per_kill) <= 1, channel
        assert all(d.signed for d in hook.deliveries)

        conn = sqlite3.connect(daemon.db)
        states = dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        conn.close()
        assert states == {"delivered": 2 * ITEMS}
