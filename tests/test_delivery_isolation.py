"""A slow receiver delays only itself: every send has a total deadline, reads a capped excerpt, and each channel
delivers on its own. Real parts: a trickling socket server and aiosmtpd on 127.0.0.1, a SQLite file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.errors import TransientDeliveryError
from daemon.models import Alert, AlertKind, Severity
from daemon.notify.base import Channel
from daemon.notify.console import ConsoleChannel
from daemon.notify.email import EmailChannel, EmailSettings
from daemon.notify.webhook import WebhookChannel, WebhookSettings
from daemon.notify.worker import OutboxWorker
from daemon.store.async_store import AsyncStore
from daemon.store.sqlite import Store
from daemon.util.retry import RetryPolicy
from tests.servers import smtp_sink
from tests.trickle import SlowSmtp, trickler

DEADLINE = 2.0  # the channels' timeout: a total deadline per send
# A status line, then header bytes one at a time: the answer never completes.
TRICKLE_HEAD = (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 4096)
# A complete 200 head, then an endless body one byte at a time.
TRICKLE_BODY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n", b"ok" * 2048)


def alert(alert_id: str, story: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=alert_id,
        kind=AlertKind.NEW,
        rule_id="quake",
        severity=Severity.WARNING,
        score=2.0,
        title=f"Earthquake {alert_id}",
        link="https://news.example.org/q",
        feed="wire",
        created_at=now,
        story_id=story,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = AsyncStore(tmp_path / "fw.db")
    await s.open()
    yield s
    await s.aclose()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


def email(port: int) -> EmailChannel:
    settings = EmailSettings(
        host="127.0.0.1",
        port=port,
        security="none",
        sender="fw@example.org",
        recipients=("desk@example.org",),
        timeout=DEADLINE,
    )
    return EmailChannel("mail", settings)


def webhook(url: str, client: httpx.AsyncClient) -> WebhookChannel:
    return WebhookChannel("hook", WebhookSettings(url=url, timeout=DEADLINE), client)


async def enqueue(store: AsyncStore, a: Alert, channels: list[str]) -> None:
    def add(s: Store) -> None:
        with s.transaction():
            s.add_alert(a, channels, story_id=int(a.story_id), item_id=None, now=datetime.now(UTC))

    await store.call(add)


async def until(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``check()`` holds, checked while the event loop keeps running."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class TestSlowReceiver:
    @pytest.mark.slow
    async def test_email_goes_out_while_the_webhook_trickles(
        self, store: AsyncStore, client: httpx.AsyncClient
    ) -> None:
        """While a webhook answers a byte every 1.5 s, mail queued later arrives at once; the webhook send fails
        by its deadline as a transient failure (retry scheduled), not after the receiver gives up.
        """
        with smtp_sink() as sink, trickler(*TRICKLE_HEAD, every=1.5) as slow:
            channels: dict[str, Channel] = {"mail": email(sink.port), "hook": webhook(slow.url, client)}
            worker = OutboxWorker(store, channels, RetryPolicy(attempts=5, base=60.0, cap=60.0))
            stop = asyncio.Event()
            await enqueue(store, alert("a1", "1"), ["hook", "mail"])
            task = asyncio.create_task(worker.run_forever(stop, idle=0.2))
            try:
                await until(lambda: slow.requests == 1 and len(sink.handler.messages) == 1, 5, "first sends")
                queued = time.monotonic()
                await enqueue(store, alert("a2", "2"), ["hook", "mail"])
                worker.wake.set()
                mail_took = await until(lambda: len(sink.handler.messages) == 2, 10, "the second mail")
                print(f"second mail delivered {mail_took:.3f} s after it was queued, webhook still trickling")
                rows = await store.call(Store.deliveries, "a1")
                hook_row = next(r for r in rows if r.channel == "hook")
                assert hook_row.state == "pending"
                assert hook_row.attempts == 0  # still in flight
                hooks = []
                while len(hooks) < 2 or any(r.attempts != 1 for r in hooks):
                    assert time.monotonic() - queued < 2 * DEADLINE + 4, [dict(r) for r in hooks]
                    await asyncio.sleep(0.05)
                    rows = [*(await store.call(Store.deliveries, "a1")), *(await store.call(Store.deliveries, "a2"))]
                    hooks = [r for r in rows if r.channel == "hook"]
                failed_after = time.monotonic() - queued
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
        assert mail_took < 1.0
        assert failed_after < 2 * DEADLINE + 2.0  # a1's send started earlier; a2's within its own deadline
        for row in hooks:
            assert row.state == "pending", row  # transient: retried later, not dead
            assert "within 2s" in (row.last_error or ""), row.last_error

    @pytest.mark.slow
    async def test_webhook_send_has_a_total_deadline(self, client: httpx.AsyncClient) -> None:
        """A receiver whose answer never completes costs one send its deadline, as a transient error."""
        with trickler(*TRICKLE_HEAD, every=0.5) as slow:
            started = time.monotonic()
            with pytest.raises(TransientDeliveryError, match=r"within 2s"):
                await webhook(slow.url, client).send(alert("b1", "1"))
            took = time.monotonic() - started
        assert DEADLINE - 0.1 < took < DEADLINE + 1.0, took

    @pytest.mark.slow
    async def test_2xx_with_an_endless_body_is_delivered_without_reading_it(self, client: httpx.AsyncClient) -> None:
        """A 2xx status means accepted: at most a capped excerpt of the body is read, within the deadline."""
        with trickler(*TRICKLE_BODY, every=0.5) as slow:
            started = time.monotonic()
            await webhook(slow.url, client).send(alert("b2", "1"))
            took = time.monotonic() - started
        assert took < DEADLINE, took

    @pytest.mark.slow
    async def test_smtp_send_has_a_total_deadline(self) -> None:
        """An SMTP server answering each command 0.9 s late (each within the timeout) cannot hold a send past
        its deadline: the send fails as transient, and nothing was accepted.
        """
        slow = SlowSmtp(delay=0.9)
        try:
            channel = email(slow.port)
            started = time.monotonic()
            with pytest.raises(TransientDeliveryError, match=r"within 2s"):
                await channel.send(alert("c1", "1"))
            took = time.monotonic() - started
            await channel.aclose()
        finally:
            slow.close()
        assert took < DEADLINE + 1.0, took
        assert slow.accepted == 0


class TestEveryFailureCounts:
    async def test_unexpected_errors_dead_letter_at_the_limit(self, store: AsyncStore, tmp_path: Path) -> None:
        """An error no channel classified (a console whose stream was closed) counts as a failed attempt, and the
        delivery becomes a dead letter at the limit instead of staying pending forever.
        """
        stream = (tmp_path / "console.txt").open("w")
        stream.close()
        worker = OutboxWorker(
            store, {"console": ConsoleChannel("console", out=stream)}, RetryPolicy(attempts=3, base=0.01, cap=0.01)
        )
        await enqueue(store, alert("d1", "1"), ["console"])
        for _ in range(40):
            await worker.run_once()
            if (await store.call(Store.outbox_counts))["dead"]:
                break
            await asyncio.sleep(0.05)
        [row] = await store.call(Store.deliveries, "d1")
        assert row.state == "dead", row
        assert row.attempts == 3
        assert "ValueError" in (row.last_error or "")
        assert (await store.call(Store.outbox_counts))["pending"] == 0
