"""`feedwatch db backup FILE`: an online, self-contained, verified copy of the database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.store.sqlite import Store
from daemon.util.durations import format_size
from tests.conftest import CLI, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.process import Daemon, running_site, write_site


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config whose database exists (schema only, as after a first start)."""
    (tmp_path / "config.toml").write_text('[store]\npath = "var/feedwatch.db"\n')
    Store(tmp_path / "var" / "feedwatch.db").close()
    return tmp_path


class TestBackupCommand:
    def test_refuses_to_overwrite_without_force(self, site: Path) -> None:
        """An existing FILE is left alone (exit 2) unless --force, which replaces it with a valid copy."""
        target = site / "copy.db"
        target.write_text("keep me")
        out = feedwatch(site, "db", "backup", str(target))
        assert out.returncode == 2
        assert "already exists (use --force" in out.stderr
        assert target.read_text() == "keep me"

        forced = feedwatch(site, "db", "backup", "--force", str(target))
        assert forced.returncode == 0, forced.stderr
        store = Store(target, readonly=True)
        assert store.schema_version() >= 1
        store.close()
        assert [p.name for p in site.iterdir() if p.name.startswith(".copy.db")] == []  # no temporary left

    def test_copy_is_one_private_file(self, site: Path) -> None:
        """The copy is mode 0600, in rollback-journal mode, and opening it grows no -wal/-shm files."""
        target = site / "copy.db"
        assert feedwatch(site, "db", "backup", str(target)).returncode == 0
        assert target.stat().st_mode & 0o777 == 0o600
        conn = sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
        assert sorted(p.name for p in site.iterdir() if p.name.startswith("copy.db")) == ["copy.db"]

    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("var/feedwatch.db", "is the live database itself"),
            ("missing/copy.db", "does not exist"),
            ("var", "is a folder"),
        ],
    )
    def test_bad_targets_exit_2(self, site: Path, target: str, message: str) -> None:
        """The live database, a missing folder or a folder as FILE are refused with exit 2 and a reason."""
        out = feedwatch(site, "db", "backup", target)
        assert out.returncode == 2
        assert message in out.stderr

    def test_no_database_exit_1(self, tmp_path: Path) -> None:
        """Without a database to copy (store trouble, not a usage error), the command says so and exits 1."""
        (tmp_path / "config.toml").write_text('[store]\npath = "var/feedwatch.db"\n')
        out = feedwatch(tmp_path, "db", "backup", "copy.db")
        assert out.returncode == 1
        assert "no database" in out.stderr
        assert not (tmp_path / "copy.db").exists()
        assert not (tmp_path / "var").exists()

    @pytest.mark.parametrize(
        ("size", "shown"),
        [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (5 * 1024**2, "5 MiB"), (3 << 30, "3 GiB")],
    )
    def test_format_size(self, size: int, shown: str) -> None:
        """Sizes print in the largest binary unit with one decimal at most."""
        assert format_size(size) == shown


@pytest.fixture
def busy(tmp_path: Path, httpserver: HTTPServer) -> Iterator[tuple[Daemon, FeedServer]]:
    """A running daemon polling a feed with two matching and one quiet item."""
    feed = FeedServer(httpserver, "/wire.xml", etags=False)
    feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
    feed.add("q2", "Volcano watchers report an earthquake swarm under Beta glacier")
    feed.add("n1", "Harbour festival draws record crowds")
    write_site(tmp_path, feed_url=feed.url)
    with running_site(tmp_path) as daemon:
        yield daemon, feed


class TestBackupWhileRunning:
    @pytest.mark.slow
    def test_online_copy_has_the_data(self, busy: tuple[Daemon, FeedServer]) -> None:
        """A backup taken while the daemon polls and writes opens on its own and holds its items and alerts."""
        daemon, feed = busy
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: len(daemon.alerts()) == 2, "two alerts")
        feed.add("q3", "Earthquake drill empties schools across the province")  # keeps the daemon writing

        out = daemon.cli("db", "backup", "copy.db")
        assert out.returncode == 0, out.stderr
        copy = daemon.folder / "copy.db"
        assert f"backup: {copy} (" in out.stdout
        store = Store(copy, readonly=True)
        try:
            items, alerts = store.count_items(), len(store.recent_alerts(100))
            assert store.feed("wire") is not None
        finally:
            store.close()
        assert items >= 3
        assert alerts >= 2
        assert f": {items} items, {alerts} alerts, " in out.stdout

        # The daemon never noticed: still running, still alerting, status healthy.
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        daemon.wait_until(lambda: len(daemon.alerts()) == 3, "the alert for the item added during the backup")
        status = daemon.cli("status", "--json")
        assert status.returncode == 0, status.stdout
        assert json.loads(status.stdout)["daemon"]["running"] is True
