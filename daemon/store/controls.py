"""Tables behind the operator controls: silences, per-rule decisions, item text, delivery attempts.

Everything ``feedwatch silence``, ``explain``, ``alerts list`` filters and ``outbox list`` read, and
the Slack threads a bot-token channel replies in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from daemon.errors import StoreError
from daemon.models import Alert, Silence, alert_from_dict
from daemon.store.base import ITEM_TEXT_MAX, StoreBase
from daemon.store.rows import from_iso as _dt
from daemon.store.rows import iso as _iso

SCHEMA_SILENCES = 3  # the migration that added silences and the other control tables


class AmbiguousId(StoreError):
    """A prefix that names several rows: the command should ask for more characters (a usage error)."""


ALERT_COLUMNS = "id, kind, rule_id, story_id, item_id, severity, score, created_at, silence_id"


@dataclass(frozen=True, slots=True)
class ItemRow:
    """A stored item, as `alerts show` and `explain` read it."""

    id: int
    feed: str
    key: str
    title: str
    link: str | None
    published: datetime | None
    first_seen: datetime
    story_id: int | None
    summary: str | None
    content: str | None


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A stored match of an item."""

    rule_id: str
    score: float
    severity: int
    hits: str
    matched_at: datetime
    outcome: str | None
    reason: str | None
    alert_id: str | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One delivery attempt of an alert."""

    channel: str
    at: datetime
    outcome: str
    error: str | None


def _silence(row: sqlite3.Row) -> Silence:
    starts, ends = _dt(row["starts_at"]), _dt(row["ends_at"])
    assert starts is not None
    assert ends is not None
    return Silence(
        id=row["id"],
        rule=row["rule"],
        starts_at=starts,
        ends_at=ends,
        feed=row["feed"],
        match=row["match"],
        comment=row["comment"],
        created_by=row["created_by"],
    )


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as recorded, with where it came from and the silence that held it, if any."""

    alert: Alert
    item_id: int | None
    silence_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One delivery waiting (or dead) in the outbox, with its alert's rule, kind and severity."""

    id: int
    alert_id: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    rule_id: str
    kind: str
    severity: int


def _stored(row: sqlite3.Row) -> StoredAlert:
    return StoredAlert(alert_from_dict(json.loads(row["payload"])), row["item_id"], row["silence_id"])


class ControlTables(StoreBase):
    """Queries behind the operator controls."""

    # -- silences ----------------------------------------------------------------------------

    def add_silence(self, silence: Silence, now: datetime) -> None:
        self._write(
            "INSERT INTO silences(id, rule, feed, match, created_at, starts_at, ends_at, comment, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                silence.id,
                silence.rule,
                silence.feed,
                silence.match,
                _iso(now),
                _iso(silence.starts_at),
                _iso(silence.ends_at),
                silence.comment,
                silence.created_by,
            ),
        )

    def silences(self, *, now: datetime | None = None) -> list[Silence]:
        """Every silence (or, given ``now``, those not yet ended), the latest-ending first."""
        if self.schema_version() < SCHEMA_SILENCES:
            return []  # read-only on a database an older daemon still runs: it has none
        if now is None:
            rows = self.conn.execute("SELECT * FROM silences ORDER BY ends_at DESC")
        else:
            rows = self.conn.execute("SELECT * FROM silences WHERE ends_at > ? ORDER BY ends_at DESC", (_iso(now),))
        return [_silence(r) for r in rows]

    def silence(self, prefix: str) -> Silence | None:
        """The silence whose id is or starts with ``prefix``; StoreError when several do."""
        rows = self.conn.execute(
            "SELECT * FROM silences WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2",
            (prefix, _like_prefix(prefix)),
        ).fetchall()
        exact = [r for r in rows if r["id"] == prefix]
        if exact:
            return _silence(exact[0])
        if len(rows) > 1:
            raise AmbiguousId(f"silence id {prefix!r} is ambiguous: give more characters")
        return _silence(rows[0]) if rows else None

    def expire_silence(self, silence_id: str, now: datetime) -> None:
        self._write(
            "UPDATE silences SET ends_at = MIN(ends_at, ?), expired_at = ? WHERE id = ?",
            (_iso(now), _iso(now), silence_id),
        )

    def mark_silenced(self, alert_id: str, silence_id: str) -> None:
        self._write("UPDATE alerts SET silence_id = ? WHERE id = ?", (silence_id, alert_id))

    # -- feeds -------------------------------------------------------------------------------

    def enable_feed(self, name: str, now: datetime) -> str | None:
        """Lift a stop recorded for the feed (410 Gone); the reason it had, or None when it was not stopped."""
        row = self.conn.execute("SELECT disabled, last_error FROM feeds WHERE name = ?", (name,)).fetchone()
        if row is None or not row["disabled"]:
            return None
        self._write(
            "UPDATE feeds SET disabled = 0, consecutive_failures = 0, failing_since = NULL, alerted_failing = 0, "
            "next_poll_at = ? WHERE name = ?",
            (_iso(now), name),
        )
        return str(row["last_error"] or "disabled")

    # -- decisions and item text -------------------------------------------------------------

    def set_outcome(self, item_id: int, rule_id: str, outcome: str, reason: str, alert_id: str | None) -> None:
        self._write(
            "UPDATE matches SET outcome = ?, reason = ?, alert_id = ? WHERE item_id = ? AND rule_id = ?",
            (outcome, reason, alert_id, item_id, rule_id),
        )

    def save_item_text(self, item_id: int, summary: str, content: str) -> None:
        self._write(
            "UPDATE items SET summary = ?, content = ? WHERE id = ?",
            (summary[:ITEM_TEXT_MAX], content[:ITEM_TEXT_MAX], item_id),
        )

    def item(self, item_id: int) -> ItemRow | None:
        row = self.conn.execute(
            "SELECT i.*, f.name AS feed FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = ?", (item_id,)
        ).fetchone()
        return _item(row) if row else None

    def items_by_link(self, link: str) -> list[ItemRow]:
        rows = self.conn.execute(
            "SELECT i.*, f.name AS feed FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.link = ? ORDER BY i.id",
            (link,),
        )
        return [_item(r) for r in rows]

    def matches_of(self, item_id: int) -> list[MatchRow]:
        rows = self.conn.execute(
            "SELECT rule_id, score, severity, hits, matched_at, outcome, reason, alert_id FROM matches "
            "WHERE item_id = ? ORDER BY rule_id",
            (item_id,),
        )
        out = []
        for r in rows:
            matched = _dt(r["matched_at"])
            assert matched is not None
            row = (r["rule_id"], r["score"], r["severity"], r["hits"], matched, r["outcome"], r["reason"])
            out.append(MatchRow(*row, r["alert_id"]))
        return out

    # -- alerts: lookups and filters ---------------------------------------------------------

    def alert_row(self, prefix: str) -> StoredAlert | None:
        """The alert whose id is or starts with ``prefix``; StoreError when several do."""
        rows: list[sqlite3.Row] = self.conn.execute(
            f"SELECT {ALERT_COLUMNS}, payload FROM alerts WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2",
            (prefix, _like_prefix(prefix)),
        ).fetchall()
        exact = [r for r in rows if r["id"] == prefix]
        if exact:
            return _stored(exact[0])
        if len(rows) > 1:
            raise AmbiguousId(f"alert id {prefix!r} is ambiguous: give more characters")
        return _stored(rows[0]) if rows else None

    def alerts_of_item(self, item_id: int) -> list[StoredAlert]:
        rows = self.conn.execute(
            f"SELECT {ALERT_COLUMNS}, payload FROM alerts WHERE item_id = ? ORDER BY created_at", (item_id,)
        )
        return [_stored(r) for r in rows]

    def find_alerts(
        self,
        *,
        limit: int,
        rule: str | None = None,
        since: datetime | None = None,
        severity: int | None = None,
        status: str | None = None,
    ) -> list[StoredAlert]:
        """Newest first; ``status`` is a delivery state some channel of the alert is in (``silenced`` too)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if rule is not None:
            where.append("a.rule_id = ?")
            params.append(rule)
        if since is not None:
            where.append("a.created_at >= ?")
            params.append(_iso(since))
        if severity is not None:
            where.append("a.severity >= ?")
            params.append(severity)
        if status is not None:
            where.append("EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id AND o.state = ?)")
            params.append(status)
        params.append(limit)
        sql = (
            f"SELECT a.payload, a.item_id, a.silence_id FROM alerts a WHERE {' AND '.join(where)} "
            "ORDER BY a.created_at DESC LIMIT ?"
        )
        return [_stored(r) for r in self.conn.execute(sql, params)]

    def outbox_rows(self, *, states: Sequence[str], limit: int) -> list[OutboxRow]:
        marks = ",".join("?" * len(states))
        rows = self.conn.execute(
            "SELECT o.id, o.alert_id, o.channel, o.state, o.attempts, o.next_attempt_at, o.last_error, "
            f"o.created_at, a.rule_id, a.kind, a.severity FROM outbox o JOIN alerts a ON a.id = o.alert_id "
            f"WHERE o.state IN ({marks}) ORDER BY o.id LIMIT ?",
            (*states, limit),
        )
        return [OutboxRow(*row) for row in rows]

    # -- delivery attempts -------------------------------------------------------------------

    def attempts(self, alert_id: str) -> list[AttemptRow]:
        rows = self.conn.execute(
            "SELECT o.channel, d.at, d.outcome, d.error FROM delivery_attempts d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE o.alert_id = ? ORDER BY d.id",
            (alert_id,),
        )
        out = []
        for r in rows:
            at = _dt(r["at"])
            assert at is not None
            out.append(AttemptRow(r["channel"], at, r["outcome"], r["error"]))
        return out

    # -- Slack threads -----------------------------------------------------------------------

    def slack_thread(self, channel: str, thread_id: str) -> tuple[str, str] | None:
        """(Slack channel id, message ts) of the story's first message on ``channel``."""
        row = self.conn.execute(
            "SELECT slack_channel, ts FROM slack_threads WHERE channel = ? AND thread_id = ?", (channel, thread_id)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def save_slack_thread(self, channel: str, thread_id: str, slack_channel: str, ts: str, now: datetime) -> None:
        self._write(
            "INSERT OR IGNORE INTO slack_threads(channel, thread_id, slack_channel, ts, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (channel, thread_id, slack_channel, ts, _iso(now)),
        )


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _item(row: sqlite3.Row) -> ItemRow:
    first = _dt(row["first_seen"])
    assert first is not None
    return ItemRow(
        id=row["id"],
        feed=row["feed"],
        key=row["key"],
        title=row["title"],
        link=row["link"],
        published=_dt(row["published"]),
        first_seen=first,
        story_id=row["story_id"],
        summary=row["summary"],
        content=row["content"],
    )
