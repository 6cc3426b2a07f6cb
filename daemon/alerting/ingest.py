"""One poll's items through score → story → alert policy → outbox, in a single store transaction.

This is the seam between the pure core (matcher, stories, alerts) and the store. Scoring runs first,
off the store's thread (:func:`score_items`); :func:`ingest` then runs on the store's thread with the
results; nothing here touches the network. Marking items seen, recording matches and enqueueing
alerts commit together, with the feed's new ETag/Last-Modified, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from daemon.alerting import policy as alerts
from daemon.alerting import silences as muting
from daemon.alerting import stories
from daemon.alerting.policy import Outcome
from daemon.alerting.ports import FeedRow, IngestStore
from daemon.alerting.silences import Silence
from daemon.config.model import AlertConfig, FeedConfig
from daemon.models import (
    OUTBOX_DIGEST,
    OUTBOX_HELD,
    OUTBOX_PENDING,
    OUTBOX_SILENCED,
    Alert,
    AlertKind,
    FeedDocument,
    Item,
    RuleMatch,
    Severity,
)
from daemon.util.urls import canonical_url

if TYPE_CHECKING:
    from daemon.rules.matcher import Scored

SNIPPET = 280


class RuleInfo(Protocol):
    @property
    def description(self) -> str: ...
    @property
    def throttle(self) -> timedelta | None: ...
    @property
    def channels(self) -> tuple[str, ...]: ...


class Scorer(Protocol):
    def score(self, item: Item, *, feed_tags: frozenset[str] = ...) -> list[RuleMatch]: ...


class CheckedScorer(Scorer, Protocol):
    def score_checked(self, item: Item, *, feed_tags: frozenset[str] = ...) -> Scored: ...


@dataclass(slots=True)
class ScoreSheet:
    """Matches worked out before the ingest transaction, by (item key, content hash).

    A regex that overran its budget skipped its rule for that item only; ``overruns`` maps each such
    rule to the title of the first item it overran on. An item missing from the sheet (none, as a feed
    is polled by one task at a time) is scored on the spot.
    """

    scorer: Scorer
    matches: dict[tuple[str, str], list[RuleMatch]] = field(default_factory=dict)
    overruns: dict[str, str] = field(default_factory=dict)

    def score(self, item: Item, *, feed_tags: frozenset[str] = frozenset()) -> list[RuleMatch]:
        found = self.matches.get((item.key, item.content_hash))
        return found if found is not None else self.scorer.score(item, feed_tags=feed_tags)


def score_items(scorer: CheckedScorer, items: Iterable[Item], feed_tags: frozenset[str]) -> ScoreSheet:
    """Score ``items`` (meant for a worker thread: regexes release the GIL and have a time budget)."""
    sheet = ScoreSheet(scorer)
    for item in items:
        scored = scorer.score_checked(item, feed_tags=feed_tags)
        sheet.matches[(item.key, item.content_hash)] = scored.matches
        for rule_id in scored.overruns:
            sheet.overruns.setdefault(rule_id, item.title)
    return sheet


@dataclass(frozen=True, slots=True)
class Routing:
    """What the pipeline needs from config to address alerts."""

    alerts: AlertConfig
    channel_floors: Mapping[str, Severity]
    digest_channels: frozenset[str] = frozenset()


@dataclass(slots=True)
class IngestResult:
    """What one poll's ingest did: counts, the alerts it recorded and each match's outcome."""

    new_items: int = 0
    changed_items: int = 0
    matched: int = 0
    alerts: list[Alert] = field(default_factory=list)  # recorded alerts, the silenced ones too
    suppressed: int = 0
    silenced: int = 0
    outcomes: list[tuple[Item, RuleMatch, Outcome, str]] = field(default_factory=list)


class _Rollback(Exception):
    """Ends a dry run's transaction: everything it wrote is undone."""


def _backfill_allows(feed: FeedConfig, item: Item, now: datetime) -> bool:
    if feed.backfill is None:
        return False
    if feed.backfill == float("inf"):
        return True
    return item.published is not None and (now - item.published).total_seconds() <= feed.backfill


def _snippet(item: Item, match: RuleMatch) -> str:
    """A window of the summary around the first hit in it, else the summary's start."""
    text = item.summary or item.content
    start = 0
    for hit in match.hits:
        if hit.field in ("summary", "content") and item.field_text(hit.field) == text:
            start = max(0, hit.start - SNIPPET // 3)
            break
    piece = text[start : start + SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET < len(text) else "")


def ingest(
    store: IngestStore,
    feed: FeedConfig,
    state: FeedRow,
    items: Sequence[Item],
    *,
    scorer: Scorer,
    rules: Mapping[str, RuleInfo],
    routing: Routing,
    now: datetime,
    document: FeedDocument,
) -> IngestResult:
    """Record ``items`` of one successful poll and enqueue their alerts, atomically."""
    result = IngestResult()
    with store.transaction():
        _ingest(store, feed, state, items, scorer, rules, routing, now, document, result)
    return result


def preview(
    store: IngestStore,
    feed: FeedConfig,
    items: Sequence[Item],
    *,
    scorer: Scorer,
    rules: Mapping[str, RuleInfo],
    routing: Routing,
    now: datetime,
) -> IngestResult:
    """What :func:`ingest` would do with ``items``: the very same steps, then rolled back.

    The result lists the alerts a real poll would make now; the store is left as if nothing happened
    (``feedwatch run --dry-run``), down to the feed's row for a feed never polled before.
    """
    result = IngestResult()
    try:
        with store.transaction():
            state = store.ensure_feed(feed.name, feed.url)
            _ingest(store, feed, state, items, scorer, rules, routing, now, None, result)
            raise _Rollback
    except _Rollback:
        pass
    return result


def _ingest(
    store: IngestStore,
    feed: FeedConfig,
    state: FeedRow,
    items: Sequence[Item],
    scorer: Scorer,
    rules: Mapping[str, RuleInfo],
    routing: Routing,
    now: datetime,
    document: FeedDocument | None,
    result: IngestResult,
) -> None:
    first_poll = state.first_polled_at is None
    tags = frozenset(feed.tags)
    silences = store.silences(now=now)
    known = store.known_items(state.id, (i.key for i in items))
    quiet: list[Item] = []  # new items no rule matched: their rows go in together, in document order
    for item in items:
        prior_item = known.get(item.key)
        if prior_item is None:
            result.new_items += 1
            matches = scorer.score(item, feed_tags=tags)
            if not matches:
                quiet.append(item)
                continue
            _insert_quiet(store, state.id, quiet, now)  # rows keep document order, and so their ids
            item_id = store.insert_item(
                state.id, item.key, item.content_hash, item.title, item.link, item.published, now,
                summary=item.summary, content=item.content,
            )  # fmt: skip
        elif prior_item.content_hash != item.content_hash:
            _insert_quiet(store, state.id, quiet, now)
            item_id = prior_item.id
            store.update_item(item_id, item.content_hash, item.title, item.link, now)
            store.save_item_text(item_id, item.summary, item.content)
            result.changed_items += 1
            matches = scorer.score(item, feed_tags=tags)
            if not matches:
                continue
        else:
            continue
        result.matched += 1
        may_alert = not first_poll or _backfill_allows(feed, item, now)
        for match in matches:
            before = store.previous_match(item_id, match.rule_id) if prior_item else None
            store.record_match(item_id, match, now)
            # An edited item alerts only if it matches anew or its severity rose.
            if before is not None and match.severity <= before:
                _outcome(store, result, item, item_id, match, Outcome.UNCHANGED, f"edited; severity stayed {before}")
            elif not may_alert:
                why = "first poll of the feed: its backlog is recorded without alerting (see backfill)"
                _outcome(store, result, item, item_id, match, Outcome.BACKFILL, why)
            else:
                _alert_for(store, feed, item, item_id, match, rules, routing, now, result, silences)
    _insert_quiet(store, state.id, quiet, now)
    # Retention counts from the last sighting; a row inserted just now already says ``now``.
    store.touch_items(state.id, (i.key for i in items if i.key in known), now)
    if document is not None:
        store.save_document(state.id, document, now=now, first_poll=first_poll, new_items=result.new_items)


def _insert_quiet(store: IngestStore, feed_id: int, quiet: list[Item], now: datetime) -> None:
    if quiet:
        store.insert_items(feed_id, quiet, now)
        quiet.clear()


def _outcome(
    store: IngestStore,
    result: IngestResult,
    item: Item,
    item_id: int,
    match: RuleMatch,
    outcome: Outcome,
    reason: str,
    alert_id: str | None = None,
) -> None:
    store.set_outcome(item_id, match.rule_id, outcome, reason, alert_id)
    result.outcomes.append((item, match, outcome, reason))


def _alert_for(
    store: IngestStore,
    feed: FeedConfig,
    item: Item,
    item_id: int,
    match: RuleMatch,
    rules: Mapping[str, RuleInfo],
    routing: Routing,
    now: datetime,
    result: IngestResult,
    silences: Sequence[Silence] = (),
) -> None:
    cfg = routing.alerts
    canon = canonical_url(item.link)
    candidates: list[stories.StoryCandidate] = []
    if canon:
        candidates += [
            stories.StoryCandidate(s.id, s.canonical_url, s.title, s.last_seen) for s in store.stories_by_url(canon)
        ]
    since = now - timedelta(seconds=cfg.story_window)
    candidates += [
        stories.StoryCandidate(s.id, s.canonical_url, s.title, s.last_seen) for s in store.recent_stories(since)
    ]
    found = stories.find_story(
        item.title, canon, candidates, now=now, window=cfg.story_window, threshold=cfg.story_similarity
    )
    if found is None:
        story_id = store.create_story(canon, item.title, feed.name, now)
    else:
        story_id = found.id
        store.touch_story(story_id, feed.name, now)
    store.set_item_story(item_id, story_id)

    rule = rules.get(match.rule_id)
    prior = store.last_alert(match.rule_id, story_id)
    decision = alerts.decide(
        severity=match.severity,
        prior=alerts.Prior(prior.severity, prior.created_at) if prior else None,
        throttle=rule.throttle.total_seconds() if rule and rule.throttle else None,
        now=now,
    )
    if decision.action == alerts.Action.SUPPRESS:
        result.suppressed += 1
        _outcome(store, result, item, item_id, match, Outcome.THROTTLED, decision.reason)
        return
    story = store.story(story_id)
    also = tuple(f for f in (story.feeds if story else ()) if f != feed.name)
    kind = AlertKind.NEW if decision.action == alerts.Action.NEW else AlertKind.UPDATE
    alert = Alert(
        alert_id=alerts.alert_id(match.rule_id, story_id, feed.name, item.key, kind, now.isoformat()),
        kind=kind,
        rule_id=match.rule_id,
        severity=match.severity,
        score=match.score,
        title=item.title or "(untitled)",
        link=item.link,
        feed=feed.name,
        created_at=now,
        story_id=str(story_id),
        published=item.published,
        snippet=_snippet(item, match),
        description=rule.description if rule else "",
        hits=match.hits,
        thread_id=prior.thread_id if prior else None,
        also_reported_by=also,
        change=decision.reason if kind == AlertKind.UPDATE else "",
    )
    channels = alerts.route(rule.channels if rule else (), cfg.default_channels, routing.channel_floors, match.severity)
    silence = muting.find(silences, rule_id=match.rule_id, feed=feed.name, title=alert.title, now=now)
    recent = store.count_alerts(match.rule_id, now - timedelta(seconds=cfg.storm_window))
    storm = silence is None and match.severity < cfg.storm_exempt and alerts.storm_exceeded(recent, cfg.storm_limit)
    states = {
        c: OUTBOX_SILENCED
        if silence is not None
        else OUTBOX_DIGEST
        if c in routing.digest_channels
        else OUTBOX_HELD
        if storm
        else OUTBOX_PENDING
        for c in channels
    }
    store.add_alert(alert, channels, story_id=story_id, item_id=item_id, now=now, states=states)
    result.alerts.append(alert)
    outcome = Outcome.ALERTED if kind == AlertKind.NEW else Outcome.UPDATED
    reason = decision.reason
    if silence is not None:
        store.mark_silenced(alert.alert_id, silence.id)
        result.silenced += 1
        outcome, reason = (
            Outcome.SILENCED,
            f"silenced by {silence.id} ({silence.describe()}) until {silence.ends_at:%Y-%m-%d %H:%M} UTC",
        )
    elif not channels:
        outcome, reason = Outcome.SEVERITY_FLOOR, f"no channel takes {match.severity} alerts (min_severity)"
    elif storm:
        outcome = Outcome.STORM
        reason = (
            f"storm control: {recent} alerts of this rule in the last {cfg.storm_window:g}s (limit {cfg.storm_limit})"
        )
    elif all(c in routing.digest_channels for c in channels):
        outcome, reason = Outcome.DIGEST, f"{reason}; waits for the digest of {', '.join(channels)}"
    _outcome(store, result, item, item_id, match, outcome, reason, alert.alert_id)
