"""Ingest with literal items: one poll's items through score, story and alert policy into a real store."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.alerting.ingest import IngestResult, Routing, ingest
from daemon.config.model import AlertConfig, FeedConfig
from daemon.models import OUTBOX_PENDING, FeedDocument, Item, Severity
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.store.sqlite import Store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULES = """
[rule.quake]
description = "Earthquakes"
threshold = 1.0

[rule.quake.groups.events]
terms = ["earthquake", "aftershock"]
"""


def item(key: str, title: str, summary: str = "") -> Item:
    return Item(feed="wire", key=key, title=title, link=f"https://wire.example/{key}", summary=summary)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "fw.db")
    yield s
    s.close()


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "quake.toml").write_text(RULES, encoding="utf-8")
    report = load_rules(tmp_path / "rules")
    assert not report.errors
    return Matcher(report.ruleset)


def run(store: Store, matcher: Matcher, feed: FeedConfig, items: list[Item], now: datetime = NOW) -> IngestResult:
    state = store.ensure_feed(feed.name, feed.url)
    return ingest(
        store,
        feed,
        state,
        items,
        scorer=matcher,
        rules={r.id: r for r in matcher.ruleset.rules},
        routing=Routing(AlertConfig(), {"console": Severity.INFO}),
        now=now,
        document=FeedDocument(etag='"v1"', last_modified=None),
    )


class TestIngest:
    def test_matching_item_is_alerted_once_and_queued_per_channel(self, store: Store, matcher: Matcher) -> None:
        """With backfill, a matching item becomes one alert queued for the default channel; others are only seen."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss", backfill=math.inf)
        result = run(store, matcher, feed, [item("a", "Earthquake shakes the coast"), item("b", "Budget talks")])
        assert (result.new_items, result.matched, len(result.alerts)) == (2, 1, 1)
        assert result.alerts[0].rule_id == "quake"
        assert store.outbox_counts()[OUTBOX_PENDING] == 1
        state = store.feed("wire")
        assert state is not None
        assert (state.etag, state.items_seen, state.first_polled_at) == ('"v1"', 2, NOW)

    def test_items_are_stored_in_document_order_with_their_text(self, store: Store, matcher: Matcher) -> None:
        """Matched or not, new items get rows numbered in document order, with their summary and content kept."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss", backfill=math.inf)
        titles = ["Budget talks", "Rain", "Earthquake shakes the coast", "Markets", "Aftershock felt", "Ferry"]
        items = [Item("wire", f"k{n}", t, None, f"summary {n}", f"content {n}") for n, t in enumerate(titles)]
        result = run(store, matcher, feed, items)
        assert (result.new_items, result.matched) == (6, 2)
        rows = [store.item(n) for n in range(1, 7)]
        assert [(r.key, r.title, r.summary, r.content) for r in rows if r is not None] == [
            (i.key, i.title, i.summary, i.content) for i in items
        ]
        edited = Item("wire", "k1", "Rain", None, "summary 1, edited", "")
        again = run(
            store, matcher, feed, [edited, Item("wire", "k9", "Snow", None, "cold", "")], NOW + timedelta(hours=1)
        )
        assert (again.new_items, again.changed_items) == (1, 1)
        changed, added = store.item(2), store.item(7)
        assert changed is not None
        assert (changed.summary, changed.content) == ("summary 1, edited", "")
        assert added is not None
        assert (added.key, added.summary) == ("k9", "cold")

    def test_every_item_of_the_document_is_marked_seen_now(self, store: Store, matcher: Matcher) -> None:
        """Items seen again get the poll's time as their last sighting; a new item's first sighting is it."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss")
        run(store, matcher, feed, [item("a", "Rain"), item("b", "Snow")])
        now, later = (
            NOW.isoformat(timespec="microseconds"),
            (NOW + timedelta(hours=2)).isoformat(timespec="microseconds"),
        )
        run(store, matcher, feed, [item("b", "Snow"), item("c", "Hail")], NOW + timedelta(hours=2))
        rows = store.conn.execute("SELECT key, first_seen, last_seen_at FROM items ORDER BY key").fetchall()
        assert [tuple(r) for r in rows] == [("a", now, now), ("b", now, later), ("c", later, later)]

    def test_same_items_again_alert_nothing(self, store: Store, matcher: Matcher) -> None:
        """A second poll with the same items records nothing new and queues no second alert."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss", backfill=math.inf)
        items = [item("a", "Earthquake shakes the coast")]
        run(store, matcher, feed, items)
        again = run(store, matcher, feed, items, NOW + timedelta(minutes=5))
        assert (again.new_items, again.changed_items, again.alerts) == (0, 0, [])
        assert store.outbox_counts()[OUTBOX_PENDING] == 1

    def test_first_poll_without_backfill_records_the_backlog_silently(self, store: Store, matcher: Matcher) -> None:
        """The first poll of a feed without backfill stores and matches its items but alerts none."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss")
        result = run(store, matcher, feed, [item("a", "Earthquake shakes the coast")])
        assert (result.new_items, result.matched, result.alerts) == (1, 1, [])
        assert store.outbox_counts()[OUTBOX_PENDING] == 0

    def test_an_edit_that_adds_a_match_alerts(self, store: Store, matcher: Matcher) -> None:
        """An edited item is scored again; a match it did not have before alerts."""
        feed = FeedConfig(name="wire", url="https://wire.example/rss", backfill=math.inf)
        run(store, matcher, feed, [item("a", "Coast quiet")])
        edited = run(store, matcher, feed, [item("a", "Coast quiet", "then an aftershock")], NOW + timedelta(hours=1))
        assert (edited.changed_items, len(edited.alerts)) == (1, 1)
