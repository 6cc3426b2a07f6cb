"""`feedwatch run --dry-run`: poll and score every feed once, print what would alert, record nothing.

Each feed is fetched (with its stored ETag/Last-Modified, as a real poll would) and scored through the
same ingest steps as a real poll, inside a transaction that is rolled back: no item is marked seen, no
alert or delivery is queued, feed health and validators stay as they were. No channel is built, so
nothing can be sent and no channel secret is needed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from daemon.alerting.ingest import IngestResult
from daemon.alerting.policy import Outcome, route
from daemon.config.model import Config, FeedConfig
from daemon.errors import FeedwatchError
from daemon.intake.fetch import Fetcher, make_client
from daemon.intake.poller import Poller
from daemon.service.runtime import Active, fetch_settings, rules_or_raise
from daemon.store.async_store import AsyncStore

log = structlog.get_logger(__name__)

WOULD_SEND = {Outcome.ALERTED, Outcome.UPDATED, Outcome.STORM, Outcome.DIGEST}
SHOWN = {*WOULD_SEND, Outcome.SILENCED, Outcome.SEVERITY_FLOOR}


def utcnow() -> datetime:
    return datetime.now(UTC)


class DryRun:
    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utcnow) -> None:
        report = rules_or_raise(config)
        self.active = Active.build(config, report)
        self._clock = clock
        self.failed: list[str] = []

    async def run(self, emit: Callable[[str], None]) -> int:
        """Preview every enabled feed; ``emit`` one line per would-be alert; how many would be sent."""
        config = self.active.config
        store = AsyncStore(config.store.path, busy_timeout=config.store.busy_timeout, max_size=config.store.max_size)
        await store.open()
        try:
            settings = fetch_settings(config)
            async with make_client(settings) as client:
                poller = Poller(
                    store,
                    Fetcher(client, settings),
                    lambda: self.active,
                    clock=self._clock,
                    reschedule=lambda feed, when: None,
                    on_alerts=lambda now: None,
                )
                feeds = [f for f in config.feeds if f.enabled]
                results = await asyncio.gather(*(self._preview(poller, f) for f in feeds))
        finally:
            await store.aclose()
        return self._print(results, emit)

    async def _preview(self, poller: Poller, feed: FeedConfig) -> IngestResult:
        try:
            return await poller.preview(feed)
        except FeedwatchError as exc:
            log.error("dry_run_feed_failed", feed=feed.name, error=str(exc))
            self.failed.append(feed.name)
            return IngestResult()

    def _print(self, results: list[IngestResult], emit: Callable[[str], None]) -> int:
        config = self.active.config
        floors = {n: c.min_severity for n, c in config.channels.items()}
        rules = self.active.rules
        tally: Counter[str] = Counter()
        would = 0
        for result in results:
            for item, match, outcome, reason in result.outcomes:
                tally[outcome] += 1
                if outcome not in SHOWN:
                    continue
                rule = rules.get(match.rule_id)
                channels = route(rule.channels if rule else (), config.alerts.default_channels, floors, match.severity)
                head = "would alert" if outcome in WOULD_SEND else f"would not send ({outcome})"
                if outcome in WOULD_SEND:
                    would += 1
                where = ", ".join(channels) or "no channel"
                title = " ".join(item.title.split()) or "(untitled)"
                emit(f"{head}  {match.rule_id}  [{match.severity}]  {item.feed}: {title}  → {where}")
                if outcome not in (Outcome.ALERTED, Outcome.UPDATED):
                    emit(f"    {reason}")
        counts = ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "no rule matched a new item"
        emit(f"dry run: {would} alert(s) would be sent ({counts}); nothing was sent or recorded")
        return would
