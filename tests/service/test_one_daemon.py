"""One daemon per store: the lock file beside the database, what `status` reads from it, stale locks."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.cli.exitcodes import ExitCode
from daemon.errors import DaemonRunningError
from daemon.service.status import running_store
from daemon.store.lock import StoreLock, holder_of, lock_path
from tests.kit.feeds import FeedServer
from tests.kit.process import Daemon, running_site, write_site


@pytest.fixture
def daemon(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Daemon]:
    """A site with one alerting feed on a loopback server, and its daemon (not yet started)."""
    feed = FeedServer(httpserver, "/wire.xml", etags=False)
    feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
    write_site(tmp_path, feed_url=feed.url)
    with running_site(tmp_path) as d:
        yield d


class TestStoreLock:
    def test_second_lock_names_the_holder(self, tmp_path: Path) -> None:
        """While one holder has the lock, a second acquire fails naming its pid; after release it succeeds."""
        db = tmp_path / "var" / "feedwatch.db"
        first = StoreLock.acquire(db, config=tmp_path / "config.toml")
        try:
            with pytest.raises(DaemonRunningError, match=rf"pid {os.getpid()}\) is running on .*feedwatch\.db"):
                StoreLock.acquire(db, wait=0.1)
            holder = holder_of(db)
            assert holder is not None
            assert (holder.pid, holder.config) == (os.getpid(), tmp_path / "config.toml")
        finally:
            first.release()
        assert holder_of(db) is None
        StoreLock.acquire(db, wait=0.1).release()

    def test_stale_file_without_holder_does_not_count(self, tmp_path: Path) -> None:
        """A lock file left with a pid in it but no live holder neither blocks nor names a daemon."""
        db = tmp_path / "feedwatch.db"
        lock_path(db).write_text("999999\n/etc/feedwatch/config.toml\n")
        assert holder_of(db) is None
        StoreLock.acquire(db, wait=0.1).release()


class TestOneDaemonPerStore:
    def test_second_run_is_refused_naming_the_pid(self, daemon: Daemon) -> None:
        """A second `run` (and `run --once`) on the same database exits 1 naming the running daemon's pid."""
        daemon.wait_ready(daemon.start())
        for argv in (["run"], ["run", "--once"]):
            second = daemon.cli(*argv)
            assert second.returncode == ExitCode.DEGRADED, second.stderr
            assert f"another feedwatch daemon (pid {daemon.pid}) is running on" in second.stderr
            assert "Traceback" not in second.stderr
        assert daemon.proc is not None
        assert daemon.proc.poll() is None  # the first one never noticed

    def test_status_shows_the_running_pid(self, daemon: Daemon) -> None:
        """status names the pid that holds the store's lock."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: daemon.cli("status").returncode == 0, "a healthy status")
        report = json.loads(daemon.cli("status", "--json").stdout)
        assert report["daemon"]["running"] is True
        assert report["daemon"]["pid"] == daemon.pid
        assert report["daemon"]["holds_lock"] is True
        assert f"pid {daemon.pid}" in daemon.cli("status").stdout

    def test_sigkill_leaves_no_blocking_lock(self, daemon: Daemon) -> None:
        """After a real SIGKILL the lock file remains but status says not running and a restart gets READY."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: daemon.cli("status").returncode == 0, "a heartbeat")
        killed = daemon.pid
        os.kill(killed, signal.SIGKILL)
        assert daemon.wait_exit(10) == -signal.SIGKILL
        assert lock_path(daemon.db).read_text().startswith(f"{killed}\n")  # stale content, no holder
        after = daemon.cli("status", "--json")
        assert after.returncode == ExitCode.NO_DAEMON  # fresh heartbeat, but nobody holds the lock
        assert json.loads(after.stdout)["daemon"]["running"] is False

        daemon.wait_ready(daemon.start(), timeout=15)
        assert daemon.pid != killed
        holder = holder_of(daemon.db)
        assert holder is not None
        assert holder.pid == daemon.pid


class TestStatusWithBrokenConfig:
    def test_reports_running_daemon_and_config_error(self, daemon: Daemon) -> None:
        """Config broken while the daemon runs: status still shows daemon, feeds, outbox and the error; exit 1."""
        daemon.wait_ready(daemon.start())
        daemon.wait_until(lambda: len(daemon.alerts()) == 1, "the first alert")
        daemon.wait_until(lambda: daemon.cli("status").returncode == 0, "a healthy status")
        config = daemon.folder / "config.toml"
        config.write_text(config.read_text().replace('interval = "2s"', 'interval = "2s'))  # unterminated string

        out = daemon.cli("status")
        assert out.returncode == ExitCode.DEGRADED, out.stdout + out.stderr
        assert "CONFIG ERROR" in out.stdout
        assert "config.toml" in out.stdout
        assert f"running  pid {daemon.pid}" in out.stdout
        assert "wire" in out.stdout  # the feeds section, from the store
        assert "outbox  pending" in out.stdout

        report = json.loads(daemon.cli("status", "--json").stdout)
        assert "TOML" in report["config_error"]
        assert report["daemon"]["running"] is True
        assert [f["name"] for f in report["feeds"]] == ["wire"]
        assert report["outbox"]["delivered"] >= 1

    def test_found_only_for_the_daemon_of_this_config(self, daemon: Daemon, tmp_path: Path) -> None:
        """The lock leads only to a daemon running with this config file, not one running with another."""
        daemon.wait_ready(daemon.start())
        assert running_store(daemon.folder / "config.toml") == daemon.db
        other = tmp_path / "other"
        other.mkdir()
        (other / "config.toml").write_text('[store]\npath = "../var/feedwatch.db"\n[broken\n')
        assert running_store(other / "config.toml") is None

    def test_broken_config_and_no_daemon_is_a_config_error(self, tmp_path: Path) -> None:
        """With no daemon to report on, a broken config is what it is: exit 2 naming the file."""
        (tmp_path / "config.toml").write_text("[store\n")
        out = Daemon(tmp_path, notify=None).cli("status")  # type: ignore[arg-type]
        assert out.returncode == ExitCode.USAGE
        assert "config.toml" in out.stderr


class TestNoRules:
    def test_empty_rules_folder_is_fatal_at_start(self, tmp_path: Path) -> None:
        """`run` and `check` with a rules folder holding no rule exit 2 naming the folder."""
        (tmp_path / "rules").mkdir()
        (tmp_path / "config.toml").write_text('[store]\npath = "var/feedwatch.db"\n')
        site = Daemon(tmp_path, notify=None)  # type: ignore[arg-type]
        for argv in (["run", "--once"], ["run"], ["check"]):
            out = site.cli(*argv)
            assert out.returncode == ExitCode.USAGE, (argv, out.stderr)
            assert f"{tmp_path / 'rules'}: no rules" in out.stderr
        assert not (tmp_path / "var" / "feedwatch.db").exists()
