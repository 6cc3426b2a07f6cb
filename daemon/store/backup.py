"""Checking a backup copy of the database: the SQL `feedwatch db backup` needs besides the backup API."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import StoreError
from daemon.models import OUTBOX_PENDING


@dataclass(frozen=True, slots=True)
class CopyInfo:
    """What a backup copy holds: its size, schema version and row counts."""

    size: int
    schema: int
    items: int
    alerts: int
    pending: int


def finish_copy(path: Path) -> CopyInfo:
    """Make the copy one self-contained file and prove it opens: integrity check and counts.

    The backup API copies the source's WAL flag; a WAL-mode copy would grow ``-wal``/``-shm`` files
    beside it the first time anything opens it, so it is switched to a rollback journal (the daemon
    turns WAL back on when it opens a restored copy).
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"backup copy failed its integrity check: {check}")
            schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
            items = int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
            alerts = int(conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
            pending = int(conn.execute("SELECT COUNT(*) FROM outbox WHERE state = ?", (OUTBOX_PENDING,)).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"backup copy cannot be read back: {exc}") from exc
    return CopyInfo(size=path.stat().st_size, schema=schema, items=items, alerts=alerts, pending=pending)
