"""The orchestrator: wires config, rules, store, fetcher, scheduler, outbox worker and signals.

Everything else is a building block with no knowledge of the others. The service owns the lifetime
of every I/O object (HTTP client, store thread, channels) through one AsyncExitStack.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import random
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from daemon import __version__
from daemon.config.load import load_config
from daemon.config.model import Config, FeedConfig, StoreConfig
from daemon.errors import FeedwatchError, RuleError
from daemon.intake.bounded import ParseLimits
from daemon.intake.fetch import Fetcher, make_client
from daemon.intake.parsing import FeedParser
from daemon.intake.poller import Poller
from daemon.notify.base import Channel
from daemon.notify.worker import OutboxWorker
from daemon.rules.load import load_rules
from daemon.service import records, rulewatch
from daemon.service.runtime import (
    HEARTBEAT_EVERY,
    Active,
    build_channels,
    channel_client,
    close_channels,
    fetch_settings,
    heartbeat_interval,
    keep_threads,
    metrics_for,
    rules_or_raise,
)
from daemon.service.scheduling import (
    PRUNE_EVERY,
    PRUNE_FIRST,
    prune_in_batches,
    schedule_digests,
    schedule_every,
    schedule_feeds,
)
from daemon.service.systemd import Notifier, watchdog_loop
from daemon.store.async_store import AsyncStore
from daemon.store.lock import StoreLock
from daemon.store.rows import FeedState
from daemon.store.sqlite import Store
from daemon.util.observe import NULL_OBSERVER, Observer
from daemon.util.retry import RetryPolicy

if TYPE_CHECKING:
    import httpx
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from daemon.intake.fetch import FetchSettings

log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    def __init__(
        self, config: Config, *, clock: Callable[[], datetime] = utcnow, notifier: Notifier | None = None
    ) -> None:
        report = rules_or_raise(config)
        self.notifier = notifier or Notifier.from_env()
        self._last_alert: datetime | None = None
        self._last_heartbeat = 0.0
        self.active = Active.build(config, report)
        self._clock = clock
        self._rng = random.Random()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._started = time.time()
        self._stack = AsyncExitStack()
        self._scheduler: AsyncIOScheduler | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Future[None]] = set()
        self._worker_task: asyncio.Task[None] | None = None
        self.metrics = metrics_for(config)
        self.metrics_address: tuple[str, int] | None = None
        self.observer: Observer = self.metrics or NULL_OBSERVER
        self.store = AsyncStore(
            config.store.path, busy_timeout=config.store.busy_timeout, max_size=config.store.max_size
        )
        self.channels: dict[str, Channel] = {}
        self.worker: OutboxWorker | None = None
        self.fetcher: Fetcher | None = None
        self.poller: Poller | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        cfg = self.active.config
        # One daemon per store, before anything is written: a second one would poll every feed twice.
        lock = await asyncio.to_thread(StoreLock.acquire, cfg.store.path, config=cfg.path)
        self._stack.callback(lock.release)
        await self.store.open()
        self._stack.push_async_callback(self.store.aclose)
        settings = fetch_settings(cfg)
        client = make_client(settings)
        self._stack.push_async_callback(client.aclose)
        self.fetcher = Fetcher(client, settings)
        # Worker processes only when configured: the fast path rarely needs them (docs/feeds.md).
        limits = ParseLimits(seconds=cfg.polling.parse_timeout, memory=cfg.polling.parse_memory)
        parser = FeedParser(workers=cfg.polling.parse_workers, limits=limits)
        self._stack.callback(parser.shutdown)
        self.poller = Poller(
            self.store,
            self.fetcher,
            lambda: self.active,
            clock=self._clock,
            reschedule=self._next_poll,
            on_alerts=self._alerts_queued,
            parser=parser,
            rng=self._rng,
            observer=self.observer,
        )
        self.channels = build_channels(cfg, lambda: self._channel_client(settings))
        keep_threads(self.channels, self.store)
        self._stack.push_async_callback(close_channels, self.channels)
        policy = RetryPolicy(attempts=cfg.alerts.max_attempts, base=cfg.alerts.retry_base, cap=cfg.alerts.retry_cap)
        concurrency = {name: c.concurrency for name, c in cfg.channels.items()}
        self.worker = OutboxWorker(
            self.store,
            self.channels,
            policy,
            concurrency=concurrency,
            clock=self._clock,
            storm_window=cfg.alerts.storm_window,
            observer=self.observer,
        )
        await self._record_rules()

    def _channel_client(self, settings: FetchSettings) -> httpx.AsyncClient:
        """The Slack and webhook channels' HTTP client, closed after them at stop."""
        client = channel_client(settings)
        self._stack.push_async_callback(client.aclose)
        return client

    async def _serve_metrics(self) -> None:
        """Serve /metrics and /healthz when ``[metrics] listen`` is set (until the daemon stops)."""
        listen = self.active.config.metrics
        if self.metrics is None or listen.listen is None:
            return
        from daemon.service.metrics import MetricsServer

        server = MetricsServer(self.metrics, self.store, lambda: self.active.config, self._clock)
        self.metrics_address = await server.start(*listen.address)
        self._stack.push_async_callback(server.aclose)

    async def aclose(self) -> None:
        await self._stack.aclose()

    @property
    def delivered(self) -> int:
        """Deliveries made so far (for the summary after ``run --once``)."""
        return self.worker.delivered if self.worker is not None else 0

    @property
    def dead(self) -> int:
        """Deliveries that failed for good so far (``run --once`` then exits 1)."""
        return self.worker.dead if self.worker is not None else 0

    async def run_once(self) -> int:
        """Poll every feed once, deliver, wait for the outbox up to the bound; how many alerts stay queued."""
        try:
            await self._start()
            feeds = [f for f in self.active.config.feeds if f.enabled]
            await asyncio.gather(*(self.poll(f) for f in feeds))
            await self.prune()
            assert self.worker is not None
            # One cycle has no later window: send grouped and digest messages now.
            await self.worker.flush_storms(force=True)
            for name, channel in self.active.config.channels.items():
                if channel.mode == "digest":
                    await self.worker.flush_digest(name, 0.0)
            left = await self.worker.drain(self.active.config.alerts.outbox_wait)
            if left:
                log.warning("outbox_not_empty", pending=left, hint="they are delivered on the next run")
            return left
        finally:
            await self.aclose()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        faulthandler.enable()  # a watchdog abort then prints every thread's stack to the journal
        watchdog_task: asyncio.Task[None] | None = None
        interval = self.notifier.watchdog_interval()
        if interval:
            # Started before the slow start-up: systemd's watchdog clock runs from process start.
            watchdog_task = asyncio.create_task(
                watchdog_loop(self.notifier, interval=interval, healthy=self._healthy), name="watchdog"
            )
        try:
            await self._start()
            self._background.add(asyncio.ensure_future(self._compile_matcher()))
            await self._serve_metrics()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            assert self.worker is not None
            worker_task = asyncio.create_task(self.worker.run_forever(self._stop), name="outbox")
            heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
            watch_task = asyncio.create_task(self._watch_rules(), name="rules-watch")
            self._background.add(watch_task)
            from apscheduler.schedulers.asyncio import AsyncIOScheduler  # the daemon's alone: not `run --once`

            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._schedule_all(initial=True, states=await self.store.call(Store.feeds))
            self._schedule_digests()
            self._schedule_maintenance()
            self._scheduler.start()
            self._worker_task = worker_task
            self.notifier.ready(await self._status_line())
            log.info(
                "daemon_started",
                version=__version__,
                feeds=len(self.active.config.feeds),
                rules=len(self.active.report.ruleset.rules),
                pid=os.getpid(),
            )
            await self._stop.wait()
            await self._shutdown(worker_task, heartbeat_task)
        finally:
            if watchdog_task is not None:
                watchdog_task.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.aclose()

    def request_stop(self, sig: int | None = None) -> None:
        if not self._stop.is_set():
            self.notifier.stopping()
            log.info("stopping", signal=signal.Signals(sig).name if sig else None)
            self._stop.set()

    async def _shutdown(self, worker_task: asyncio.Task[None], heartbeat_task: asyncio.Task[None]) -> None:
        """No new polls; in-flight deliveries get the grace period; undelivered alerts stay queued."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        for task in list(self._polls):
            task.cancel()
        heartbeat_task.cancel()
        for pending in list(self._background):
            pending.cancel()
        grace = self.active.config.grace_period
        try:
            await asyncio.wait_for(worker_task, timeout=grace)
        except TimeoutError:
            log.warning("grace_period_over", grace=grace, hint="undelivered alerts stay in the outbox")
        await asyncio.gather(*self._polls, *self._background, heartbeat_task, return_exceptions=True)
        counts = await self.store.call(Store.outbox_counts)
        await self.store.call(Store.set_meta, "daemon_stopped", {"at": self._clock().isoformat(), "pid": os.getpid()})
        assert self.worker is not None
        log.info(
            "stopped",
            delivered=self.worker.delivered,
            queued=counts["pending"],
            uptime=round(time.time() - self._started, 1),
        )

    # -- scheduling --------------------------------------------------------------------------

    def _schedule_all(self, *, initial: bool = False, states: list[FeedState] | None = None) -> None:
        assert self._scheduler is not None
        schedule_feeds(
            self._scheduler,
            self.active.config,
            self._poll_job,
            now=self._clock(),
            rng=self._rng,
            initial=initial,
            states=states,
        )

    def _schedule_digests(self) -> None:
        assert self._scheduler is not None
        schedule_digests(self._scheduler, self.active.config, self._digest_job)

    def _schedule_maintenance(self) -> None:
        assert self._scheduler is not None
        first = self._clock() + timedelta(seconds=PRUNE_FIRST)
        schedule_every(self._scheduler, "maint:prune", self.prune, every=PRUNE_EVERY, first=first)

    async def prune(self) -> int:
        """Drop items not seen in their feed for ``[store] retention``, in small batches; how many went.

        Each batch is one short transaction on the store thread; between batches the loop runs, so
        polls and deliveries queue their store calls in between instead of waiting for the whole pass.
        """
        retention = self.active.config.store.retention
        if retention is None:
            return 0
        return await prune_in_batches(self.store, self._clock() - timedelta(seconds=retention), self._stop)

    async def _digest_job(self, channel: str, period: float) -> None:
        if self.worker is not None:
            try:
                await self.worker.flush_digest(channel, period)
            except FeedwatchError as exc:
                log.error("digest_failed", channel=channel, error=str(exc))

    async def _poll_job(self, name: str) -> None:
        feed = next((f for f in self.active.config.feeds if f.name == name), None)
        if feed is None or self._stop.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._polls.add(task)
        try:
            await self.poll(feed)
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            # Our own shutdown cancelled it; the next start polls again. Raised further, APScheduler would
            # log every poll in flight at a clean stop as a job that "raised an exception", with a traceback.
            log.debug("poll_cancelled", feed=name, reason="stopping")
        finally:
            self._polls.discard(task)

    def _next_poll(self, feed: FeedConfig, when: datetime) -> None:
        """Set when this feed is polled next (interval, backoff, Retry-After, publisher hints, jitter)."""
        if self._scheduler is None or self._stop.is_set():
            return
        job = self._scheduler.get_job(feed.name)
        if job is not None:
            job.modify(next_run_time=max(when, self._clock()))

    # -- one poll ----------------------------------------------------------------------------

    async def poll(self, feed: FeedConfig) -> None:
        """Poll one feed; whatever goes wrong stays with that feed."""
        assert self.poller is not None
        try:
            await self.poller.poll(feed)
        except asyncio.CancelledError:
            raise
        except FeedwatchError as exc:
            log.error("poll_failed", feed=feed.name, error=str(exc))
        except Exception:
            log.exception("poll_crashed", feed=feed.name)

    def _alerts_queued(self, now: datetime) -> None:
        self._last_alert = now
        if self.worker is not None:
            self.worker.wake.set()

    # -- reload and heartbeat ----------------------------------------------------------------

    def _on_sighup(self) -> None:
        if self._stop.is_set():
            # A reload ends in READY=1, which would tell systemd that a stopping service is up again.
            log.info("reload_ignored", reason="stopping")
            return
        # RELOADING=1 must reach systemd before `kill -HUP` returns, so send it from the handler.
        self.notifier.reloading()
        task = asyncio.ensure_future(self._reload_and_ready())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload_and_ready(self) -> None:
        try:
            await self.reload()
        finally:
            # Always READY again, even when the new files were rejected, or the unit stays "reloading";
            # unless a stop began meanwhile: STOPPING=1 already ended the reload for systemd.
            if not self._stop.is_set():
                self.notifier.ready(await self._status_line())

    def _healthy(self) -> bool:
        """Cheap check for the watchdog: heartbeats are recent and the outbox worker is alive."""
        if self._worker_task is not None and self._worker_task.done():
            return False
        return not self._last_heartbeat or time.monotonic() - self._last_heartbeat < 3 * HEARTBEAT_EVERY + 30

    async def _status_line(self) -> str:
        try:
            return await self.store.call(records.status_line, self.active.config, self._last_alert, self._clock())
        except FeedwatchError:
            return "store unavailable"

    async def reload(self, *, config: bool = True) -> bool:
        """Re-read config (SIGHUP) and rules; on any error keep what runs now.

        Loading and compiling happen on a worker thread; the swap of ``self.active`` is one
        assignment, so a poll in progress finishes with the set it started with. Reloads run one at a
        time: a SIGHUP and a file change overlapping could otherwise finish out of order, and the one
        that read the files first would swap in an older RuleSet after the newer one.
        """
        async with self._reload_lock:
            return await self._reload(config)

    async def _reload(self, config: bool) -> bool:
        log.info("reloading", config=config)
        old = self.active

        def load() -> Active:
            cfg = load_config(old.config.path) if config else old.config
            report = load_rules(cfg.rules_dir, channels=list(cfg.channels), previous=old.report)
            active = Active.build(cfg, report)
            active.scorer.get()  # compiled here, off the loop, before the swap (see _compile_matcher)
            return active

        try:
            new = await asyncio.to_thread(load)
        except FeedwatchError as exc:
            log.error("reload_failed", error=str(exc), hint="the previous configuration stays active")
            self.observer.reloaded(ok=False)
            await self.store.call(Store.set_meta, "rules_error", {"at": self._clock().isoformat(), "error": str(exc)})
            return False
        self.active = new
        if config:
            await self._apply_store_config(old.config.store, new.config.store)
        for error in new.report.errors:
            log.error("rule_file_invalid", error=str(error), hint="the file's last good version stays active")
        if self._scheduler is not None and config:
            self._schedule_all()
        await self._record_rules()
        log.info(
            "reloaded",
            feeds=len(new.config.feeds),
            rules=len(new.report.ruleset.rules),
            errors=len(new.report.errors),
            version=new.report.ruleset.version[:12],
        )
        self.observer.reloaded(ok=not new.report.errors)
        return not new.report.errors

    async def _apply_store_config(self, old: StoreConfig, new: StoreConfig) -> None:
        """Limits apply at once (a full database gets its room without a restart); a new path needs one."""
        if new.path != old.path:
            log.warning("store_path_changed", path=str(new.path), hint="takes effect when the daemon restarts")
        if (new.max_size, new.busy_timeout) != (old.max_size, old.busy_timeout):
            await self.store.call(Store.set_limits, max_size=new.max_size, busy_timeout=new.busy_timeout)
            log.info("store_limits_changed", max_size=new.max_size, busy_timeout=new.busy_timeout)

    async def _compile_matcher(self) -> None:
        """Compile the matcher on a worker thread right after start.

        ``run --once`` compiles it only if an item needs scoring; the daemon will score sooner or later,
        and compiling now, while the first polls wait on the network, keeps that cost off the first
        new item's alert latency (and a reload compiles before its swap, likewise).
        """
        started = time.perf_counter()
        active = self.active
        await asyncio.to_thread(active.scorer.get)
        log.info(
            "matcher_compiled", rules=len(active.report.ruleset.rules), ms=round((time.perf_counter() - started) * 1000)
        )

    async def _watch_rules(self) -> None:
        """Reload rules when a ``*.toml`` file under rules_dir changes (settled; atomic-rename saves included)."""
        rules_dir = self.active.config.rules_dir

        async def changed(names: list[str]) -> None:
            log.info("rules_changed", files=names)
            await self.reload(config=False)

        def missing() -> None:
            log.error("rules_dir_missing", path=str(rules_dir), hint="rules reload when it is back; SIGHUP too")

        await rulewatch.watch(rules_dir, self._stop, changed, missing)

    async def _record_rules(self) -> None:
        await self.store.call(Store.set_meta, "rules", records.rules_record(self.active.report, self._clock()))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                record = records.heartbeat_record(self._started, self._clock(), self.active.config.polling.interval)
                await self.store.call(Store.set_meta, "daemon", record)
                self._last_heartbeat = time.monotonic()
                self.notifier.status(await self._status_line())
            except FeedwatchError as exc:
                log.error("heartbeat_failed", error=str(exc))
            await asyncio.sleep(heartbeat_interval(self.active.config))


__all__ = ["RuleError", "Service", "rules_or_raise"]
