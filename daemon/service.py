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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from daemon import __version__, pipeline
from daemon.config import Config, FeedConfig, load_config
from daemon.errors import FeedwatchError, FetchError, RuleError
from daemon.feeds import ParsedFeed, parse_feed
from daemon.fetch import Fetcher, FetchResult, FetchSettings, Validators, make_client
from daemon.matcher import Matcher
from daemon.notify.base import Channel
from daemon.notify.worker import OutboxWorker
from daemon.retry import RetryPolicy
from daemon.rules import LoadReport, load_rules
from daemon.store import AsyncStore, FeedState, Store
from daemon.systemd import Notifier, format_status, watchdog_loop
from daemon.urls import host_of

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_QUEUED = 3
HEARTBEAT_EVERY = 10.0
CLOSE_TIMEOUT = 2.0  # seconds for all channels together to close at shutdown, after the grace period


def heartbeat_interval(config: Config) -> float:
    """Seconds between heartbeats: at most HEARTBEAT_EVERY, never more than the shortest poll interval.

    `feedwatch status` calls the daemon gone after 3 poll intervals without a heartbeat, so with fast
    polling (tests, `min_interval = "1s"`) a fixed 10 s would read as a dead daemon.
    """
    return min(HEARTBEAT_EVERY, config.polling.min_interval)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Active:
    """What the daemon currently runs with; swapped whole on reload so a poll sees one version."""

    config: Config
    report: LoadReport
    matcher: Matcher

    @property
    def rules(self) -> dict[str, Any]:
        return {r.id: r for r in self.report.ruleset.rules}


def rules_or_raise(config: Config, previous: LoadReport | None = None) -> LoadReport:
    report = load_rules(config.rules_dir, channels=list(config.channels), previous=previous)
    if previous is None and report.errors:
        raise report.errors[0]
    return report


class Service:
    def __init__(
        self, config: Config, *, clock: Callable[[], datetime] = utcnow, notifier: Notifier | None = None
    ) -> None:
        report = rules_or_raise(config)
        self.notifier = notifier or Notifier.from_env()
        self._last_alert: datetime | None = None
        self._last_heartbeat = 0.0
        self.active = Active(config, report, Matcher(report.ruleset))
        self._clock = clock
        self._rng = random.Random()
        self._stop = asyncio.Event()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._global = asyncio.Semaphore(config.polling.max_concurrency)
        self._started = time.time()
        self._stack = AsyncExitStack()
        self._scheduler: AsyncIOScheduler | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Future[None]] = set()
        self._worker_task: asyncio.Task[None] | None = None
        self.store = AsyncStore(
            config.store.path, busy_timeout=config.store.busy_timeout, max_size=config.store.max_size
        )
        self.channels: dict[str, Channel] = {}
        self.worker: OutboxWorker | None = None
        self.fetcher: Fetcher | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        cfg = self.active.config
        await self.store.open()
        self._stack.push_async_callback(self.store.aclose)
        settings = FetchSettings(
            connect_timeout=cfg.polling.connect_timeout,
            read_timeout=cfg.polling.read_timeout,
            total_timeout=cfg.polling.total_timeout,
            max_bytes=cfg.polling.max_bytes,
            max_redirects=cfg.polling.max_redirects,
            ca_bundle=cfg.polling.ca_bundle,
        )
        client = make_client(settings)
        self._stack.push_async_callback(client.aclose)
        self.fetcher = Fetcher(client, settings)
        self.channels = build_channels(cfg, client)
        self._stack.push_async_callback(self._close_channels)
        policy = RetryPolicy(attempts=cfg.alerts.max_attempts, base=cfg.alerts.retry_base, cap=cfg.alerts.retry_cap)
        concurrency = {name: c.concurrency for name, c in cfg.channels.items()}
        self.worker = OutboxWorker(self.store, self.channels, policy, concurrency=concurrency, clock=self._clock)
        await self._record_rules()

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def _close_channels(self) -> None:
        """Close every channel at once, all within CLOSE_TIMEOUT.

        A channel whose send was cut off at the end of the grace period may be talking to a server
        that is still busy with it (an SMTP QUIT then waits for the reply to DATA); that must not
        push the exit past systemd's stop timeout.
        """
        tasks = {asyncio.ensure_future(channel.aclose()): name for name, channel in self.channels.items()}
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("channel_close_timeout", channels=sorted(tasks[t] for t in pending), timeout=CLOSE_TIMEOUT)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("channel_close_failed", channel=tasks[task], error=str(task.exception()))

    async def run_once(self) -> int:
        """Poll every feed once, deliver, wait for the outbox up to the bound; 0 or 3."""
        try:
            await self._start()
            feeds = [f for f in self.active.config.feeds if f.enabled]
            await asyncio.gather(*(self.poll(f) for f in feeds))
            assert self.worker is not None
            left = await self.worker.drain(self.active.config.alerts.outbox_wait)
            if left:
                log.warning("outbox_not_empty", pending=left, hint="they are delivered on the next run")
                return EXIT_QUEUED
            return EXIT_OK
        finally:
            await self.aclose()

    async def run_forever(self) -> int:
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
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            assert self.worker is not None
            worker_task = asyncio.create_task(self.worker.run_forever(self._stop), name="outbox")
            heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._schedule_all(initial=True)
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
            return EXIT_OK
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
        grace = self.active.config.grace_period
        try:
            await asyncio.wait_for(worker_task, timeout=grace)
        except TimeoutError:
            log.warning("grace_period_over", grace=grace, hint="undelivered alerts stay in the outbox")
        await asyncio.gather(*self._polls, heartbeat_task, return_exceptions=True)
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

    def _interval(self, feed: FeedConfig) -> float:
        return feed.interval or self.active.config.polling.interval

    def _schedule_all(self, *, initial: bool = False) -> None:
        assert self._scheduler is not None
        cfg = self.active.config
        wanted = {f.name: f for f in cfg.feeds if f.enabled}
        for job in self._scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
                log.info("feed_unscheduled", feed=job.id)
        now = self._clock()
        for name, feed in wanted.items():
            interval = self._interval(feed)
            # Spread the first polls so a restart does not hit every server in the same second.
            spread = min(interval * cfg.polling.jitter, 30.0)
            start = now + timedelta(seconds=self._rng.uniform(0, spread))
            trigger = IntervalTrigger(seconds=interval, jitter=int(interval * cfg.polling.jitter) or None)
            if self._scheduler.get_job(name) is None:
                self._scheduler.add_job(
                    self._poll_job,
                    trigger=trigger,
                    id=name,
                    args=[name],
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                    next_run_time=start,
                )
            elif not initial:
                self._scheduler.reschedule_job(name, trigger=trigger)

    async def _poll_job(self, name: str) -> None:
        feed = next((f for f in self.active.config.feeds if f.name == name), None)
        if feed is None or self._stop.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._polls.add(task)
        try:
            await self.poll(feed)
        finally:
            self._polls.discard(task)

    def _delay_next(self, feed: FeedConfig, seconds: float) -> None:
        """Push this feed's next poll out (backoff, Retry-After, Cache-Control); never pull it in."""
        if self._scheduler is None:
            return
        job = self._scheduler.get_job(feed.name)
        if job is None:
            return
        when = self._clock() + timedelta(seconds=seconds)
        if job.next_run_time is None or job.next_run_time < when:
            job.modify(next_run_time=when)

    # -- one poll ----------------------------------------------------------------------------

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = host_of(url) or "-"
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.active.config.polling.per_host)
        return self._hosts[host]

    async def poll(self, feed: FeedConfig) -> None:
        """Fetch, parse, score and enqueue one feed; every failure stays with this feed."""
        bound = log.bind(feed=feed.name)
        try:
            state = await self.store.call(Store.ensure_feed, feed.name, feed.url)
            if state.disabled:
                return
            result = await self._fetch(feed, state)
            if result is None:
                return
            await self._ingest(feed, state, result)
        except asyncio.CancelledError:
            raise
        except FeedwatchError as exc:
            bound.error("poll_failed", error=str(exc))
        except Exception:
            bound.exception("poll_crashed")

    async def _fetch(self, feed: FeedConfig, state: FeedState) -> FetchResult | None:
        assert self.fetcher is not None
        now = self._clock()
        url = state.fetch_url
        auth: httpx.Auth | None = None
        headers = dict(feed.headers)
        if feed.username and feed.password:
            auth = httpx.BasicAuth(feed.username, feed.password.reveal())
        if feed.token:
            headers["Authorization"] = f"Bearer {feed.token.reveal()}"
        try:
            async with self._global, self._host_limit(url):
                result = await self.fetcher.fetch(
                    url, Validators(state.etag, state.last_modified), headers=headers, auth=auth
                )
        except FetchError as exc:
            await self._failed(feed, state, exc, now)
            return None
        if result.permanent_url and result.permanent_url != url:
            log.warning("feed_moved", feed=feed.name, old=url, new=result.permanent_url)
        if result.status == 304:
            await self.store.call(
                Store.update_feed,
                state.id,
                last_attempt_at=now,
                last_success_at=now,
                last_status=304,
                consecutive_failures=0,
                failing_since=None,
                last_error=None,
                current_url=result.permanent_url or state.current_url,
            )
            self._hint(feed, result.expires_in, None)
            return None
        return result

    async def _ingest(self, feed: FeedConfig, state: FeedState, result: FetchResult) -> None:
        now = self._clock()
        assert result.body is not None
        try:
            parsed: ParsedFeed = await asyncio.to_thread(
                parse_feed, result.body, feed=feed.name, url=result.final_url, content_type=result.content_type
            )
        except FetchError as exc:
            await self._failed(feed, state, exc, now)
            return
        updates: dict[str, object] = {
            "etag": result.validators.etag,
            "last_modified": result.validators.last_modified,
            "last_attempt_at": now,
            "last_success_at": now,
            "last_status": result.status,
            "consecutive_failures": 0,
            "failing_since": None,
            "last_error": None,
        }
        if result.permanent_url:
            updates["current_url"] = result.permanent_url
        if parsed.problem and not state.problem_logged:
            log.warning("feed_ill_formed", feed=feed.name, url=result.final_url, problem=parsed.problem)
            updates["problem_logged"] = True
        active = self.active  # one RuleSet for the whole poll, even if a reload lands meanwhile
        channel_floors = {n: c.min_severity for n, c in active.config.channels.items()}
        routing = pipeline.Routing(active.config.alerts, channel_floors)
        ingested = await self.store.call(
            pipeline.ingest,
            feed,
            state,
            parsed.items,
            scorer=active.matcher,
            rules=active.rules,
            routing=routing,
            now=now,
            feed_updates=updates,
        )
        log.info(
            "feed_polled",
            feed=feed.name,
            status=result.status,
            items=len(parsed.items),
            new=ingested.new_items,
            changed=ingested.changed_items,
            alerts=len(ingested.alerts),
        )
        if ingested.alerts and self.worker is not None:
            self._last_alert = now
            self.worker.wake.set()
        self._hint(feed, result.expires_in, parsed.ttl_minutes)

    def _hint(self, feed: FeedConfig, expires_in: float | None, ttl_minutes: int | None) -> None:
        asked = max(expires_in or 0.0, (ttl_minutes or 0) * 60.0)
        if asked > self._interval(feed):
            self._delay_next(feed, min(asked, 24 * 3600.0))

    async def _failed(self, feed: FeedConfig, state: FeedState, exc: FetchError, now: datetime) -> None:
        failures = state.consecutive_failures + 1
        fields: dict[str, object] = {
            "last_attempt_at": now,
            "last_status": exc.status,
            "consecutive_failures": failures,
            "last_error": exc.reason,
        }
        if state.failing_since is None:
            fields["failing_since"] = now
        if exc.gone:
            fields["disabled"] = True
        await self.store.call(Store.update_feed, state.id, **fields)
        log.error(
            "feed_failed",
            feed=feed.name,
            url=exc.feed_url,
            status=exc.status,
            failures=failures,
            error=exc.reason,
            disabled=exc.gone,
        )
        polling = self.active.config.polling
        backoff = min(polling.max_backoff, polling.min_interval * 2.0 ** (failures - 1))
        delay = max(backoff * self._rng.uniform(0.9, 1.1), exc.retry_after or 0.0)
        self._delay_next(feed, delay)

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
            counts = await self.store.call(Store.outbox_counts)
            feeds = await self.store.call(Store.feeds)
        except FeedwatchError:
            return "store unavailable"
        failing = sum(1 for f in feeds if f.consecutive_failures)
        enabled = sum(1 for f in self.active.config.feeds if f.enabled)
        return format_status(
            feeds=enabled, failing=failing, outbox=counts["pending"], last_alert=self._last_alert, now=self._clock()
        )

    async def reload(self) -> bool:
        """SIGHUP: re-read config and rules; on any error keep what runs now."""
        log.info("reloading")
        old = self.active
        try:
            config = load_config(old.config.path)
            report = load_rules(config.rules_dir, channels=list(config.channels), previous=old.report)
        except FeedwatchError as exc:
            log.error("reload_failed", error=str(exc), hint="the previous configuration stays active")
            await self.store.call(Store.set_meta, "rules_error", {"at": self._clock().isoformat(), "error": str(exc)})
            return False
        self.active = Active(config, report, Matcher(report.ruleset))
        for error in report.errors:
            log.error("rule_file_invalid", error=str(error), hint="the file's last good version stays active")
        if self._scheduler is not None:
            self._schedule_all()
        await self._record_rules()
        log.info("reloaded", feeds=len(config.feeds), rules=len(report.ruleset.rules), errors=len(report.errors))
        return not report.errors

    async def _record_rules(self) -> None:
        report = self.active.report
        await self.store.call(
            Store.set_meta,
            "rules",
            {
                "loaded_at": self._clock().isoformat(),
                "rules": [r.id for r in report.ruleset.rules],
                "errors": [str(e) for e in report.errors],
                "warnings": list(report.warnings),
            },
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.store.call(
                    Store.set_meta,
                    "daemon",
                    {
                        "pid": os.getpid(),
                        "version": __version__,
                        "started_at": datetime.fromtimestamp(self._started, UTC).isoformat(),
                        "heartbeat_at": self._clock().isoformat(),
                        "interval": self.active.config.polling.interval,
                    },
                )
                self._last_heartbeat = time.monotonic()
                self.notifier.status(await self._status_line())
            except FeedwatchError as exc:
                log.error("heartbeat_failed", error=str(exc))
            await asyncio.sleep(heartbeat_interval(self.active.config))


def build_channels(config: Config, client: httpx.AsyncClient) -> dict[str, Channel]:
    from daemon.notify.registry import build_channel

    return {name: build_channel(name, cc.type, cc.settings, http=client) for name, cc in config.channels.items()}


__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_QUEUED", "RuleError", "Service", "rules_or_raise"]
