"""SQLite state: feeds and their health, seen items, stories, matches, alerts and the outbox.

One connection, used from one thread (the service runs store calls on a single worker thread).
WAL mode lets ``feedwatch status`` read while the daemon writes. The schema is versioned with
``PRAGMA user_version`` and migrated forward at open. Everything one poll produces is written in
one transaction (:meth:`Store.transaction`), which is what makes delivery exactly-once-in-effect.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from daemon.errors import StoreError
from daemon.models import Alert, RuleMatch, Severity, alert_from_dict, alert_to_dict, hit_to_dict

MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        current_url TEXT,
        etag TEXT,
        last_modified TEXT,
        first_polled_at TEXT,
        last_attempt_at TEXT,
        last_success_at TEXT,
        last_status INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        failing_since TEXT,
        last_error TEXT,
        next_poll_at TEXT,
        items_seen INTEGER NOT NULL DEFAULT 0,
        last_new_item_at TEXT,
        disabled INTEGER NOT NULL DEFAULT 0,
        problem_logged INTEGER NOT NULL DEFAULT 0,
        alerted_failing INTEGER NOT NULL DEFAULT 0,
        alerted_stale INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE stories (
        id INTEGER PRIMARY KEY,
        canonical_url TEXT,
        title TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        feeds TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX stories_url ON stories(canonical_url);
    CREATE INDEX stories_last_seen ON stories(last_seen);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT,
        published TEXT,
        first_seen TEXT NOT NULL,
        updated_at TEXT,
        story_id INTEGER REFERENCES stories(id) ON DELETE SET NULL,
        UNIQUE (feed_id, key)
    );
    CREATE INDEX items_first_seen ON items(first_seen);
    CREATE INDEX items_story ON items(story_id);
    CREATE TABLE matches (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        score REAL NOT NULL,
        severity INTEGER NOT NULL,
        hits TEXT NOT NULL,
        matched_at TEXT NOT NULL,
        UNIQUE (item_id, rule_id)
    );
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        story_id INTEGER,
        item_id INTEGER,
        severity INTEGER NOT NULL,
        score REAL NOT NULL,
        created_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX alerts_rule_story ON alerts(rule_id, story_id, created_at);
    CREATE INDEX alerts_created ON alerts(created_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        UNIQUE (alert_id, channel)
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: retention by last sighting. An item still in its feed must never be pruned (it would come back
    # as new and alert again), so items remember when a poll last saw them and feeds when their last
    # document was ingested; alerts get an index on item_id for the pending-delivery check.
    """
    ALTER TABLE items ADD COLUMN last_seen_at TEXT;
    UPDATE items SET last_seen_at = COALESCE(updated_at, first_seen);
    CREATE INDEX items_last_seen ON items(last_seen_at);
    ALTER TABLE feeds ADD COLUMN last_content_at TEXT;
    CREATE INDEX alerts_item ON alerts(item_id);
    """,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

OUTBOX_PENDING = "pending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_DEAD = "dead"
OUTBOX_HELD = "held"  # storm control: folded into one grouped message later
OUTBOX_DIGEST = "digest"  # waits for its digest channel's schedule
OUTBOX_FOLDED = "folded"  # delivered as part of a grouped or digest message


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class FeedState:
    id: int
    name: str
    url: str
    current_url: str | None
    etag: str | None
    last_modified: str | None
    first_polled_at: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    consecutive_failures: int
    failing_since: datetime | None
    last_error: str | None
    next_poll_at: datetime | None
    items_seen: int
    last_new_item_at: datetime | None
    disabled: bool
    problem_logged: bool
    alerted_failing: bool
    alerted_stale: bool

    @property
    def fetch_url(self) -> str:
        return self.current_url or self.url


@dataclass(frozen=True, slots=True)
class KnownItem:
    id: int
    content_hash: str
    story_id: int | None


@dataclass(frozen=True, slots=True)
class StoryRow:
    id: int
    canonical_url: str | None
    title: str
    first_seen: datetime
    last_seen: datetime
    feeds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    alert: Alert
    channel: str
    attempts: int
    story_key: str


@dataclass(frozen=True, slots=True)
class PriorAlert:
    alert_id: str
    severity: Severity
    created_at: datetime
    thread_id: str


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        current_url=row["current_url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        first_polled_at=from_iso(row["first_polled_at"]),
        last_attempt_at=from_iso(row["last_attempt_at"]),
        last_success_at=from_iso(row["last_success_at"]),
        last_status=row["last_status"],
        consecutive_failures=row["consecutive_failures"],
        failing_since=from_iso(row["failing_since"]),
        last_error=row["last_error"],
        next_poll_at=from_iso(row["next_poll_at"]),
        items_seen=row["items_seen"],
        last_new_item_at=from_iso(row["last_new_item_at"]),
        disabled=bool(row["disabled"]),
        problem_logged=bool(row["problem_logged"]),
        alerted_failing=bool(row["alerted_failing"]),
        alerted_stale=bool(row["alerted_stale"]),
    )


class Store:
    """The only code that speaks SQL."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 5.0,
        max_size: int | None = None,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"{self.path}: no database (has the daemon ever run with this config?)")
                uri = f"{self.path.absolute().as_uri()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.max_size: int | None = None
            self._no_limit = int(self.conn.execute("PRAGMA max_page_count").fetchone()[0])
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                self.set_limits(max_size=max_size, busy_timeout=busy_timeout)
                self._migrate()
            else:
                version = self.schema_version()
                if version > len(MIGRATIONS):
                    raise StoreError(f"{self.path}: schema version {version} is newer than this feedwatch")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------------

    def set_limits(self, *, max_size: int | None, busy_timeout: float) -> None:
        """Apply ``[store] max_size`` and ``busy_timeout``; also on a running store, so SIGHUP can raise a
        full database's limit. A limit below the current size holds the database at its size."""
        pages = self._no_limit
        if max_size:
            page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
            pages = max(1, max_size // page_size)
        self.conn.execute(f"PRAGMA max_page_count = {pages}")
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self.max_size = max_size

    def _error(self, exc: sqlite3.Error, doing: str = "") -> StoreError:
        """A StoreError naming the database, what was being done and, when it is full, the limit."""
        text = f"{self.path}: {doing}{exc}"
        if self.max_size and "full" in str(exc):
            text += f" (store.max_size is {_size(self.max_size)}; raise it and reload, or free disk space)"
        return StoreError(text)

    def close(self) -> None:
        self.conn.close()

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this feedwatch ({len(MIGRATIONS)}); "
                "upgrade feedwatch or restore a backup"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with self.transaction():
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any error and wraps SQLite errors."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot start a transaction: ") from exc
        try:
            yield self.conn
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error(exc, "commit failed: ") from exc

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (disk or max_page_count full, I/O error); a second
        # ROLLBACK would then raise and hide the StoreError that explains what went wrong.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("rollback_failed", path=str(self.path), error=str(exc))

    def backup(self, target: Path) -> None:
        """Online copy with SQLite's backup API (consistent while the daemon writes)."""
        try:
            dest = sqlite3.connect(target)
            with dest:
                self.conn.backup(dest)
            dest.close()
        except sqlite3.Error as exc:
            raise StoreError(f"backup to {target} failed: {exc}") from exc

    # -- meta --------------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        self._write(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # -- feeds -------------------------------------------------------------------------------

    def ensure_feed(self, name: str, url: str) -> FeedState:
        """Create the feed's row on first sight.

        A changed configured URL is a new source under an old name: its redirect target, validators and
        410 verdict are dropped, and its first poll records the backlog silently like any new feed's.
        """
        row = self.conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
        if row is None:
            self._write("INSERT INTO feeds(name, url) VALUES (?, ?)", (name, url))
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

    def update_feed(self, feed_id: int, **fields: Any) -> None:
        """Set feed columns; datetimes are stored as ISO text, booleans as 0/1."""
        if not fields:
            return
        cols = []
        values: list[Any] = []
        for key, value in fields.items():
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, bool):
                value = int(value)
            cols.append(f"{key} = ?")
            values.append(value)
        values.append(feed_id)
        self._write(f"UPDATE feeds SET {', '.join(cols)} WHERE id = ?", values)

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
    ) -> int:
        cur = self._write(
            "INSERT INTO items(feed_id, key, content_hash, title, link, published, first_seen, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (feed_id, key, content_hash, title, link, iso(published) if published else None, iso(now), iso(now)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

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

    # -- alerts and outbox -------------------------------------------------------------------

    def last_alert(self, rule_id: str, story_id: int) -> PriorAlert | None:
        """The most recent alert for (rule, story) and the id of the story's first one (its thread)."""
        rows = self.conn.execute(
            "SELECT id, severity, created_at FROM alerts WHERE rule_id = ? AND story_id = ? "
            "AND kind IN ('new', 'update') ORDER BY created_at",
            (rule_id, story_id),
        ).fetchall()
        if not rows:
            return None
        first, last = rows[0], rows[-1]
        created = from_iso(last["created_at"])
        assert created is not None
        return PriorAlert(last["id"], Severity(max(r["severity"] for r in rows)), created, first["id"])

    def count_alerts(self, rule_id: str, since: datetime) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE rule_id = ? AND created_at >= ? AND kind IN ('new', 'update')",
            (rule_id, iso(since)),
        ).fetchone()
        return int(row[0])

    def add_alert(
        self,
        alert: Alert,
        channels: Sequence[str],
        *,
        story_id: int | None,
        item_id: int | None,
        now: datetime,
        state: str = OUTBOX_PENDING,
        states: Mapping[str, str] | None = None,
    ) -> None:
        """Record an alert and queue it per channel (``states`` overrides ``state`` per channel)."""
        self._write(
            "INSERT INTO alerts(id, kind, rule_id, story_id, item_id, severity, score, created_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.alert_id,
                str(alert.kind),
                alert.rule_id,
                story_id,
                item_id,
                int(alert.severity),
                alert.score,
                iso(alert.created_at),
                json.dumps(alert_to_dict(alert)),
            ),
        )
        for channel in channels:
            self._write(
                "INSERT INTO outbox(alert_id, channel, state, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
                (alert.alert_id, channel, (states or {}).get(channel, state), iso(now), iso(now)),
            )

    def held_groups(self, state: str) -> list[tuple[str, str, datetime]]:
        """(channel, rule_id, oldest created_at) of outbox rows waiting in ``state``."""
        rows = self.conn.execute(
            "SELECT o.channel, a.rule_id, MIN(o.created_at) FROM outbox o JOIN alerts a ON a.id = o.alert_id "
            "WHERE o.state = ? GROUP BY o.channel, a.rule_id ORDER BY MIN(o.created_at)",
            (state,),
        )
        out = []
        for channel, rule_id, oldest in rows:
            when = from_iso(oldest)
            assert when is not None
            out.append((channel, rule_id, when))
        return out

    def take_held(self, state: str, channel: str, rule_id: str | None = None) -> list[Alert]:
        """The alerts waiting in ``state`` for ``channel`` (one rule or all), now marked folded."""
        sql = (
            "SELECT o.id, a.payload FROM outbox o JOIN alerts a ON a.id = o.alert_id "
            "WHERE o.state = ? AND o.channel = ?"
        )
        params: list[Any] = [state, channel]
        if rule_id is not None:
            sql += " AND a.rule_id = ?"
            params.append(rule_id)
        rows = self.conn.execute(sql + " ORDER BY o.id", params).fetchall()
        for row in rows:
            self._write("UPDATE outbox SET state = ? WHERE id = ?", (OUTBOX_FOLDED, row["id"]))
        return [alert_from_dict(json.loads(r["payload"])) for r in rows]

    def alert(self, alert_id: str) -> Alert | None:
        row = self.conn.execute("SELECT payload FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return alert_from_dict(json.loads(row[0])) if row else None

    def recent_alerts(self, limit: int = 20) -> list[Alert]:
        rows = self.conn.execute("SELECT payload FROM alerts ORDER BY created_at DESC LIMIT ?", (limit,))
        return [alert_from_dict(json.loads(r[0])) for r in rows]

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Pending deliveries whose time has come, oldest first (per-story order follows creation)."""
        rows = self.conn.execute(
            "SELECT o.id, o.channel, o.attempts, a.payload, a.story_id, a.rule_id FROM outbox o "
            "JOIN alerts a ON a.id = o.alert_id WHERE o.state = ? AND o.next_attempt_at <= ? "
            "ORDER BY o.id LIMIT ?",
            (OUTBOX_PENDING, iso(now), limit),
        )
        out = []
        for r in rows:
            story_key = f"{r['channel']}|{r['rule_id']}|{r['story_id'] if r['story_id'] is not None else r['id']}"
            out.append(
                OutboxEntry(r["id"], alert_from_dict(json.loads(r["payload"])), r["channel"], r["attempts"], story_key)
            )
        return out

    def pending_before(self, entry_id: int, channel: str, rule_id: str, story_id: int | None) -> bool:
        """Is an older delivery of the same (channel, story) still pending? Then this one must wait."""
        if story_id is None:
            return False
        row = self.conn.execute(
            "SELECT 1 FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE o.channel = ? AND a.rule_id = ? "
            "AND a.story_id = ? AND o.state = ? AND o.id < ? LIMIT 1",
            (channel, rule_id, story_id, OUTBOX_PENDING, entry_id),
        ).fetchone()
        return row is not None

    def mark_delivered(self, entry_id: int, now: datetime) -> None:
        self._write(
            "UPDATE outbox SET state = ?, delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (OUTBOX_DELIVERED, iso(now), entry_id),
        )

    def mark_failed(self, entry_id: int, error: str, next_attempt: datetime | None) -> None:
        """Schedule a retry, or (``next_attempt`` None) move the delivery to the dead letters."""
        if next_attempt is None:
            self._write(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                (OUTBOX_DEAD, error, entry_id),
            )
        else:
            self._write(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error, iso(next_attempt), entry_id),
            )

    def outbox_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        counts = {
            OUTBOX_PENDING: 0,
            OUTBOX_DELIVERED: 0,
            OUTBOX_DEAD: 0,
            OUTBOX_HELD: 0,
            OUTBOX_DIGEST: 0,
            OUTBOX_FOLDED: 0,
        }
        counts.update({r[0]: r[1] for r in rows})
        return counts

    def next_outbox_time(self) -> datetime | None:
        """When the next delivery can go: the earliest pending one not waiting behind its story's older one.

        A delivery queued behind an older one of the same (channel, rule, story) is not due at its own
        time, only once the older one is delivered; counting it would wake the worker at once, again and
        again, for as long as the older one waits out its backoff.
        """
        row = self.conn.execute(
            "SELECT MIN(o.next_attempt_at) FROM outbox o JOIN alerts a ON a.id = o.alert_id "
            "WHERE o.state = ? AND (a.story_id IS NULL OR NOT EXISTS ("
            "SELECT 1 FROM alerts b JOIN outbox p ON p.alert_id = b.id AND p.channel = o.channel "
            "WHERE b.rule_id = a.rule_id AND b.story_id = a.story_id AND p.state = ? AND p.id < o.id))",
            (OUTBOX_PENDING, OUTBOX_PENDING),
        ).fetchone()
        return from_iso(row[0]) if row and row[0] else None

    def dead_letters(self, limit: int = 50) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT o.id, o.alert_id, o.channel, o.attempts, o.last_error, a.rule_id FROM outbox o "
                "JOIN alerts a ON a.id = o.alert_id WHERE o.state = ? ORDER BY o.id LIMIT ?",
                (OUTBOX_DEAD, limit),
            )
        )

    def retry_dead(self, now: datetime) -> int:
        cur = self._write(
            "UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = ? WHERE state = ?",
            (OUTBOX_PENDING, iso(now), OUTBOX_DEAD),
        )
        return cur.rowcount

    def requeue(self, alert_id: str, channels: Sequence[str] | None, now: datetime) -> int:
        """Queue an alert again (same id, so receivers can still deduplicate)."""
        sql = "UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = ?, last_error = NULL WHERE alert_id = ?"
        params: list[Any] = [OUTBOX_PENDING, iso(now), alert_id]
        if channels:
            sql += f" AND channel IN ({','.join('?' * len(channels))})"
            params += list(channels)
        return self._write(sql, params).rowcount

    def deliveries(self, alert_id: str) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT channel, state, attempts, last_error, delivered_at FROM outbox WHERE alert_id = ? ORDER BY id",
                (alert_id,),
            )
        )


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} bytes"


class AsyncStore:
    """Runs every store call on one dedicated thread, so SQLite never blocks the event loop.

    The connection is created on that thread and only ever used there.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, max_size: int | None = None) -> None:
        self._path = path
        self._options = {"busy_timeout": busy_timeout, "max_size": max_size}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedwatch-store")
        self._store: Store | None = None

    async def open(self) -> None:
        def _open() -> Store:
            return Store(self._path, **self._options)  # type: ignore[arg-type]

        self._store = await asyncio.get_running_loop().run_in_executor(self._executor, _open)

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(store, *args, **kwargs)`` on the store thread."""
        store = self._store
        if store is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, store, *args, **kwargs)
        )

    async def aclose(self) -> None:
        if self._store is not None:
            await self.call(Store.close)
            self._store = None
        self._executor.shutdown(wait=True)
