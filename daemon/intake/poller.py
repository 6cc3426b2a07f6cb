"""One poll of one feed: fetch → parse (worker) → score (thread) → ingest → health bookkeeping → next poll time.

Every failure stays with its feed: it is recorded in the feed's health, logged with the feed's name and
URL, and pushes that feed's next poll out by the backoff — other feeds never notice. Operator alerts
(failing / recovered / stale / gone) are raised once per episode, never once per failed poll.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import structlog

from daemon.alerting import ingest as pipeline
from daemon.alerting.ops import enqueue_ops, ops_alert, regex_overrun_alert
from daemon.alerting.policy import Outcome
from daemon.alerting.silences import OPS_RULE
from daemon.config.model import Config, FeedConfig
from daemon.errors import FetchError
from daemon.intake import policy as health
from daemon.intake.fetch import Fetcher, FetchResult
from daemon.intake.headers import BasicAuth, Validators
from daemon.intake.parsing import Aside, FeedParser
from daemon.models import Alert, FeedDocument
from daemon.store.async_store import AsyncStore
from daemon.store.rows import FeedState
from daemon.store.sqlite import Store
from daemon.util.observe import NULL_OBSERVER, Observer
from daemon.util.redact import redact_url, restore_secrets
from daemon.util.urls import host_of

if TYPE_CHECKING:
    from daemon.intake.parse import ParsedFeed
    from daemon.rules.matcher import Matcher

log = structlog.get_logger(__name__)

# Outcomes that leave an alert in the store (sent, held, waiting for a digest, silenced, or floored).
RECORDED_ALERT = frozenset(
    {Outcome.ALERTED, Outcome.UPDATED, Outcome.STORM, Outcome.DIGEST, Outcome.SILENCED, Outcome.SEVERITY_FLOOR}
)
AUTO_CEILING = 12 * 3600.0  # "auto" never waits longer than this between polls
# Polls parsing, scoring or ingesting at once: one in each stage keeps the CPU busy. Parse worker
# processes add one each, since they parse side by side.
CPU_STAGES = 2
# Quick fetches at once (each then waiting for the CPU stages): on a fast network, fetching all
# ``max_concurrency`` feeds at once only fills memory with documents waiting their turn. A fetch still
# running after QUICK_FETCH is waiting on the network, and leaves its place to another.
QUICK_FETCHES = 16
QUICK_FETCH = 0.1  # seconds


class ActiveSet(Protocol):
    """What a poll runs with, built once per (re)load and read whole by one poll (service.runtime.Active)."""

    @property
    def config(self) -> Config: ...
    @property
    def matcher(self) -> Matcher: ...
    @property
    def scorer(self) -> pipeline.CheckedScorer: ...  # the matcher, compiled by the first thread that scores
    @property
    def rules(self) -> Mapping[str, pipeline.RuleInfo]: ...
    @property
    def routing(self) -> pipeline.Routing: ...
    @property
    def policy(self) -> health.PollPolicy: ...


class _QuickPlace:
    """One fetch's place among the quick ones: given back when the fetch proves slow (it cannot add to a
    burst of finished documents then), or once its document has entered the CPU stages."""

    def __init__(self, places: asyncio.Semaphore) -> None:
        self._slot = _StageSlot(places)
        self._timer: asyncio.TimerHandle | None = None

    async def take(self) -> None:
        await self._slot.take()
        self._timer = asyncio.get_running_loop().call_later(QUICK_FETCH, self._slot.give_back)

    def fetched(self) -> None:
        """The fetch is over: a quick one keeps its place until its document enters the stages."""
        if self._timer is not None:
            self._timer.cancel()

    def give_back(self) -> None:
        self.fetched()
        self._slot.give_back()


class _StageSlot:
    """One poll's place in the CPU stages, stepped out of while a child process parses its document: a
    feedparser fallback may take its whole deadline, and must not hold up the other feeds meanwhile."""

    def __init__(self, stage: asyncio.Semaphore) -> None:
        self._stage = stage
        self._held = False

    async def take(self) -> None:
        await self._stage.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._stage.release()

    @asynccontextmanager
    async def aside(self) -> AsyncIterator[None]:
        self.give_back()
        try:
            yield
        finally:
            await self.take()  # if cancelled here, nothing is held and give_back does nothing


def _fetch_url_of(feed: FeedConfig, state: FeedState) -> str:
    # The stored redirect target is redacted: its credentials come back from the configured URL.
    return (restore_secrets(state.current_url, feed.url) if state.current_url else None) or feed.url


class Poller:
    def __init__(
        self,
        store: AsyncStore,
        fetcher: Fetcher,
        active: Callable[[], ActiveSet],
        *,
        clock: Callable[[], datetime],
        reschedule: Callable[[FeedConfig, datetime], None],
        on_alerts: Callable[[datetime], None],
        parser: FeedParser | None = None,
        rng: random.Random | None = None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._observer = observer
        self._store = store
        self._fetcher = fetcher
        self._active = active
        self._clock = clock
        self._reschedule = reschedule
        self._on_alerts = on_alerts
        self._parser = parser or FeedParser()
        self._rng = rng or random.Random()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._global = asyncio.Semaphore(active().config.polling.max_concurrency)
        self._in_hand = asyncio.Semaphore(active().config.polling.max_concurrency)
        self._quick = asyncio.Semaphore(min(QUICK_FETCHES, active().config.polling.max_concurrency))
        self._stage = asyncio.Semaphore(CPU_STAGES + active().config.polling.parse_workers)
        # Rules already reported for a regex overrun, for the matcher in use (a reload starts afresh).
        self._overran: tuple[Matcher | None, set[str]] = (None, set())

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        """The one place ``polling.per_host`` is enforced: fetches to one host at once, any port.

        The deadline of a fetch starts once it holds its slots: queueing behind our own polls is not
        the server's fault.
        """
        host = host_of(url) or "-"
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self._active().config.polling.per_host)
        return self._hosts[host]

    async def poll(self, feed: FeedConfig) -> None:
        """Fetch, parse, score and enqueue one feed; raises only for store faults."""
        state = await self._store.batched(Store.ensure_feed, feed.name, feed.url)
        if state.health.disabled:
            return
        now = self._clock()
        parsed: ParsedFeed | None = None
        new_items = 0
        try:
            # A fetched document waits for the CPU stages holding this slot, so a busy CPU slows the
            # fetching down instead of piling up documents; with the CPU idle the wait is nil.
            slot = _StageSlot(self._stage)
            quick = _QuickPlace(self._quick)
            await self._in_hand.acquire()
            try:
                await quick.take()
                result = await self._fetch(feed, state)
                quick.fetched()
                if result.status != 304:
                    # Parse, score and ingest hold the GIL or the store's one thread anyway: letting every
                    # fetched feed into them at once would only multiply the documents and items alive.
                    await slot.take()
            finally:
                quick.give_back()
                self._in_hand.release()
            if result.status != 304:
                try:
                    parsed = await self._parse(feed, result, aside=slot.aside)
                    result = replace(result, body=None)  # the items are all the poll needs from here on
                    new_items = await self._ingest(feed, state, result, parsed, now)
                finally:
                    slot.give_back()
        except FetchError as exc:
            self._observer.polled(feed.name, ok=False)
            await self._failed(feed, state, exc, now)
            return
        self._observer.polled(feed.name, ok=True, new_items=new_items)
        await self._succeeded(feed, state, result, parsed, new_items, now)

    async def preview(self, feed: FeedConfig) -> pipeline.IngestResult:
        """What polling ``feed`` now would alert, recording nothing (``feedwatch run --dry-run``).

        Fetches with the stored validators, as a real poll would, and scores in a transaction that is
        rolled back; health, schedule and operator alerts are left alone. Fetch and parse errors raise.
        """
        stored = await self._store.call(Store.feed, feed.name)
        if stored is not None and stored.url != redact_url(feed.url):  # stored redacted
            stored = None  # a new URL under an old name starts afresh, as in ensure_feed
        if stored is not None and stored.health.disabled:
            return pipeline.IngestResult()
        url = _fetch_url_of(feed, stored) if stored else feed.url
        validators = Validators(stored.etag, stored.last_modified) if stored else Validators(None, None)
        now = self._clock()
        result = await self._fetch_url(feed, url, validators)
        if result.status == 304:
            return pipeline.IngestResult()
        parsed = await self._parse(feed, result)
        active = self._active()
        sheet = await self._score(feed, stored, parsed, active.scorer)
        return await self._store.call(
            pipeline.preview,
            feed,
            parsed.items,
            scorer=sheet,
            rules=active.rules,
            routing=active.routing,
            now=now,
        )

    async def _score(
        self, feed: FeedConfig, state: FeedState | None, parsed: ParsedFeed, scorer: pipeline.CheckedScorer
    ) -> pipeline.ScoreSheet:
        """Matches of the new and edited items, worked out on a worker thread (which compiles the
        matcher if this is the first item to score since the rules were loaded)."""
        fresh = list(parsed.items)
        if state is not None:
            known = await self._store.call(Store.known_items, state.id, [i.key for i in parsed.items])
            fresh = [i for i in fresh if (k := known.get(i.key)) is None or k.content_hash != i.content_hash]
        if not fresh:  # nothing new: no thread, and no matcher needed
            self._observer.scored(0.0, 0)
            return pipeline.ScoreSheet(scorer)
        started = time.perf_counter()
        sheet = await asyncio.to_thread(pipeline.score_items, scorer, fresh, frozenset(feed.tags))
        self._observer.scored(time.perf_counter() - started, len(fresh))
        return sheet

    async def _fetch(self, feed: FeedConfig, state: FeedState) -> FetchResult:
        return await self._fetch_url(feed, _fetch_url_of(feed, state), Validators(state.etag, state.last_modified))

    async def _fetch_url(self, feed: FeedConfig, url: str, validators: Validators) -> FetchResult:
        auth: BasicAuth | None = None
        headers = dict(feed.headers)
        if feed.username and feed.password:
            auth = BasicAuth(feed.username, feed.password.reveal())
        if feed.token:
            headers["Authorization"] = f"Bearer {feed.token.reveal()}"
        # Host slot first: a feed queued behind its busy host must not hold a global slot other hosts could use.
        async with self._host_limit(url), self._global:
            result = await self._fetcher.fetch(
                url, validators, headers=headers, auth=auth, allow_private=feed.allow_private
            )
        if result.permanent_url and result.permanent_url != url:
            log.warning("feed_moved", feed=feed.name, old=url, new=result.permanent_url)
        return result

    async def _parse(self, feed: FeedConfig, result: FetchResult, *, aside: Aside | None = None) -> ParsedFeed:
        assert result.body is not None
        return await self._parser.parse(feed.name, result.final_url, result.body, result.content_type, aside=aside)

    async def _ingest(
        self, feed: FeedConfig, state: FeedState, result: FetchResult, parsed: ParsedFeed, now: datetime
    ) -> int:
        report_problem = bool(parsed.problem) and not state.problem_logged
        if report_problem:
            log.warning("feed_ill_formed", feed=feed.name, url=result.final_url, problem=parsed.problem)
        document = FeedDocument(
            etag=result.validators.etag,
            last_modified=result.validators.last_modified,
            current_url=result.permanent_url,
            problem_logged=report_problem,
        )
        active = self._active()  # one RuleSet for the whole poll, even if a reload lands meanwhile
        # Score first, on a worker thread: a slow regex must hold neither the store's thread nor the loop.
        # Only new and edited items are scored; the transaction below records them with these results.
        sheet = await self._score(feed, state, parsed, active.scorer)
        routing = active.routing
        ingested = await self._store.call(
            pipeline.ingest,
            feed,
            state,
            parsed.items,
            scorer=sheet,
            rules=active.rules,
            routing=routing,
            now=now,
            document=document,
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
        for _item, match, outcome, _reason in ingested.outcomes:
            if outcome in RECORDED_ALERT:
                self._observer.alerted(match.rule_id, str(match.severity), silenced=outcome == Outcome.SILENCED)
        if ingested.alerts:
            self._on_alerts(now)
        if sheet.overruns:
            await self._report_overruns(feed, active.matcher, sheet.overruns, now)
        return ingested.new_items

    async def _report_overruns(
        self, feed: FeedConfig, matcher: Matcher, overruns: dict[str, str], now: datetime
    ) -> None:
        """Log each overrun; raise one operator alert per rule while the same rules are loaded."""
        if self._overran[0] is not matcher:
            self._overran = (matcher, set())
        reported = self._overran[1]
        for rule_id, title in overruns.items():
            log.warning(
                "rule_regex_overrun",
                rule=rule_id,
                feed=feed.name,
                item=title[:120],
                budget_ms=round(matcher.regex_budget * 1000),
                hint="the rule was skipped for this item; `feedwatch check` names patterns that backtrack",
            )
            if rule_id not in reported:
                reported.add(rule_id)
                alert = regex_overrun_alert(rule_id, feed.name, title, matcher.regex_budget, now)
                await self.enqueue_ops_alert(alert, now, kind="regex-overrun")

    async def _interval(self, feed: FeedConfig, state: FeedState, parsed: ParsedFeed | None) -> float:
        polling = self._active().config.polling
        if feed.auto_interval:
            # A 304 says nothing new about the pace: keep deriving it from what the feed published.
            if parsed is not None:
                times = [i.published for i in parsed.items if i.published is not None]
            else:
                times = await self._store.call(Store.recent_published, state.id)
            return health.auto_interval(
                times, floor=polling.min_interval, ceiling=AUTO_CEILING, default=polling.interval
            )
        return health.configured_interval(feed, polling)

    async def _succeeded(
        self,
        feed: FeedConfig,
        state: FeedState,
        result: FetchResult,
        parsed: ParsedFeed | None,
        new_items: int,
        now: datetime,
    ) -> None:
        policy = self._active().policy
        h, event = health.record_success(state.health, now=now, status=result.status, new_items=new_items)
        h, stale = health.check_stale(h, now=now, expect_update=feed.expect_update)
        delay = health.next_poll_delay(
            policy,
            interval=await self._interval(feed, state, parsed),
            failures=0,
            retry_after=None,
            expires_in=result.expires_in,
            ttl_minutes=parsed.ttl_minutes if parsed else None,
            rng=self._rng,
        )
        revalidated = None
        if result.status == 304 and (
            result.permanent_url or result.validators != Validators(state.etag, state.last_modified)
        ):
            revalidated = FeedDocument(
                result.validators.etag, result.validators.last_modified, current_url=result.permanent_url
            )
        # Counted from when this poll started, not when it ended, so feeds keep their phase and a
        # slow cycle does not drift every later one.
        next_at = now + timedelta(seconds=delay)
        await self._store.batched(Store.save_poll_outcome, state.id, h, next_poll_at=next_at, revalidated=revalidated)
        self._reschedule(feed, next_at)
        for ev in (event, stale):
            if ev is not None:
                await self._raise_ops(feed, state.fetch_url, ev, now)

    async def _failed(self, feed: FeedConfig, state: FeedState, exc: FetchError, now: datetime) -> None:
        active = self._active()
        h, event = health.record_failure(
            state.health, now=now, error=exc.reason, status=exc.status, gone=exc.gone, policy=active.policy
        )
        delay = health.next_poll_delay(
            active.policy,
            interval=health.configured_interval(feed, active.config.polling),  # unused: a failure backs off
            failures=h.consecutive_failures,
            retry_after=exc.retry_after,
            expires_in=None,
            ttl_minutes=None,
            rng=self._rng,
        )
        next_at = None if h.disabled else now + timedelta(seconds=delay)
        await self._store.batched(Store.save_poll_outcome, state.id, h, next_poll_at=next_at)
        log.error(
            "feed_failed",
            feed=feed.name,
            url=exc.feed_url,
            status=exc.status,
            failures=h.consecutive_failures,
            error=exc.reason,
            disabled=h.disabled,
            retry_in=None if h.disabled else round(delay, 1),
        )
        if not h.disabled:
            self._reschedule(feed, now + timedelta(seconds=delay))
        if event is not None:
            await self._raise_ops(feed, exc.feed_url, event, now)

    async def _raise_ops(self, feed: FeedConfig, url: str, event: health.OpsEvent, now: datetime) -> None:
        alert = ops_alert(feed.name, url, event.kind, event.message, now)
        await self.enqueue_ops_alert(alert, now, kind=event.kind, url=url, message=event.message)

    async def enqueue_ops_alert(
        self, alert: Alert, now: datetime, *, kind: str, url: str | None = None, message: str | None = None
    ) -> None:
        """Queue an operator alert, routed like every alert (ops channels, severity floors, digests, silences)."""
        channels, silence = await self._store.call(enqueue_ops, alert, self._active().routing, now)
        if message is not None:
            log.warning("feed_problem", kind=kind, feed=alert.feed, url=url, message=message, channels=channels)
        self._observer.alerted(OPS_RULE, str(alert.severity), silenced=silence is not None)
        if silence is not None:
            log.info("ops_alert_silenced", feed=alert.feed, kind=kind, alert_id=alert.alert_id, silence=silence.id)
            return
        self._on_alerts(now)
