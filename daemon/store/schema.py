"""The SQLite schema as forward migrations, versioned with ``PRAGMA user_version``.

Each migration is a list of statements run in order, so a statement that itself contains ";" (a trigger
body, a string literal) stays whole.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: initial schema
    (
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
        )
        """,
        """
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            canonical_url TEXT,
            title TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            feeds TEXT NOT NULL DEFAULT '[]'
        )
        """,
        "CREATE INDEX stories_url ON stories(canonical_url)",
        "CREATE INDEX stories_last_seen ON stories(last_seen)",
        """
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
        )
        """,
        "CREATE INDEX items_first_seen ON items(first_seen)",
        "CREATE INDEX items_story ON items(story_id)",
        """
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            rule_id TEXT NOT NULL,
            score REAL NOT NULL,
            severity INTEGER NOT NULL,
            hits TEXT NOT NULL,
            matched_at TEXT NOT NULL,
            UNIQUE (item_id, rule_id)
        )
        """,
        """
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
        )
        """,
        "CREATE INDEX alerts_rule_story ON alerts(rule_id, story_id, created_at)",
        "CREATE INDEX alerts_created ON alerts(created_at)",
        """
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
        )
        """,
        "CREATE INDEX outbox_due ON outbox(state, next_attempt_at)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 2: retention by last sighting. An item still in its feed must never be pruned (it would come back
    # as new and alert again), so items remember when a poll last saw them and feeds when their last
    # document was ingested; alerts get an index on item_id for the pending-delivery check.
    (
        "ALTER TABLE items ADD COLUMN last_seen_at TEXT",
        "UPDATE items SET last_seen_at = COALESCE(updated_at, first_seen)",
        "CREATE INDEX items_last_seen ON items(last_seen_at)",
        "ALTER TABLE feeds ADD COLUMN last_content_at TEXT",
        "CREATE INDEX alerts_item ON alerts(item_id)",
    ),
    # 3: operator controls: silences; what the alert policy decided per rule, and the text an item was
    # scored on (explain); each delivery attempt; the Slack message a story's thread hangs on.
    (
        """
        CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            rule TEXT NOT NULL,
            feed TEXT,
            match TEXT,
            created_at TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '',
            expired_at TEXT
        )
        """,
        "CREATE INDEX silences_ends ON silences(ends_at)",
        "ALTER TABLE alerts ADD COLUMN silence_id TEXT",
        # What the alert policy did with each rule's match: explain reads it back.
        "ALTER TABLE matches ADD COLUMN outcome TEXT",
        "ALTER TABLE matches ADD COLUMN reason TEXT",
        "ALTER TABLE matches ADD COLUMN alert_id TEXT",
        # The text an item was scored on, so explain can say why the other rules did not fire.
        "ALTER TABLE items ADD COLUMN summary TEXT",
        "ALTER TABLE items ADD COLUMN content TEXT",
        "CREATE INDEX items_link ON items(link)",
        """
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT
        )
        """,
        "CREATE INDEX delivery_attempts_outbox ON delivery_attempts(outbox_id)",
        """
        CREATE TABLE slack_threads (
            channel TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            slack_channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (channel, thread_id)
        )
        """,
    ),
)


def apply(conn: sqlite3.Connection, version: int) -> None:
    """Run migration ``version`` (1-based) and record it; the caller holds the transaction."""
    for statement in MIGRATIONS[version - 1]:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
