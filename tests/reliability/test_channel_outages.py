"""Channel outages: SMTP refusing, a webhook answering 500, Slack answering 429 — then every alert, once, in order."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import TransientDeliveryError
from daemon.models import Alert, AlertKind, Severity
from daemon.notify.worker import OutboxWorker
from daemon.store.async_store import AsyncStore
from daemon.store.sqlite import Store
from daemon.util.retry import RetryPolicy
from tests.kit.reliability import (
    Daemon,
    FeedItem,
    FeedServer,
    HookedSinkHandler,
    Setup,
    WebhookReceiver,
    place,
    running,
    wait_until,
)
from tests.kit.smtp import SmtpSink

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

STORIES = 6
RISES = (0, 2, 4)  # items edited into critical after their first alert: each gets an update
_NAMED = re.compile(r"near (\w+)")


def polled_alerts(daemon: Daemon) -> int:
    return sum(int(e.get("alerts", 0)) for e in daemon.events("feed_polled"))


class TestChannelOutages:
    def test_outages_delay_but_never_lose_or_reorder(self, tmp_path: Path) -> None:
        """Alerts queued while SMTP refuses, the webhook fails with 500 and Slack throttles with 429 are all
        delivered once each when the channels return, every update after its story's first alert, with the
        backoff visible in `delivery_retry` log events and Slack's Retry-After honoured.
        """
        feeds = FeedServer().start()
        hook = WebhookReceiver(status=500).start()
        slack = WebhookReceiver(path="/services/T000/B000/XXXX", secret=None, fail_first=429, retry_after="2").start()
        sink = SmtpSink()  # its port is reserved for the config, but nothing listens yet: connections are refused
        sink.handler = HookedSinkHandler()
        guids: dict[int, tuple[str, str]] = {}
        for i in range(STORIES):
            feed = f"f{i % 2}"
            feeds.add_feed(feed)
            guids[i] = (feed, f"story-{i}")
            feeds.add_item(feed, FeedItem(f"story-{i}", f"Shelling near {place(i)}", f"https://news.example.org/{i}"))
        setup = Setup(
            {"f0": feeds.feed_url("f0"), "f1": feeds.feed_url("f1")},
            smtp_port=sink.port,
            webhook_url=hook.url,
            slack_url=slack.url,
        )
        daemon = Daemon(tmp_path, setup)
        try:
            with running(daemon):
                wait_until(lambda: polled_alerts(daemon) >= STORIES, 15, "the first alerts to be queued")
                for i in RISES:
                    feed, guid = guids[i]
                    feeds.edit_item(feed, guid, title=f"Shelling, artillery and drones near {place(i)}")
                wait_until(lambda: polled_alerts(daemon) >= STORIES + len(RISES), 15, "the updates to be queued")
                time.sleep(3.0)  # the outage goes on; updates wait behind their stories' first alerts
                retries = daemon.events("delivery_retry")
                assert {"mail", "hook"} <= {e["channel"] for e in retries}
                sink.start()
                hook.status = 200
                total = STORIES + len(RISES)
                wait_until(
                    lambda: (
                        len(sink.handler.messages) >= total
                        and len(hook.deliveries) >= total
                        and len(slack.deliveries) >= total
                    ),
                    40,
                    "every alert on every channel",
                )
                time.sleep(1.5)  # a duplicate would arrive now
                retries = daemon.events("delivery_retry")
        finally:
            sink.stop()
            hook.stop()
            slack.stop()
            feeds.stop()

        # Each channel: every alert exactly once; per story the new alert first, then its critical update.
        by_key = {d.key: d.alert for d in hook.deliveries}
        assert len(hook.deliveries) == len(by_key) == total
        kinds = sorted(a["kind"] for a in by_key.values())
        assert kinds == ["new"] * STORIES + ["update"] * len(RISES)
        orders = {
            "mail": [str(m["X-Feedwatch-Alert-Id"]) for m in sink.handler.messages],
            "hook": hook.keys(),
            "slack": [d.key for d in slack.deliveries],
        }
        for channel, keys in orders.items():
            assert len(keys) == len(set(keys)) == total, channel
            seen: dict[str, str] = {}
            for key in keys:
                alert = by_key[key]
                story = alert["story_id"]
                if alert["kind"] == "update":
                    assert seen.get(story) == "new", f"{channel}: update overtook its alert"
                    assert alert["severity"] == "critical"
                seen[story] = alert["kind"]
        # Mail threads the update under the first alert.
        first = {by_key[str(m["X-Feedwatch-Alert-Id"])]["story_id"]: m for m in sink.handler.messages}
        for m in sink.handler.messages:
            alert = by_key[str(m["X-Feedwatch-Alert-Id"])]
            if alert["kind"] == "update":
                assert str(m["In-Reply-To"]) == f"<{alert['thread_id']}@feedwatch>"
                assert str(m["Subject"]).startswith("Re: [feedwatch] CRITICAL")
        assert len(first) == STORIES

        # Backoff visible: retries logged per channel with growing delays; Slack waited as asked.
        by_alert: dict[tuple[str, str], list[float]] = {}
        for e in retries:
            by_alert.setdefault((e["channel"], e["alert_id"]), []).append(float(e["retry_in"]))
        assert any(len(d) >= 3 and d[2] > d[0] for (c, _), d in by_alert.items() if c == "hook"), by_alert
        assert any(len(d) >= 3 and d[2] > d[0] for (c, _), d in by_alert.items() if c == "mail"), by_alert
        slack_waits = [d for (c, _), d in by_alert.items() if c == "slack"]
        assert len(slack_waits) == total
        assert all(w >= 2.0 for d in slack_waits for w in d)
        for key in {k for _, k, _ in slack.attempts}:
            times = [t for t, k, _ in slack.attempts if k == key]
            statuses = [s for _, k, s in slack.attempts if k == key]
            assert statuses == [429, 200], key
            assert times[1] - times[0] >= 2.0, key
        assert all(d.signed for d in hook.deliveries)


class Down:
    """A channel whose receiver is away: every send fails transiently."""

    name = "down"

    async def send(self, alert: Alert) -> None:
        raise TransientDeliveryError("receiver away", channel=self.name, alert_id=alert.alert_id)

    async def aclose(self) -> None:
        pass


class TestWaitingBehindARetry:
    async def test_update_behind_a_retry_does_not_wake_the_worker(self, tmp_path: Path) -> None:
        """An update queued behind its story's alert, which waits out its backoff, leaves the worker asleep."""
        store = AsyncStore(tmp_path / "db")
        await store.open()
        now = datetime.now(UTC)

        def queue(s: Store) -> None:
            with s.transaction():
                story = s.create_story(None, "Shelling near Kalomine", "f", now)
                for n, kind in enumerate((AlertKind.NEW, AlertKind.UPDATE)):
                    alert = Alert(f"fw-{n}", kind, "r", Severity.INFO, 2.0, "t", None, "f", now, story_id=str(story))
                    s.add_alert(alert, ["down"], story_id=story, item_id=None, now=now)

        await store.call(queue)
        calls = 0
        real_call = store.call

        async def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await real_call(fn, *args, **kwargs)

        store.call = counted  # type: ignore[method-assign]
        worker = OutboxWorker(store, {"down": Down()}, RetryPolicy(base=30.0, cap=60.0))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop))
        await asyncio.sleep(2.0)
        stop.set()
        await task
        await store.aclose()
        # One pass (storms, due, order check, send, mark, next time), then asleep until the retry is due.
        assert calls <= 8, f"{calls} store calls in 2 s: the worker is spinning"
        assert worker.failed == 1
