"""Alerts and the outbox: queueing per channel, due deliveries, retries and dead letters."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from daemon.models import Alert, Severity, alert_from_dict, alert_to_dict
from daemon.store.base import StoreBase
from daemon.store.rows import (
    OUTBOX_DEAD,
    OUTBOX_DELIVERED,
    OUTBOX_DIGEST,
    OUTBOX_FOLDED,
    OUTBOX_HELD,
    OUTBOX_PENDING,
    DeadLetter,
    Delivery,
    OutboxEntry,
    PriorAlert,
    from_iso,
    iso,
)
from daemon.util.redact import redact_text


class OutboxTables(StoreBase):
    """Queries on alerts and their per-channel deliveries."""

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
            "SELECT COUNT(*) FROM alerts WHERE rule_id = ? AND created_at >= ? AND kind IN ('new', 'update') "
            "AND silence_id IS NULL",
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

    def due_outbox(
        self, now: datetime, limit: int = 100, *, channel: str | None = None, exclude: Sequence[str] = ()
    ) -> list[OutboxEntry]:
        """Pending deliveries whose time has come, oldest first (per-story order follows creation);
        only ``channel``'s when given, none of the ``exclude``d channels.
        """
        sql = (
            "SELECT o.id, o.channel, o.attempts, a.payload, a.story_id, a.rule_id FROM outbox o "
            "JOIN alerts a ON a.id = o.alert_id WHERE o.state = ? AND o.next_attempt_at <= ?"
        )
        params: list[Any] = [OUTBOX_PENDING, iso(now)]
        if channel is not None:
            sql += " AND o.channel = ?"
            params.append(channel)
        if exclude:
            sql += f" AND o.channel NOT IN ({','.join('?' * len(exclude))})"
            params += list(exclude)
        rows = self.conn.execute(sql + " ORDER BY o.id LIMIT ?", [*params, limit])
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
        self._attempt(entry_id, OUTBOX_DELIVERED, None, now)

    def _attempt(self, entry_id: int, outcome: str, error: str | None, now: datetime) -> None:
        """One line of a delivery's history (``explain`` lists them)."""
        self._write(
            "INSERT INTO delivery_attempts(outbox_id, at, outcome, error) VALUES (?, ?, ?, ?)",
            (entry_id, iso(now), outcome, error),
        )

    def mark_failed(self, entry_id: int, error: str, next_attempt: datetime | None) -> None:
        """Schedule a retry, or (``next_attempt`` None) move the delivery to the dead letters."""
        error = redact_text(error)
        self._attempt(entry_id, "retry" if next_attempt else OUTBOX_DEAD, error, datetime.now(UTC))
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

    def next_outbox_time(self, channel: str | None = None) -> datetime | None:
        """When the next delivery can go: the earliest pending one not waiting behind its story's older one.

        A delivery queued behind an older one of the same (channel, rule, story) is not due at its own
        time, only once the older one is delivered; counting it would wake the worker at once, again and
        again, for as long as the older one waits out its backoff.
        """
        row = self.conn.execute(
            "SELECT MIN(o.next_attempt_at) FROM outbox o JOIN alerts a ON a.id = o.alert_id "
            "WHERE o.state = ? AND (a.story_id IS NULL OR NOT EXISTS ("
            "SELECT 1 FROM alerts b JOIN outbox p ON p.alert_id = b.id AND p.channel = o.channel "
            "WHERE b.rule_id = a.rule_id AND b.story_id = a.story_id AND p.state = ? AND p.id < o.id))"
            + (" AND o.channel = ?" if channel is not None else ""),
            (OUTBOX_PENDING, OUTBOX_PENDING, *(() if channel is None else (channel,))),
        ).fetchone()
        return from_iso(row[0]) if row and row[0] else None

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT o.id, o.alert_id, o.channel, o.attempts, o.last_error, a.rule_id FROM outbox o "
            "JOIN alerts a ON a.id = o.alert_id WHERE o.state = ? ORDER BY o.id LIMIT ?",
            (OUTBOX_DEAD, limit),
        )
        return [DeadLetter(*row) for row in rows]

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

    def deliveries(self, alert_id: str) -> list[Delivery]:
        rows = self.conn.execute(
            "SELECT channel, state, attempts, last_error, delivered_at FROM outbox WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
        return [Delivery(*row) for row in rows]
