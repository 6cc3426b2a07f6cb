"""Feeds (with their health), seen items, their matches and stories."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from daemon.models import FeedDocument, FeedHealth, Item, RuleMatch, Severity, hit_to_dict
from daemon.store.base import ITEM_TEXT_MAX, StoreBase
from daemon.store.rows import (
    OUTBOX_DIGEST,
    OUTBOX_HELD,
    OUTBOX_PENDING,
    FeedState,
    KnownItem,
    StoryRow,
    from_iso,
    iso,
)
from daemon.util.redact import redact_text, redact_url


def _iso_or_none(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_url=row["current_url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        first_polled_at=from_iso(row["first_polled_at"]),
        next_poll_at=from_iso(row["next_poll_at"]),
        items_seen=row["items_seen"],
        problem_logged=bool(row["problem_logged"]),
        health=FeedHealth(
            consecutive_failures=row["consecutive_failures"],
            last_attempt=from_iso(row["last_attempt_at"]),
            last_success=from_iso(row["last_success_at"]),
            last_status=row["last_status"],
            last_error=row["last_error"],
            failing_since=from_iso(row["failing_since"]),
            last_new_item=from_iso(row["last_new_item_at"]),
            alerted_failing=bool(row["alerted_failing"]),
            alerted_stale=bool(row["alerted_stale"]),
            disabled=bool(row["disabled"]),
        ),
    )


_INSERT_ITEM = (
    "INSERT INTO items(feed_id, key, content_hash, title, link, published, first_seen, last_seen_at, summary, content) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class FeedTables(StoreBase):
    """Queries on feeds, items, matches and stories."""

    # -- feeds -------------------------------------------------------------------------------

    def ensure_feed(self, name: str, url: str) -> FeedState:
        """Create the feed's row on first sight.

        A changed configured URL is a new source under an old name: its redirect target, validators and
        410 verdict are dropped, and its first poll records the backlog silently like any new feed's.
        """
        url = redact_url(url)  # the store never holds a credential; the config has the real URL
        row = self.conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
        if row is None:
            self._write("INSERT INTO feeds(name, url) VALUES (?, ?)", (name, url))
        elif redact_url(row["url"]) == url and row["url"] != url:
            self._write("UPDATE feeds SET url = ? WHERE id = ?", (url, row["id"]))  # stored before redaction
        elif row["url"] != url:
            self._write(
                "UPDATE feeds SET url = ?, current_url = NULL, etag = NULL, last_modified = NULL, "
                "disabled = 0, first_polled_at = NULL WHERE id = ?",
                (url, row["id"]),
            )
        state = self.feed(name)
        assert state is not None
        return state

    def feed(self, name: str) -> FeedState | None:
        row = self.conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
        return _feed_state(row) if row else None

    def feeds(self) -> list[FeedState]:
        return [_feed_state(r) for r in self.conn.execute("SELECT * FROM feeds ORDER BY name")]

    def save_poll_outcome(
        self,
        feed_id: int,
        health: FeedHealth,
        *,
        next_poll_at: datetime | None,
        revalidated: FeedDocument | None = None,
    ) -> None:
        """A poll's verdict on its feed: its health after the poll and when it is polled next.

        ``revalidated``: a 304's validators and redirect target (a 304 may carry a fresh ETag; keeping
        the old one would cost a full download next time). Its document is unchanged, so no content time.
        """
        if revalidated is not None:
            self._write(
                "UPDATE feeds SET etag = ?, last_modified = ?, current_url = COALESCE(?, current_url) WHERE id = ?",
                (
                    revalidated.etag,
                    revalidated.last_modified,
                    redact_url(revalidated.current_url) if revalidated.current_url else None,
                    feed_id,
                ),
            )
        self._write(
            "UPDATE feeds SET consecutive_failures = ?, last_attempt_at = ?, last_success_at = ?, last_status = ?, "
            "last_error = ?, failing_since = ?, last_new_item_at = ?, alerted_failing = ?, alerted_stale = ?, "
            "disabled = ?, next_poll_at = ? WHERE id = ?",
            (
                health.consecutive_failures,
                _iso_or_none(health.last_attempt),
                _iso_or_none(health.last_success),
                health.last_status,
                redact_text(health.last_error) if health.last_error else None,
                _iso_or_none(health.failing_since),
                _iso_or_none(health.last_new_item),
                int(health.alerted_failing),
                int(health.alerted_stale),
                int(health.disabled),
                _iso_or_none(next_poll_at),
                feed_id,
            ),
        )

    def save_document(
        self, feed_id: int, document: FeedDocument, *, now: datetime, first_poll: bool, new_items: int
    ) -> None:
        """Record a fetched document on its feed, in the transaction that stores its items.

        Its validators (so the next conditional GET is answered 304 only once its items are stored), its
        time as the feed's latest content (retention keeps that document's items), and on the first poll
        and when new items came, when that was.
        """
        sets = ["etag = ?", "last_modified = ?", "last_content_at = ?"]
        values: list[Any] = [document.etag, document.last_modified, iso(now)]
        if document.current_url:
            sets.append("current_url = ?")
            values.append(redact_url(document.current_url))
        if document.problem_logged:
            sets.append("problem_logged = 1")
        if first_poll:
            sets.append("first_polled_at = ?")
            values.append(iso(now))
        if new_items:
            sets += ["last_new_item_at = ?", "items_seen = items_seen + ?"]
            values += [iso(now), new_items]
        self._write(f"UPDATE feeds SET {', '.join(sets)} WHERE id = ?", (*values, feed_id))

    # -- items -------------------------------------------------------------------------------

    def known_items(self, feed_id: int, keys: Iterable[str]) -> dict[str, KnownItem]:
        """Look up only the keys of this poll: memory does not grow with the size of the store."""
        out: dict[str, KnownItem] = {}
        key_list = list(keys)
        for start in range(0, len(key_list), 500):
            chunk = key_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT id, key, content_hash, story_id FROM items WHERE feed_id = ? AND key IN ({marks})",
                (feed_id, *chunk),
            ):
                out[row["key"]] = KnownItem(row["id"], row["content_hash"], row["story_id"])
        return out

    def insert_item(
        self,
        feed_id: int,
        key: str,
        content_hash: str,
        title: str,
        link: str | None,
        published: datetime | None,
        now: datetime,
        *,
        summary: str | None = None,
        content: str | None = None,
    ) -> int:
        """A new item's row; its text (cut at ITEM_TEXT_MAX) in the same statement when given."""
        seen = iso(now)
        cur = self._write(
            _INSERT_ITEM,
            (
                feed_id, key, content_hash, title, link, iso(published) if published else None, seen, seen,
                None if summary is None else summary[:ITEM_TEXT_MAX],
                None if content is None else content[:ITEM_TEXT_MAX],
            ),
        )  # fmt: skip
        assert cur.lastrowid is not None
        return cur.lastrowid

    def insert_items(self, feed_id: int, items: Sequence[Item], now: datetime) -> None:
        """New items' rows with their text, by one statement run for each (rows numbered in this order)."""
        seen = iso(now)
        rows = [
            (
                feed_id, i.key, i.content_hash, i.title, i.link, iso(i.published) if i.published else None, seen, seen,
                i.summary[:ITEM_TEXT_MAX], i.content[:ITEM_TEXT_MAX],
            )
            for i in items
        ]  # fmt: skip
        try:
            self.conn.executemany(_INSERT_ITEM, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def update_item(self, item_id: int, content_hash: str, title: str, link: str | None, now: datetime) -> None:
        self._write(
            "UPDATE items SET content_hash = ?, title = ?, link = ?, updated_at = ? WHERE id = ?",
            (content_hash, title, link, iso(now), item_id),
        )

    def set_item_story(self, item_id: int, story_id: int) -> None:
        self._write("UPDATE items SET story_id = ? WHERE id = ?", (story_id, item_id))

    def previous_match(self, item_id: int, rule_id: str) -> Severity | None:
        row = self.conn.execute(
            "SELECT severity FROM matches WHERE item_id = ? AND rule_id = ?", (item_id, rule_id)
        ).fetchone()
        return Severity(row[0]) if row else None

    def record_match(self, item_id: int, match: RuleMatch, now: datetime) -> None:
        self._write(
            "INSERT INTO matches(item_id, rule_id, score, severity, hits, matched_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(item_id, rule_id) DO UPDATE SET score = excluded.score, severity = excluded.severity, "
            "hits = excluded.hits, matched_at = excluded.matched_at",
            (
                item_id,
                match.rule_id,
                match.score,
                int(match.severity),
                json.dumps([hit_to_dict(h) for h in match.hits]),
                iso(now),
            ),
        )

    def touch_items(self, feed_id: int, keys: Iterable[str], now: datetime) -> None:
        """Mark items as present in the document polled ``now`` (retention counts from the last sighting)."""
        key_list = list(keys)
        for start in range(0, len(key_list), 500):
            chunk = key_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._write(
                f"UPDATE items SET last_seen_at = ? WHERE feed_id = ? AND key IN ({marks})",
                (iso(now), feed_id, *chunk),
            )

    def recent_published(self, feed_id: int, limit: int = 100) -> list[datetime]:
        """Publication times of the feed's newest stored items (for ``interval = "auto"`` after a 304)."""
        rows = self.conn.execute(
            "SELECT published FROM items WHERE feed_id = ? AND published IS NOT NULL ORDER BY published DESC LIMIT ?",
            (feed_id, limit),
        )
        return [t for (text,) in rows if (t := from_iso(text)) is not None]

    def count_items(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def prune(self, before: datetime, batch: int = 1000) -> int:
        """Delete up to ``batch`` items last seen in their feed before ``before``; how many went.

        Never an item of its feed's latest document (``last_seen_at`` equals the feed's
        ``last_content_at``, however old: a feed answering 304 for months still carries it, and pruning
        it would make it new again), never one of a feed whose latest document is unknown, and never one
        whose alert still waits for delivery. Their matches go with them; alerts keep their own copy of
        everything they show and forget the item id, so a later item reusing the id is not mistaken for it.
        """
        with self.transaction():
            ids = [
                row[0]
                for row in self.conn.execute(
                    "SELECT i.id FROM items i JOIN feeds f ON f.id = i.feed_id "
                    "WHERE i.last_seen_at < ? AND i.last_seen_at < f.last_content_at AND NOT EXISTS ("
                    "SELECT 1 FROM alerts a JOIN outbox o ON o.alert_id = a.id "
                    "WHERE a.item_id = i.id AND o.state IN (?, ?, ?)) "
                    "ORDER BY i.last_seen_at LIMIT ?",
                    (iso(before), OUTBOX_PENDING, OUTBOX_HELD, OUTBOX_DIGEST, batch),
                )
            ]
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._write(f"UPDATE alerts SET item_id = NULL WHERE item_id IN ({marks})", chunk)
                deleted += self._write(f"DELETE FROM items WHERE id IN ({marks})", chunk).rowcount
        return deleted

    # -- stories -----------------------------------------------------------------------------

    def stories_by_url(self, canonical: str) -> list[StoryRow]:
        rows = self.conn.execute("SELECT * FROM stories WHERE canonical_url = ?", (canonical,))
        return [self._story(r) for r in rows]

    def recent_stories(self, since: datetime, limit: int = 5000) -> list[StoryRow]:
        rows = self.conn.execute(
            "SELECT * FROM stories WHERE last_seen >= ? ORDER BY last_seen DESC LIMIT ?", (iso(since), limit)
        )
        return [self._story(r) for r in rows]

    def story(self, story_id: int) -> StoryRow | None:
        row = self.conn.execute("SELECT * FROM stories WHERE id = ?", (story_id,)).fetchone()
        return self._story(row) if row else None

    @staticmethod
    def _story(row: sqlite3.Row) -> StoryRow:
        first = from_iso(row["first_seen"])
        last = from_iso(row["last_seen"])
        assert first is not None
        assert last is not None
        return StoryRow(row["id"], row["canonical_url"], row["title"], first, last, tuple(json.loads(row["feeds"])))

    def create_story(self, canonical: str | None, title: str, feed: str, now: datetime) -> int:
        cur = self._write(
            "INSERT INTO stories(canonical_url, title, first_seen, last_seen, feeds) VALUES (?, ?, ?, ?, ?)",
            (canonical, title, iso(now), iso(now), json.dumps([feed])),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def touch_story(self, story_id: int, feed: str, now: datetime) -> None:
        story = self.story(story_id)
        if story is None:
            return
        feeds = list(story.feeds)
        if feed not in feeds:
            feeds.append(feed)
        self._write(
            "UPDATE stories SET last_seen = ?, feeds = ? WHERE id = ?",
            (iso(now), json.dumps(feeds), story_id),
        )
