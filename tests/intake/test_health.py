"""Polling policy: next-poll delays, adaptive intervals, and one ops event per feed problem."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from daemon.intake.policy import (
    HINT_CAP,
    FeedHealth,
    OpsEvent,
    PollPolicy,
    auto_interval,
    check_stale,
    next_poll_delay,
    record_failure,
    record_success,
)

T0 = datetime(2026, 5, 9, 12, 4, tzinfo=UTC)
EXACT = PollPolicy(jitter=0.0)
H = 3600.0


def delay(
    policy: PollPolicy = EXACT,
    *,
    interval: float = 300.0,
    failures: int = 0,
    retry_after: float | None = None,
    expires_in: float | None = None,
    ttl_minutes: int | None = None,
    seed: int = 0,
) -> float:
    return next_poll_delay(
        policy,
        interval=interval,
        failures=failures,
        retry_after=retry_after,
        expires_in=expires_in,
        ttl_minutes=ttl_minutes,
        rng=random.Random(seed),
    )


class TestNextPollDelay:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({}, 300.0),
            ({"interval": 10.0}, 60.0),
            ({"expires_in": 900.0}, 900.0),
            ({"expires_in": 100.0}, 300.0),
            ({"ttl_minutes": 30}, 1800.0),
            ({"ttl_minutes": 30, "expires_in": 2 * H}, 2 * H),
            ({"expires_in": 10 * 24 * H}, HINT_CAP),
            ({"ttl_minutes": 100_000}, HINT_CAP),
            ({"interval": 2 * 24 * H}, 2 * 24 * H),
            ({"retry_after": 5000.0}, 300.0),
        ],
        ids=[
            "interval",
            "floor",
            "max-age-lengthens",
            "max-age-never-shortens",
            "rss-ttl",
            "longest-hint-wins",
            "max-age-capped",
            "ttl-capped",
            "long-interval-kept",
            "retry-after-ignored-on-success",
        ],
    )
    def test_after_success(self, kwargs: dict[str, float], expected: float) -> None:
        """After a success the interval applies, lengthened but never shortened by publisher hints."""
        assert delay(**kwargs) == expected  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("failures", "retry_after", "expected"),
        [
            (1, None, 60.0),
            (2, None, 120.0),
            (3, None, 240.0),
            (9, None, 15360.0),
            (10, None, 6 * H),
            (11, None, 6 * H),
            (10_000, None, 6 * H),
            (1, 3600.0, 3600.0),
            (5, 10.0, 960.0),
            (1, 1e9, HINT_CAP),
            (1, 0.0, 60.0),
        ],
        ids=[
            "first",
            "doubles",
            "doubles-again",
            "ninth",
            "capped",
            "stays-capped",
            "no-overflow",
            "retry-after-longer",
            "retry-after-shorter",
            "retry-after-capped",
            "retry-after-zero",
        ],
    )
    def test_after_failure(self, failures: int, retry_after: float | None, expected: float) -> None:
        """Failures back off exponentially up to max_backoff and wait at least Retry-After."""
        assert delay(failures=failures, retry_after=retry_after) == expected

    def test_failure_backoff_is_independent_of_interval(self) -> None:
        """A failing hourly feed is retried on the backoff ladder, not at its hourly interval."""
        assert delay(interval=H, failures=1) == 60.0

    def test_floor_is_configurable_down_to_two_seconds(self) -> None:
        """A 2 s floor (benchmarks, tests) lets a 2 s interval through, and backoff starts no lower."""
        fast = PollPolicy(min_interval=2.0, backoff_base=1.0, jitter=0.0)
        assert delay(fast, interval=2.0) == 2.0
        assert delay(fast, interval=0.5) == 2.0
        assert delay(fast, failures=1) == 2.0
        assert delay(fast, failures=3) == 4.0

    @pytest.mark.parametrize(
        ("kwargs", "low", "high"),
        [
            ({"interval": 600.0}, 540.0, 660.0),
            ({"interval": 60.0}, 60.0, 66.0),
            ({"failures": 3}, 216.0, 264.0),
            ({"failures": 20}, 6 * H * 0.9, 6 * H),
            ({"failures": 1, "retry_after": 1000.0}, 1000.0, 1100.0),
        ],
        ids=["interval", "at-floor", "backoff", "at-max-backoff", "retry-after"],
    )
    def test_jitter_spreads_within_bounds(self, kwargs: dict[str, float], low: float, high: float) -> None:
        """Jitter spreads delays ±10 %, never below the floor, above max_backoff or before Retry-After."""
        values = [delay(PollPolicy(), seed=seed, **kwargs) for seed in range(200)]  # type: ignore[arg-type]
        assert all(low <= v <= high for v in values), (min(values), max(values))
        assert max(values) - min(values) > (high - low) * 0.5, "delays should actually spread"

    def test_same_seed_same_delay(self) -> None:
        """The delay depends only on its inputs and the injected random source."""
        assert delay(PollPolicy(), seed=7) == delay(PollPolicy(), seed=7)


class TestAutoInterval:
    @staticmethod
    def times(*minutes: float) -> list[datetime]:
        return [T0 + timedelta(minutes=m) for m in minutes]

    @pytest.mark.parametrize(
        ("minutes", "expected"),
        [
            ((0, 60, 120, 180), 1800.0),
            ((180, 0, 120, 60), 1800.0),
            ((0, 10, 20, 30, 600), 300.0),
            ((0, 1, 2, 3), 120.0),
            ((0, 24 * 60, 48 * 60), 6 * H),
            ((0, 60, 60, 60, 120), 1800.0),
        ],
        ids=["hourly", "unsorted", "median-ignores-outlier", "floor", "ceiling", "duplicates-ignored"],
    )
    def test_half_the_median_gap_clamped(self, minutes: tuple[float, ...], expected: float) -> None:
        """The interval is half the median publishing gap, within [floor, ceiling]."""
        assert auto_interval(self.times(*minutes), floor=120.0, ceiling=6 * H) == expected

    @pytest.mark.parametrize("minutes", [(), (0,), (5, 5, 5)], ids=["none", "one", "all-same"])
    def test_without_pace_information(self, minutes: tuple[float, ...]) -> None:
        """With under two distinct times the default (else the ceiling) is used, still clamped."""
        times = self.times(*minutes)
        assert auto_interval(times, floor=120.0, ceiling=6 * H) == 6 * H
        assert auto_interval(times, floor=120.0, ceiling=6 * H, default=900.0) == 900.0
        assert auto_interval(times, floor=120.0, ceiling=6 * H, default=10.0) == 120.0

    def test_median_gap_as_statistics_computes_it(self) -> None:
        """Odd and even counts of irregular gaps give the interval statistics.median's value gives."""
        rng = random.Random(7)
        for count in range(2, 40):
            times = [T0 + timedelta(seconds=rng.uniform(0, 30 * H)) for _ in range(count)]
            ordered = sorted(times)
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
            expected = min(max(statistics.median(gaps) / 2.0, 1.0), 100 * H)
            assert auto_interval(times, floor=1.0, ceiling=100 * H) == expected


def fail(
    h: FeedHealth,
    at: datetime,
    *,
    error: str = "HTTP 500 Internal Server Error",
    gone: bool = False,
    policy: PollPolicy = EXACT,
) -> tuple[FeedHealth, OpsEvent | None]:
    return record_failure(h, now=at, error=error, status=410 if gone else 500, gone=gone, policy=policy)


class TestFailureAlerts:
    def test_one_failing_event_after_n_failures(self) -> None:
        """Polls 1-4 fail quietly, the 5th raises one "failing" event, later failures stay quiet."""
        h = FeedHealth()
        events = []
        for i in range(8):
            h, event = fail(h, T0 + timedelta(minutes=2 * i))
            events.append(event)
        assert events[:4] == [None] * 4
        assert events[4] == OpsEvent("failing", "failing for 5 polls since 12:04 UTC: HTTP 500 Internal Server Error")
        assert events[5:] == [None] * 3
        assert (h.consecutive_failures, h.failing_since, h.alerted_failing) == (8, T0, True)
        assert (h.last_status, h.last_error, h.last_attempt) == (
            500,
            "HTTP 500 Internal Server Error",
            T0 + timedelta(minutes=14),
        )

    def test_failing_event_after_time_threshold(self) -> None:
        """A slowly retried feed is reported after fail_alert_after_seconds of failure, even in few polls."""
        h, first = fail(FeedHealth(), T0)
        h, second = fail(h, T0 + timedelta(hours=5, minutes=59))
        h, third = fail(h, T0 + timedelta(hours=6, minutes=1))
        assert (first, second) == (None, None)
        assert third == OpsEvent("failing", "failing for 3 polls since 12:04 UTC: HTTP 500 Internal Server Error")

    def test_failing_since_on_another_day_shows_the_date(self) -> None:
        """When the streak began on an earlier day, the message gives the date too."""
        h = FeedHealth(consecutive_failures=4, failing_since=T0)
        _, event = fail(h, T0 + timedelta(days=1), error="name resolution failed for host example.org")
        assert event is not None
        assert event.message == (
            "failing for 5 polls since 2026-05-09 12:04 UTC: name resolution failed for host example.org"
        )

    def test_recovery_reports_once_and_rearms(self) -> None:
        """A success after an alert gives one "recovered" event and a new streak may alert again."""
        h = FeedHealth()
        for i in range(5):
            h, _ = fail(h, T0 + timedelta(minutes=i))
        h, event = record_success(h, now=T0 + timedelta(hours=1), status=200, new_items=0)
        assert event == OpsEvent("recovered", "recovered after 5 failed polls (failing since 12:04 UTC)")
        assert h == FeedHealth(
            last_attempt=T0 + timedelta(hours=1), last_success=T0 + timedelta(hours=1), last_status=200
        )
        _, again = record_success(h, now=T0 + timedelta(hours=2), status=304, new_items=0)
        assert again is None
        events = []
        for i in range(5):
            h, ev = fail(h, T0 + timedelta(hours=3, minutes=i))
            events.append(ev)
        assert [e.kind if e else None for e in events] == [None, None, None, None, "failing"]

    def test_success_without_alert_is_silent(self) -> None:
        """A streak that never reached the threshold ends without any event."""
        h, _ = fail(FeedHealth(), T0)
        h, event = record_success(h, now=T0 + timedelta(minutes=1), status=200, new_items=3)
        assert event is None
        assert (h.consecutive_failures, h.failing_since, h.last_error, h.last_new_item) == (
            0,
            None,
            None,
            T0 + timedelta(minutes=1),
        )

    def test_gone_disables_with_one_event(self) -> None:
        """HTTP 410 disables the feed with one "gone" event; repeats say nothing more."""
        h, event = fail(FeedHealth(), T0, error="HTTP 410 Gone: the publisher removed this feed", gone=True)
        assert event == OpsEvent("gone", "gone, polling stopped: HTTP 410 Gone: the publisher removed this feed")
        assert h.disabled
        h, again = fail(h, T0 + timedelta(hours=1), error="HTTP 410 Gone", gone=True)
        assert again is None
        assert h.disabled

    def test_gone_does_not_wait_for_threshold(self) -> None:
        """Even a feed that was healthy until now is disabled by its first 410."""
        h, event = fail(FeedHealth(last_success=T0), T0 + timedelta(minutes=5), gone=True)
        assert event is not None
        assert event.kind == "gone"
        assert h.consecutive_failures == 1

    @pytest.mark.parametrize(
        ("after", "after_seconds", "polls_before_event"),
        [(1, 6 * H, 1), (3, 6 * H, 3), (100, 300.0, 4)],
        ids=["first-failure", "three", "time-wins"],
    )
    def test_thresholds_are_configurable(self, after: int, after_seconds: float, polls_before_event: int) -> None:
        """Whichever threshold is reached first (failure count or duration) triggers the one event."""
        policy = PollPolicy(fail_alert_after=after, fail_alert_after_seconds=after_seconds)
        h = FeedHealth()
        for i in range(1, 10):
            h, event = fail(h, T0 + timedelta(minutes=2 * (i - 1)), policy=policy)
            if event:
                break
        assert i == polls_before_event


class TestStale:
    def test_stale_once_then_rearmed_by_new_items(self) -> None:
        """A feed quiet past expect_update gives one "stale" event; a new item re-arms the check."""
        h = FeedHealth(last_new_item=T0 - timedelta(days=2, hours=1))
        h, event = check_stale(h, now=T0, expect_update=24 * H)
        assert event == OpsEvent(
            "stale",
            "stale: no new items for 2 d 1 h (last 2026-05-07 11:04 UTC), expected at least one every 1 d",
        )
        assert h.alerted_stale
        h, again = check_stale(h, now=T0 + timedelta(hours=1), expect_update=24 * H)
        assert again is None
        h, _ = record_success(h, now=T0 + timedelta(hours=2), status=200, new_items=1)
        assert not h.alerted_stale
        h, fresh = check_stale(h, now=T0 + timedelta(hours=3), expect_update=24 * H)
        assert fresh is None
        _, later = check_stale(h, now=T0 + timedelta(days=2), expect_update=24 * H)
        assert later is not None
        assert later.message.startswith("stale: no new items for 1 d 22 h (last 2026-05-09 14:04 UTC)")

    def test_success_without_items_keeps_stale_state(self) -> None:
        """304s and empty polls neither reset the last new item nor re-arm the stale alert."""
        h = FeedHealth(last_new_item=T0 - timedelta(days=3), alerted_stale=True)
        h, _ = record_success(h, now=T0, status=304, new_items=0)
        assert (h.last_new_item, h.alerted_stale) == (T0 - timedelta(days=3), True)

    @pytest.mark.parametrize(
        ("health", "expect_update"),
        [
            (FeedHealth(last_new_item=T0 - timedelta(days=9)), None),
            (FeedHealth(), 3600.0),
            (FeedHealth(last_new_item=T0 - timedelta(minutes=59)), 3600.0),
            (FeedHealth(last_new_item=T0 - timedelta(days=9), disabled=True), 3600.0),
            (FeedHealth(last_new_item=T0 - timedelta(days=9), alerted_failing=True), 3600.0),
        ],
        ids=["no-expectation", "never-had-items", "fresh", "disabled", "already-failing"],
    )
    def test_no_stale_event(self, health: FeedHealth, expect_update: float | None) -> None:
        """No stale event without an expectation or a reference item, nor while fresh, disabled or failing."""
        _, event = check_stale(health, now=T0, expect_update=expect_update)
        assert event is None

    def test_fresh_feed_clears_a_leftover_stale_flag(self) -> None:
        """If the last new item is recent again, the stale flag is cleared so a later silence alerts."""
        h, event = check_stale(
            FeedHealth(last_new_item=T0 - timedelta(minutes=5), alerted_stale=True), now=T0, expect_update=H
        )
        assert event is None
        assert not h.alerted_stale

    @pytest.mark.parametrize(
        ("quiet", "text"),
        [
            (45.0, "45 s"),
            (12 * 60.0, "12 min"),
            (3 * H, "3 h"),
            (3 * H + 20 * 60, "3 h 20 min"),
            (2 * 24 * H, "2 d"),
        ],
    )
    def test_durations_read_plainly(self, quiet: float, text: str) -> None:
        """Durations in messages use at most two units people read at a glance."""
        h = FeedHealth(last_new_item=T0 - timedelta(seconds=quiet))
        _, event = check_stale(h, now=T0, expect_update=1.0)
        assert event is not None
        assert f"no new items for {text} (" in event.message
