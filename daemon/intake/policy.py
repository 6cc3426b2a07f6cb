"""Pure polling policy: when to poll next, and when a feed's health is worth one ops alert.

No I/O and no clock: callers pass ``now`` (aware UTC datetimes) and a ``random.Random``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from daemon.config.model import FeedConfig, PollingConfig
from daemon.models import FeedHealth
from daemon.util.durations import format_duration

HINT_CAP = 24 * 3600.0  # publisher hints (Retry-After, max-age, <ttl>) may not park a feed longer than this
_MAX_DOUBLINGS = 40  # 2**40 backoff steps dwarf any cap; stops float overflow on absurd failure counts


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often and how patiently feeds are polled, from ``[polling]``."""

    min_interval: float = 60.0  # floor, configurable down to 2 s for tests/benchmarks
    max_backoff: float = 6 * 3600.0
    backoff_base: float = 60.0
    jitter: float = 0.1  # ±10 %, so feeds (and retries after a shared outage) spread out
    fail_alert_after: int = 5  # consecutive failures before one ops alert
    fail_alert_after_seconds: float = 6 * 3600


def configured_interval(feed: FeedConfig, polling: PollingConfig) -> float:
    """A feed's own interval, else the global one (``interval = "auto"`` starts from the global one)."""
    return feed.interval or polling.interval


def poll_policy(polling: PollingConfig) -> PollPolicy:
    """The policy ``[polling]`` configures (built once per config load)."""
    return PollPolicy(
        min_interval=polling.min_interval,
        max_backoff=polling.max_backoff,
        backoff_base=max(polling.min_interval, 60.0 if polling.min_interval >= 60 else polling.min_interval),
        jitter=polling.jitter,
        fail_alert_after=polling.fail_alert_after,
        fail_alert_after_seconds=polling.fail_alert_after_time,
    )


@dataclass(frozen=True, slots=True)
class OpsEvent:
    """One operator notice about a feed; the caller prefixes the feed's name."""

    kind: Literal["failing", "recovered", "stale", "gone"]
    message: str


def next_poll_delay(
    policy: PollPolicy,
    *,
    interval: float,
    failures: int,
    retry_after: float | None,
    expires_in: float | None,
    ttl_minutes: int | None,
    rng: random.Random,
) -> float:
    """Seconds until the next poll.

    After a success (``failures == 0``) the configured interval, lengthened (never shortened) by the
    publisher's max-age/Expires or RSS ``<ttl>``. After a failure, exponential backoff from
    ``backoff_base`` capped at ``max_backoff``, and never sooner than ``retry_after``. Both are
    jittered and never below ``min_interval``.
    """
    floor = policy.min_interval
    if failures <= 0:
        base = max(interval, floor)
        ttl = ttl_minutes * 60.0 if ttl_minutes is not None else None
        for hint in (expires_in, ttl):
            if hint is not None:
                base = max(base, min(hint, HINT_CAP))
        return _jittered(base, policy.jitter, rng, low=floor, high=None)
    doublings = min(failures - 1, _MAX_DOUBLINGS)
    backoff = min(policy.backoff_base * 2.0**doublings, policy.max_backoff)
    delay = _jittered(backoff, policy.jitter, rng, low=floor, high=max(policy.max_backoff, floor))
    if retry_after is not None and retry_after > 0:
        # Only later, never earlier; spread upwards so feeds on one throttled host do not return together.
        wait = min(retry_after, HINT_CAP)
        delay = max(delay, wait * rng.uniform(1.0, 1.0 + policy.jitter))
    return delay


def _jittered(base: float, jitter: float, rng: random.Random, *, low: float, high: float | None) -> float:
    """``base`` ± ``jitter``, kept within [low, high] by narrowing the range rather than clamping to it."""
    lo = max(base * (1.0 - jitter), low)
    hi = base * (1.0 + jitter)
    if high is not None:
        hi = min(hi, high)
    return lo if hi <= lo else rng.uniform(lo, hi)


def auto_interval(
    publish_times: Sequence[datetime], *, floor: float, ceiling: float, default: float | None = None
) -> float:
    """Poll interval for ``interval = "auto"``: half the median gap between publications, clamped.

    Fewer than two distinct times say nothing about the feed's pace: ``default`` (or ``ceiling``).
    """
    times = sorted(set(publish_times))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    if not gaps:
        return min(max(default if default is not None else ceiling, floor), ceiling)
    return min(max(_median(gaps) / 2.0, floor), ceiling)


def _median(values: list[float]) -> float:
    """The median as ``statistics.median`` computes it (the mean of the middle two for an even count):
    importing ``statistics`` would bring it and ``fractions`` into the daemon for one sort."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def record_success(h: FeedHealth, *, now: datetime, status: int, new_items: int) -> tuple[FeedHealth, OpsEvent | None]:
    """A poll worked (200 or 304): clear the failure streak; "recovered" if it had been reported failing."""
    event = None
    if h.alerted_failing:
        since = f" (failing since {_when(h.failing_since, now)})" if h.failing_since else ""
        event = OpsEvent(
            "recovered",
            f"recovered after {h.consecutive_failures} failed {_plural(h.consecutive_failures)}{since}",
        )
    got_items = new_items > 0
    updated = replace(
        h,
        consecutive_failures=0,
        last_attempt=now,
        last_success=now,
        last_status=status,
        last_error=None,
        failing_since=None,
        alerted_failing=False,
        disabled=False,
        last_new_item=now if got_items else h.last_new_item,
        alerted_stale=False if got_items else h.alerted_stale,
    )
    return updated, event


def record_failure(
    h: FeedHealth, *, now: datetime, error: str, status: int | None, gone: bool, policy: PollPolicy
) -> tuple[FeedHealth, OpsEvent | None]:
    """A poll failed. One "failing" event once the streak reaches ``fail_alert_after`` polls or
    ``fail_alert_after_seconds``, then silence until a success; ``gone`` disables with one "gone" event.
    """
    failures = h.consecutive_failures + 1
    since = h.failing_since or now
    updated = replace(
        h,
        consecutive_failures=failures,
        last_attempt=now,
        last_status=status,
        last_error=error,
        failing_since=since,
    )
    if gone:
        if h.disabled:
            return updated, None
        return replace(updated, disabled=True), OpsEvent("gone", f"gone, polling stopped: {error}")
    if h.alerted_failing:
        return updated, None
    long_enough = (now - since).total_seconds() >= policy.fail_alert_after_seconds
    if failures >= policy.fail_alert_after or long_enough:
        message = f"failing for {failures} {_plural(failures)} since {_when(since, now)}: {error}"
        return replace(updated, alerted_failing=True), OpsEvent("failing", message)
    return updated, None


def check_stale(h: FeedHealth, *, now: datetime, expect_update: float | None) -> tuple[FeedHealth, OpsEvent | None]:
    """One "stale" event when no new item arrived for longer than ``expect_update`` seconds.

    Quiet for disabled feeds and for feeds already reported failing (that alert explains the silence),
    and for feeds that never produced an item (nothing to measure from). Re-arms once items arrive.
    """
    if expect_update is None or h.last_new_item is None or h.disabled:
        return h, None
    quiet = (now - h.last_new_item).total_seconds()
    if quiet <= expect_update:
        return (replace(h, alerted_stale=False) if h.alerted_stale else h), None
    if h.alerted_stale or h.alerted_failing:
        return h, None
    message = (
        f"stale: no new items for {format_duration(quiet)} (last {_when(h.last_new_item, now)}), "
        f"expected at least one every {format_duration(expect_update)}"
    )
    return replace(h, alerted_stale=True), OpsEvent("stale", message)


def _plural(n: int) -> str:
    return "poll" if n == 1 else "polls"


def _when(t: datetime | None, now: datetime) -> str:
    """``12:04 UTC`` today, ``2026-05-09 12:04 UTC`` on another day."""
    if t is None:
        return "unknown time"
    t_utc = t.astimezone(UTC) if t.tzinfo else t
    now_utc = now.astimezone(UTC) if now.tzinfo else now
    return f"{t_utc:%H:%M} UTC" if t_utc.date() == now_utc.date() else f"{t_utc:%Y-%m-%d %H:%M} UTC"
