"""Jobs on the APScheduler: one per enabled feed, one per digest channel, and maintenance.

The functions take the scheduler and the job callables, so the service decides what runs and this
module only decides when. APScheduler is imported inside them: ``run --once`` uses only the pruning
here and never schedules anything.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from daemon.config.model import Config, FeedConfig
from daemon.errors import FeedwatchError
from daemon.intake.policy import configured_interval
from daemon.store.async_store import AsyncStore
from daemon.store.rows import FeedState
from daemon.store.sqlite import Store
from daemon.util.redact import redact_url
from daemon.util.schedule import parse_schedule

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger("daemon.service.app")

PRUNE_EVERY = 3600.0
PRUNE_FIRST = 60.0  # the first pass shortly after start, once the first polls are under way
PRUNE_BATCH = 1000  # items per transaction: keeps each write lock short so polls are not held up
MAX_START_SPREAD = 30.0  # seconds over which the first polls after a start are spread at most
START_RATE = 10.0  # first polls per second a start spreads them to: one feed starts at once


def schedule_feeds(
    scheduler: AsyncIOScheduler,
    config: Config,
    poll_job: Callable[[str], Awaitable[None]],
    *,
    now: datetime,
    rng: random.Random,
    initial: bool = False,
    states: Sequence[FeedState] | None = None,
) -> None:
    """One interval job per enabled feed; jobs of feeds no longer configured go away."""
    from apscheduler.triggers.interval import IntervalTrigger

    wanted = {f.name: f for f in config.feeds if f.enabled}
    known = {s.name: s for s in states or ()}
    for job in scheduler.get_jobs():
        if job.id not in wanted and not job.id.startswith(("digest:", "maint:")):
            job.remove()
            log.info("feed_unscheduled", feed=job.id)
    for name, feed in wanted.items():
        interval = configured_interval(feed, config.polling)
        # Spread the first polls so a restart does not hit every server in the same second.
        spread = start_spread(len(wanted), interval, config.polling.jitter)
        start = first_poll_at(feed, known.get(name), now=now, interval=interval, spread=rng.uniform(0, spread))
        trigger = IntervalTrigger(seconds=interval, jitter=int(interval * config.polling.jitter) or None)
        if scheduler.get_job(name) is None:
            scheduler.add_job(
                poll_job,
                trigger=trigger,
                id=name,
                args=[name],
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=start,
            )
        elif not initial:
            scheduler.reschedule_job(name, trigger=trigger)


def start_spread(feeds: int, interval: float, jitter: float) -> float:
    """Seconds over which the first polls after a start are spread: enough for ``START_RATE`` polls a
    second, at most ``jitter`` of the interval and ``MAX_START_SPREAD``; a site with one feed polls at once."""
    return min(feeds / START_RATE, interval * jitter, MAX_START_SPREAD)


def schedule_digests(
    scheduler: AsyncIOScheduler, config: Config, digest_job: Callable[[str, float], Awaitable[None]]
) -> None:
    """One job per digest channel, at its schedule in its time zone."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    for name, channel in config.channels.items():
        if channel.mode != "digest" or not channel.schedule:
            continue
        when = parse_schedule(channel.schedule)
        zone = ZoneInfo(channel.timezone)
        trigger: IntervalTrigger | CronTrigger
        if when.every:
            trigger = IntervalTrigger(seconds=when.every, timezone=zone)
            period = when.every
        else:
            trigger = CronTrigger(hour=when.hour, minute=when.minute, day_of_week=when.day, timezone=zone)
            period = 7 * 86400.0 if when.day else 86400.0
        scheduler.add_job(
            digest_job,
            trigger=trigger,
            id=f"digest:{name}",
            args=[name, period],
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )


def schedule_every(
    scheduler: AsyncIOScheduler, job_id: str, job: Callable[[], Awaitable[Any]], *, every: float, first: datetime
) -> None:
    """A maintenance job (``maint:...``) every ``every`` seconds, first at ``first``."""
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(
        job,
        trigger=IntervalTrigger(seconds=every),
        id=job_id,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=first,
    )


def first_poll_at(
    feed: FeedConfig, state: FeedState | None, *, now: datetime, interval: float, spread: float
) -> datetime:
    """When a feed is first polled after start: soon (``spread`` seconds), unless its stored next poll is later.

    A restart must not undo a publisher's Retry-After or a failing feed's backoff, nor re-poll every
    healthy feed at once; a healthy feed waits at most one (possibly newly configured) interval, and a
    changed URL is a new feed that starts fresh.
    """
    soon = now + timedelta(seconds=spread)
    if state is None or state.url != redact_url(feed.url) or state.next_poll_at is None:
        return soon
    target = state.next_poll_at
    if not state.health.consecutive_failures:
        target = min(target, now + timedelta(seconds=interval))
    return max(soon, target)


async def prune_in_batches(store: AsyncStore, before: datetime, stop: asyncio.Event) -> int:
    """Drop items last seen in their feed before ``before``, in small batches; how many went.

    Each batch is one short transaction on the store thread; between batches the loop runs, so
    polls and deliveries queue their store calls in between instead of waiting for the whole pass.
    """
    total = 0
    try:
        while not stop.is_set():
            pruned = await store.call(Store.prune, before, batch=PRUNE_BATCH)
            total += pruned
            if pruned < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
    except FeedwatchError as exc:
        log.error("prune_failed", error=str(exc), pruned=total)
        return total
    log.info("pruned", items=total, unseen_since=before.isoformat(timespec="seconds"))
    return total
