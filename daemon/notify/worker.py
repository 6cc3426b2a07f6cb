"""The outbox worker: send what is due, mark it delivered, retry or dead-letter what failed.

Deliveries of one (channel, rule, story) go strictly in order — an update never overtakes the alert
it updates — while different stories and channels proceed concurrently (bounded per channel). Each
channel has its own lane: a slow receiver (every send is bounded by the channel's deadline) delays only
its own deliveries, never another channel's. Every failure counts toward the attempt limit, whatever
raised it, so nothing stays pending forever.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from daemon.alerting import grouping
from daemon.errors import DeliveryError, PermanentDeliveryError, StoreError, TransientDeliveryError
from daemon.models import Alert
from daemon.notify.base import Channel
from daemon.store.async_store import AsyncStore
from daemon.store.rows import OutboxEntry
from daemon.store.sqlite import Store
from daemon.util.observe import NULL_OBSERVER, Observer
from daemon.util.retry import RetryPolicy

log = structlog.get_logger(__name__)

RECORD_RETRY_CAP = 30.0  # seconds between attempts to record a finished send while the store refuses


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    def __init__(
        self,
        store: AsyncStore,
        channels: Mapping[str, Channel],
        policy: RetryPolicy,
        *,
        concurrency: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        storm_window: float = 600.0,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._observer = observer
        self._storm_window = storm_window
        self._store = store
        self._channels = channels
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._limits = {name: asyncio.Semaphore((concurrency or {}).get(name, 4)) for name in channels}
        self.wake = asyncio.Event()
        self._lane_wakes: dict[str, asyncio.Event] = {}
        self._stop: asyncio.Event | None = None
        self.delivered = 0
        self.failed = 0
        self.dead = 0  # deliveries that failed for good (dead letters) since start

    async def run_once(self) -> int:
        """Deliver everything due now; returns how many deliveries succeeded."""
        entries = await self._store.call(Store.due_outbox, self._clock(), 500)
        groups: dict[str, list[OutboxEntry]] = {}
        for entry in entries:
            groups.setdefault(entry.story_key, []).append(entry)
        # Every group runs to its end even if one fails: a group left running behind a raised gather would
        # still be sending when the next pass picks the same pending entries, and send them twice.
        results = await asyncio.gather(*(self._deliver_group(g) for g in groups.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

    async def _deliver_group(self, group: list[OutboxEntry]) -> int:
        first = group[0]
        story_id = int(first.alert.story_id) if first.alert.story_id.isdigit() else None
        if await self._store.call(Store.pending_before, first.id, first.channel, first.alert.rule_id, story_id):
            return 0  # an older delivery of this story is still waiting for its retry
        done = 0
        for entry in group:
            if self._stop is not None and self._stop.is_set():
                break  # stopping: finish what is in flight, start nothing new
            if not await self._deliver(entry):
                break  # keep the story's order: the rest wait behind the failed one
            done += 1
        return done

    async def _deliver(self, entry: OutboxEntry) -> bool:
        channel = self._channels.get(entry.channel)
        bound = log.bind(alert_id=entry.alert.alert_id, channel=entry.channel, rule=entry.alert.rule_id)
        attempt = entry.attempts + 1
        if channel is None:
            await self._store.call(Store.mark_failed, entry.id, f"channel {entry.channel!r} is not configured", None)
            bound.error("delivery_dead", reason="channel not configured")
            self.dead += 1
            self._observer.delivery(entry.channel, "dead")
            return False
        # The slot is held until the outcome is recorded: at most ``concurrency`` deliveries per channel are
        # ever accepted by a receiver but not yet marked, so a crash re-sends at most that many. Released
        # before recording, a burst of sends could outrun a busy store thread by hundreds.
        async with self._limits[entry.channel]:
            try:
                await channel.send(entry.alert)
            except DeliveryError as exc:
                await self._failed(entry, exc, attempt, bound)
                return False
            except Exception as exc:
                # A channel bug or an error nobody classified: counted like any failure, so it dead-letters
                # at the limit instead of staying pending forever. The message is redacted when stored.
                bound.exception("delivery_crashed", attempt=attempt)
                reason = f"unexpected {type(exc).__name__}: {exc}"[:500]
                await self._failed(entry, TransientDeliveryError(reason, channel=entry.channel), attempt, bound)
                return False
            await self._record_delivered(entry, bound)
        self.delivered += 1
        self._observer.delivery(entry.channel, "delivered")
        bound.info("delivered", attempt=attempt)
        return True

    async def _record_delivered(self, entry: OutboxEntry, bound: Any) -> None:
        """Mark a sent alert delivered, retrying while the store is locked or full.

        The receiver already has it: giving up here would send it again on the next pass.
        """
        delay = 0.5
        while True:
            try:
                await self._store.call(Store.mark_delivered, entry.id, self._clock())
                return
            except StoreError as exc:
                bound.warning("delivery_unrecorded", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_CAP)

    async def _failed(self, entry: OutboxEntry, exc: DeliveryError, attempt: int, bound: Any) -> None:
        self.failed += 1
        if isinstance(exc, PermanentDeliveryError) or self._policy.exhausted(attempt):
            await self._store.call(Store.mark_failed, entry.id, exc.reason, None)
            bound.error("delivery_dead", attempt=attempt, error=exc.reason)
            self.dead += 1
            self._observer.delivery(entry.channel, "dead")
            return
        delay = self._policy.delay(attempt, self._rng, exc.retry_after)
        when = self._clock() + timedelta(seconds=delay)
        await self._store.call(Store.mark_failed, entry.id, exc.reason, when)
        if (lane := self._lane_wakes.get(entry.channel)) is not None:
            asyncio.get_running_loop().call_later(delay, lane.set)  # the lane looks again when the retry is due
        bound.warning("delivery_retry", attempt=attempt, retry_in=round(delay, 1), error=exc.reason)
        self._observer.delivery(entry.channel, "retry")

    async def flush_storms(self, *, force: bool = False) -> int:
        """Send one grouped message per (channel, rule) whose storm window has passed (or all: force)."""
        now = self._clock()
        flushed = await self._store.call(grouping.flush_storms, window=self._storm_window, now=now, force=force)
        for channel, grouped in flushed:
            log.info("storm_grouped", channel=channel, rule=grouped.rule_id, alerts=len(grouped.entries))
        return len(flushed)

    async def flush_digest(self, channel: str, period: float) -> Alert | None:
        """Queue the digest of everything waiting for ``channel`` (None when there is nothing)."""
        grouped = await self._store.call(grouping.flush_digest, channel, period=period, now=self._clock())
        if grouped is not None:
            log.info("digest_queued", channel=channel, alerts=len(grouped.entries))
            self.wake.set()
        return grouped

    async def pending(self) -> int:
        counts = await self._store.call(Store.outbox_counts)
        return counts["pending"]

    async def drain(self, within: float) -> int:
        """Deliver until the outbox is empty or ``within`` seconds pass; returns what is still pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.run_once()
            left = await self.pending()
            if left == 0 or loop.time() >= deadline:
                return left
            nxt = await self._store.call(Store.next_outbox_time)
            wait = 0.2
            if nxt is not None:
                wait = max(0.05, min((nxt - self._clock()).total_seconds(), deadline - loop.time()))
            await asyncio.sleep(min(wait, max(0.0, deadline - loop.time())))

    async def run_forever(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Deliver as alerts arrive (``wake``) and as retries fall due, until ``stop`` is set.

        One lane per channel does the sending; this loop groups storms, hands ``wake`` on to every lane,
        and dead-letters deliveries for channels that are no longer configured.
        """
        self._stop = stop
        self._lane_wakes = {name: asyncio.Event() for name in self._channels}
        lanes = [asyncio.create_task(self._lane(name, stop, idle), name=f"outbox:{name}") for name in self._channels]
        woken = False
        try:
            while not stop.is_set():
                grouped = 0
                try:
                    grouped = await self.flush_storms()
                    orphans = await self._store.call(Store.due_outbox, self._clock(), 100, exclude=list(self._channels))
                    for entry in orphans:
                        await self._deliver(entry)
                except StoreError as exc:  # locked or full: expected, and said in the message; no traceback
                    log.error("outbox_worker_error", error=str(exc), retry_in=idle)
                except Exception:  # nor may a bug end delivery for good
                    log.exception("outbox_worker_crashed")
                if woken or grouped:
                    for event in self._lane_wakes.values():
                        event.set()
                self.wake.clear()
                await _wait_any(self.wake, stop, within=idle)
                woken = self.wake.is_set()
        finally:
            for event in self._lane_wakes.values():
                event.set()
            # Stopping: lanes finish their sends in flight (the service bounds this by its grace period).
            try:
                await asyncio.gather(*lanes)
            finally:
                for lane in lanes:
                    lane.cancel()

    async def _lane(self, name: str, stop: asyncio.Event, idle: float) -> None:
        """One channel's deliveries: each due story in its own task, a story never twice at once."""
        wake = self._lane_wakes[name]
        inflight: dict[str, asyncio.Task[int]] = {}

        def finished(key: str, task: asyncio.Task[int]) -> None:
            inflight.pop(key, None)
            if not task.cancelled() and task.exception() is None and task.result() > 0:
                wake.set()  # its story may have more waiting, now free to go (a failure wakes at its retry)

        try:
            while not stop.is_set():
                wait = idle
                try:
                    entries = await self._store.call(Store.due_outbox, self._clock(), 500, channel=name)
                    groups: dict[str, list[OutboxEntry]] = {}
                    for entry in entries:
                        groups.setdefault(entry.story_key, []).append(entry)
                    for key, group in groups.items():
                        if key in inflight:
                            continue  # its earlier entries are being sent; the rest go after, in order
                        task = asyncio.create_task(self._deliver_group(group), name=f"deliver:{key}")
                        task.add_done_callback(functools.partial(finished, key))
                        inflight[key] = task
                    nxt = await self._store.call(Store.next_outbox_time, name)
                    if nxt is not None and (due_in := (nxt - self._clock()).total_seconds()) > 0:
                        wait = max(0.05, min(idle, due_in))
                    # Due now means in flight (just started or still sending): its task's end wakes the lane.
                except StoreError as exc:
                    log.error("outbox_worker_error", channel=name, error=str(exc), retry_in=idle)
                except Exception:
                    log.exception("outbox_worker_crashed", channel=name)
                wake.clear()
                await _wait_any(wake, stop, within=wait)
            await asyncio.gather(*inflight.values(), return_exceptions=True)
        finally:
            for task in list(inflight.values()):
                task.cancel()


async def _wait_any(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
