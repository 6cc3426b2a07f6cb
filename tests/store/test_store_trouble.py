"""Store trouble that may pass exits 1 (so systemd's Restart= retries) with the path and the cause in words."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli.exitcodes import ExitCode
from daemon.store.trouble import explain
from tests.conftest import CLI, REPO, cli_env
from tests.kit.users import as_nobody

NOBODY = 65534


def write_site(folder: Path, store: Path, extra: str = "") -> None:
    """The shipped rules and demo feed, with the store at ``store``."""
    shutil.copytree(REPO / "rules", folder / "rules")
    shutil.copytree(REPO / "seeds", folder / "seeds")
    (folder / "config.toml").write_text(
        f'[store]\npath = "{store}"\n{extra}\n[[feeds]]\nname = "demo"\nurl = "seeds/demo.xml"\nbackfill = "all"\n'
    )


def feedwatch(cwd: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=120, check=False
    )


def fill(path: Path) -> None:
    """Write zeros into ``path`` until the file system is full."""
    with path.open("wb", buffering=0) as fh:
        while True:
            try:
                fh.write(b"\0" * 65536)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user can read (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="feedwatch-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, so a full disk is a real full disk; needs root and mount rights."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class TestExitOne:
    def test_folder_not_writable_names_folder_and_user(self, open_dir: Path) -> None:
        """A store folder the user may not write: exit 1, naming the folder and the user."""
        prefix = tuple(as_nobody())
        state = open_dir / "state"
        state.mkdir(mode=0o755)
        write_site(open_dir, state / "feedwatch.db")
        out = feedwatch(open_dir, "run", "--once", prefix=prefix)
        assert out.returncode == ExitCode.DEGRADED, out.stderr
        user = "nobody" if prefix else os.environ.get("USER", "")
        assert f"directory {state} is not writable by user {user}" in out.stderr
        assert "Traceback" not in out.stderr

    def test_init_into_a_folder_not_writable_is_exit_1(self, open_dir: Path) -> None:
        """`init` into a folder the user may not write exits 1 (not a usage error), naming the folder."""
        prefix = tuple(as_nobody())
        locked = open_dir / "etc"
        locked.mkdir(mode=0o755)
        out = feedwatch(open_dir, "init", str(locked / "feedwatch"), prefix=prefix)
        assert out.returncode == ExitCode.DEGRADED, out.stderr
        assert f"cannot write into {locked / 'feedwatch'}: Permission denied" in out.stderr

    def test_disk_full_says_so(self, small_disk: Path, tmp_path: Path) -> None:
        """A full file system under the store: exit 1 with "disk full under <folder>"."""
        site = tmp_path / "site"
        site.mkdir()
        write_site(site, small_disk / "feedwatch.db")
        fill(small_disk / "filler")
        out = feedwatch(site, "run", "--once")
        assert out.returncode == ExitCode.DEGRADED, out.stderr
        assert f"disk full under {small_disk}" in out.stderr
        assert "Traceback" not in out.stderr

    def test_backup_to_a_full_disk_names_the_file_not_a_temp_file(self, small_disk: Path, tmp_path: Path) -> None:
        """`db backup` onto a full disk exits 1 naming FILE and the cause, never its temporary copy."""
        write_site(tmp_path, tmp_path / "var" / "feedwatch.db")
        assert feedwatch(tmp_path, "run", "--once").returncode == 0
        fill(small_disk / "filler")
        out = feedwatch(tmp_path, "db", "backup", str(small_disk / "copy.db"))
        assert out.returncode == ExitCode.DEGRADED, out.stderr
        assert str(small_disk / "copy.db") in out.stderr
        assert ".tmp" not in out.stderr
        assert f"disk full under {small_disk}" in out.stderr
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # nothing left behind

    def test_locked_database_says_so(self, tmp_path: Path) -> None:
        """A database another process keeps locked past busy_timeout: exit 1 saying it is locked."""
        write_site(tmp_path, tmp_path / "var" / "feedwatch.db", extra='busy_timeout = "1s"')
        assert feedwatch(tmp_path, "run", "--once").returncode == 0  # the database exists, in WAL mode
        holder = sqlite3.connect(tmp_path / "var" / "feedwatch.db", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            out = feedwatch(tmp_path, "run", "--once")
        finally:
            holder.close()
        assert out.returncode == ExitCode.DEGRADED, out.stderr
        assert "database is locked by another process for longer than [store] busy_timeout" in out.stderr
        assert str(tmp_path / "var" / "feedwatch.db") in out.stderr


class TestWords:
    @pytest.mark.parametrize(
        ("error", "words"),
        [
            (OSError(errno.ENOSPC, "No space left on device"), "disk full under"),
            (sqlite3.OperationalError("database or disk is full"), "disk full under"),
            (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
            (OSError(errno.EIO, "Input/output error"), "I/O error on the disk holding"),
            (sqlite3.OperationalError("disk I/O error"), "I/O error on the disk holding"),
            (sqlite3.DatabaseError("file is not a database"), "restore a backup"),
            (sqlite3.OperationalError("database is locked"), "busy_timeout"),
        ],
    )
    def test_cause_in_words(self, tmp_path: Path, error: Exception, words: str) -> None:
        """Each kind of store failure is named the way an operator acts on it, keeping the original text."""
        assert isinstance(error, OSError | sqlite3.Error)
        text = explain(tmp_path / "feedwatch.db", error)
        assert words in text
        assert str(error.strerror if isinstance(error, OSError) else error) in text
