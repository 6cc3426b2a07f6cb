"""One daemon per store: an exclusive flock on ``<database>.lock``, which holds the daemon's pid.

Two daemons on one database would poll every feed twice and race each other's deliveries. The
kernel drops an flock when its holder dies, however it dies (SIGKILL, OOM), so a stale file never
blocks a restart: only a live holder counts, and the pid in the file is just for people.

The file's first line is the pid, the second the config the daemon runs with, so ``status`` can
name the daemon, and find its store when the config on disk no longer loads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import DaemonRunningError
from daemon.store.base import private_folder
from daemon.store.trouble import store_error

ACQUIRE_WAIT = 2.0  # seconds: rides out a `status` that holds the lock shared for a moment


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@dataclass(frozen=True, slots=True)
class Holder:
    """The daemon holding a store's lock, as its lock file names it."""

    pid: int | None
    config: Path | None
    lock: Path


class StoreLock:
    """The exclusive lock of a running daemon; :meth:`release` at shutdown (the kernel does on death)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path, *, config: Path | None = None, wait: float = ACQUIRE_WAIT) -> StoreLock:
        """Lock ``database`` for this process, or raise DaemonRunningError naming the holder's pid."""
        path = lock_path(database)
        private_folder(path.parent, for_file=database)
        try:
            # O_CLOEXEC: a helper process we start must not keep the lock alive after we die.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise store_error(path, exc, doing="cannot create the daemon's lock file: ") from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = holder_of(database)
                    pid = holder.pid if holder else None
                    raise DaemonRunningError(
                        f"another feedwatch daemon (pid {pid or 'unknown'}) is running on {database}; "
                        f"stop it first, or give this one another [store] path (lock: {path})",
                        pid=pid,
                    ) from None
                time.sleep(0.05)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n{config or ''}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise store_error(path, exc, doing="cannot write the daemon's lock file: ") from exc
        return cls(path, fd)

    def release(self) -> None:
        """Empty the file and let go; the file stays (removing it would race a daemon opening it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing our only descriptor drops the flock


def holder_of(database: Path) -> Holder | None:
    """The live daemon holding ``database``'s lock, or None when none does (or the file is unreadable)."""
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            # Shared and non-blocking: if we get it, nobody holds it exclusively. Let go at once; a
            # daemon starting this very moment waits ACQUIRE_WAIT for us.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path, fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path, fd: int) -> Holder:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    lines = text.splitlines()
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    config = Path(lines[1]) if len(lines) > 1 and lines[1].strip() else None
    return Holder(pid=pid, config=config, lock=path)
