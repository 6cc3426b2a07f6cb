"""The SQLite store on a real file: schema, identity lookups, atomic transactions, outbox states."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import StoreError
from daemon.models import Alert, AlertKind, FeedDocument, Severity
from daemon.store.schema import MIGRATIONS
from daemon.store.sqlite import Store

NOW = datetime(2020, 9, 28, 12, 0, tzinfo=UTC)


def make_alert(alert_id: str = "fw-1", story: str = "1") -> Alert:
    return Alert(
        alert_id=alert_id,
        kind=AlertKind.NEW,
        rule_id="r",
        severity=Severity.WARNING,
        score=3.0,
        title="t",
        link=None,
        feed="f",
        created_at=NOW,
        story_id=story,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "fw.db")


class TestSchema:
    def test_wal_and_version(self, store: Store) -> None:
        """A new database is in WAL mode at the latest schema version."""
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version() == len(MIGRATIONS)

    def test_page_cache_is_small(self, store: Store) -> None:
        """The daemon's connection keeps a 512 KiB page cache, not SQLite's 2 MiB default."""
        assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == -512

    def test_reopen_keeps_data(self, tmp_path: Path) -> None:
        """Data survives closing and reopening (migrations do not run twice)."""
        s = Store(tmp_path / "fw.db")
        s.ensure_feed("demo", "file:///x")
        s.close()
        again = Store(tmp_path / "fw.db")
        assert [f.name for f in again.feeds()] == ["demo"]

    def test_newer_schema_refused(self, tmp_path: Path) -> None:
        """A database from a newer feedwatch is refused with a clear message, not modified."""
        conn = sqlite3.connect(tmp_path / "fw.db")
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        with pytest.raises(StoreError, match="newer than this feedwatch"):
            Store(tmp_path / "fw.db")

    def test_readonly_missing_database(self, tmp_path: Path) -> None:
        """Opening a missing database read-only says so instead of creating it."""
        with pytest.raises(StoreError, match="no database"):
            Store(tmp_path / "none.db", readonly=True)
        assert not (tmp_path / "none.db").exists()


class TestItems:
    def test_known_items_only_returns_asked_keys(self, store: Store) -> None:
        """Lookups are per feed and per key (a guid in another feed is a different item)."""
        a = store.ensure_feed("a", "file:///a")
        b = store.ensure_feed("b", "file:///b")
        store.insert_item(a.id, "id:1", "h", "t", None, None, NOW)
        assert set(store.known_items(a.id, ["id:1", "id:2"])) == {"id:1"}
        assert store.known_items(b.id, ["id:1"]) == {}

    def test_transaction_rolls_back(self, store: Store) -> None:
        """An exception inside a transaction leaves nothing behind."""
        feed = store.ensure_feed("a", "file:///a")

        def crash() -> None:
            with store.transaction():
                store.insert_item(feed.id, "id:1", "h", "t", None, None, NOW)
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            crash()
        assert store.known_items(feed.id, ["id:1"]) == {}

    def test_prune_in_batches(self, store: Store) -> None:
        """Retention deletes items unseen for long in bounded batches; the latest document's items stay."""
        feed = store.ensure_feed("a", "file:///a")
        for i in range(5):
            store.insert_item(feed.id, f"id:{i}", "h", "t", None, None, NOW - timedelta(days=100))
        store.insert_item(feed.id, "id:new", "h", "t", None, None, NOW)
        store.save_document(feed.id, FeedDocument(None, None), now=NOW, first_poll=False, new_items=0)
        assert store.prune(NOW - timedelta(days=90), batch=3) == 3
        assert store.prune(NOW - timedelta(days=90), batch=3) == 2
        assert store.count_items() == 1


class TestOutbox:
    def test_lifecycle(self, store: Store) -> None:
        """pending → retry later → delivered; a permanent failure becomes a dead letter, retryable."""
        store.add_alert(make_alert("fw-1"), ["console", "email"], story_id=None, item_id=None, now=NOW)
        due = store.due_outbox(NOW)
        assert [(e.alert.alert_id, e.channel) for e in due] == [("fw-1", "console"), ("fw-1", "email")]
        store.mark_delivered(due[0].id, NOW)
        store.mark_failed(due[1].id, "421 try later", NOW + timedelta(minutes=5))
        assert store.due_outbox(NOW) == []
        assert [e.attempts for e in store.due_outbox(NOW + timedelta(minutes=6))] == [1]
        store.mark_failed(due[1].id, "550 no such user", None)
        counts = store.outbox_counts()
        assert (counts["pending"], counts["delivered"], counts["dead"]) == (0, 1, 1)
        assert store.retry_dead(NOW) == 1
        assert store.outbox_counts()["pending"] == 1

    def test_alert_round_trip(self, store: Store) -> None:
        """An alert stored in the outbox comes back equal."""
        alert = make_alert()
        store.add_alert(alert, ["console"], story_id=None, item_id=None, now=NOW)
        assert store.alert("fw-1") == alert

    def test_full_database_is_a_store_error(self, tmp_path: Path) -> None:
        """With max_size reached, writes fail with StoreError (not a crash) and earlier data stays."""
        small = Store(tmp_path / "small.db", max_size=256 * 1024)
        feed = small.ensure_feed("a", "file:///a")

        def fill() -> None:
            for i in range(10_000):
                small.insert_item(feed.id, f"id:{i}", "h" * 32, "t" * 200, None, None, NOW)

        with pytest.raises(StoreError, match="full"):
            fill()
        assert small.known_items(feed.id, ["id:0"])


class TestBackup:
    def test_online_backup(self, store: Store, tmp_path: Path) -> None:
        """backup() writes a consistent copy that opens as a store."""
        store.ensure_feed("demo", "file:///x")
        target = tmp_path / "copy.db"
        store.backup(target)
        assert [f.name for f in Store(target, readonly=True).feeds()] == ["demo"]


class TestPermissions:
    def test_new_store_is_private(self, tmp_path: Path) -> None:
        """A database created outside systemd is 0600 (WAL files too) in a var/ folder made 0700."""
        import os
        import stat

        old = os.umask(0o022)
        try:
            s = Store(tmp_path / "var" / "feedwatch.db")
            s.set_meta("probe", 1)
            s.backup(tmp_path / "var" / "copy.db")
            s.close()
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
        for path in (tmp_path / "var").iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name

    def test_existing_folder_is_left_alone(self, tmp_path: Path) -> None:
        """A folder that already exists (a StateDirectory= of systemd, a shared mount) keeps its mode."""
        import stat

        folder = tmp_path / "state"
        folder.mkdir(mode=0o750)
        folder.chmod(0o750)
        Store(folder / "feedwatch.db").close()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
