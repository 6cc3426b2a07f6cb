"""Store failures in words an operator acts on: which path, and what to do about it.

SQLite says "unable to open database file" for a missing folder, a folder the service may not
write to and a read-only file system alike; this module looks at the path to tell them apart.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import sqlite3
from pathlib import Path

from daemon.errors import StoreError


def store_error(path: Path, exc: sqlite3.Error | OSError, *, doing: str = "") -> StoreError:
    """A StoreError for ``path`` whose message says the cause in plain words and keeps SQLite's text."""
    return StoreError(f"{path}: {doing}{explain(path, exc)}")


def explain(path: Path, exc: sqlite3.Error | OSError) -> str:
    raw = str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    text = raw.lower()
    if code == errno.ENOSPC or "disk is full" in text or "database or disk is full" in text:
        return f"disk full under {_existing(path.parent)} ({_free(path.parent)} free) [{raw}]"
    if code == errno.EROFS or "read-only file system" in text:
        return (
            f"{_existing(path.parent)} is on a read-only file system; under systemd only the unit's "
            f"StateDirectory= (/var/lib/feedwatch) is writable [{raw}]"
        )
    if "database is locked" in text or "database table is locked" in text:
        return f"database is locked by another process for longer than [store] busy_timeout [{raw}]"
    if "disk i/o error" in text or code == errno.EIO:
        return f"I/O error on the disk holding {path} (the kernel log, `dmesg`, says more) [{raw}]"
    if "not a database" in text or "malformed" in text:
        return f"not a feedwatch database, or a damaged one: restore a backup (docs/operations.md) [{raw}]"
    if code in (errno.EACCES, errno.EPERM) or "unable to open" in text or "readonly database" in text:
        return _access(path, raw)
    return raw


def _access(path: Path, raw: str) -> str:
    """Why ``path`` cannot be opened for writing: a missing folder, a folder or file we may not write."""
    user = _user()
    folder = _existing(path.parent)
    if folder != path.parent and not os.access(folder, os.W_OK):
        return f"directory {path.parent} does not exist and {folder} is not writable by user {user} [{raw}]"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"directory {folder} is not writable by user {user} (owner {_owner(folder)}) [{raw}]"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable by user {user} (owner {_owner(path)}) [{raw}]"
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if extra.exists() and not os.access(extra, os.W_OK):
            return f"{extra} is not writable by user {user} (owner {_owner(extra)}); chown it to {user} [{raw}]"
    return raw


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _free(folder: Path) -> str:
    try:
        free = shutil.disk_usage(_existing(folder)).free
    except OSError:
        return "unknown"
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if free >= factor:
            return f"{free / factor:.1f} {unit}"
    return f"{free} bytes"


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _owner(path: Path) -> str:
    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (KeyError, OSError):
        return "unknown"
