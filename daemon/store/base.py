"""The store's connection: opening, limits, migrations, transactions, backup and the meta table."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon.errors import StoreError
from daemon.store import schema
from daemon.store.schema import MIGRATIONS
from daemon.store.trouble import store_error
from daemon.util.durations import format_size
from daemon.util.startup import LazyLogger

ITEM_TEXT_MAX = 32_000  # characters of summary and of content kept per item for explain
_AMPLE_FREE = 256 << 20  # bytes free on the disk above which "full" cannot be the disk
PAGE_CACHE_KIB = 512  # SQLite's page cache per connection, in KiB

log = LazyLogger("daemon.store.sqlite")  # structlog loads only if the store logs


def private_folder(folder: Path, *, for_file: Path) -> None:
    """Create ``folder`` and missing parents 0700; existing folders (a systemd StateDirectory=) keep theirs."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        for each in reversed(missing):
            each.mkdir(mode=0o700, exist_ok=True)
            os.chmod(each, 0o700)  # mkdir's mode is cut by the umask
    except OSError as exc:
        raise store_error(for_file, exc, doing="cannot create its folder: ") from exc


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 (folders we make 0700) unless it exists; SQLite gives its -wal and
    -shm files the database's mode."""
    private_folder(path.parent, for_file=path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise store_error(path, exc, doing="cannot create: ") from exc


class StoreBase:
    """One SQLite connection in WAL mode, migrated forward at open; the table groups build on it."""

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
                private_file(self.path)
                self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.max_size: int | None = None
            self._no_limit = int(self.conn.execute("PRAGMA max_page_count").fetchone()[0])
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                # Lookups hit the OS's file cache just as well; SQLite's 2 MiB default would be a
                # daemon's biggest single buffer, kept for good after the first busy cycle.
                self.conn.execute(f"PRAGMA cache_size = {-PAGE_CACHE_KIB}")
                self.set_limits(max_size=max_size, busy_timeout=busy_timeout)
                self._migrate()
            else:
                version = self.schema_version()
                if version > len(MIGRATIONS):
                    raise StoreError(f"{self.path}: schema version {version} is newer than this feedwatch")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc

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
        if self.max_size and "full" in str(exc) and self._at_max_size():
            return StoreError(
                f"{self.path}: {doing}{exc} (store.max_size is {format_size(self.max_size)}; raise it and reload, "
                "or free disk space)"
            )
        return store_error(self.path, exc, doing=doing)

    def _at_max_size(self) -> bool:
        """Whether the database has reached ``[store] max_size`` (else a "full" error means the disk)."""
        try:
            pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
            limit = int(self.conn.execute("PRAGMA max_page_count").fetchone()[0])
        except sqlite3.Error:
            return True
        if pages >= limit - 1:
            return True
        # A batched transaction needing many new pages fails, and is rolled back, well below the limit;
        # with ample room on the disk, "full" can only mean the limit.
        try:
            return shutil.disk_usage(self.path.parent).free > _AMPLE_FREE
        except OSError:
            return False

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
                schema.apply(self.conn, version)

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
            private_file(target)
            dest = sqlite3.connect(target)
            with dest:
                self.conn.backup(dest)
            dest.close()
        except sqlite3.Error as exc:
            raise store_error(target, exc, doing="backup failed: ") from exc

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
