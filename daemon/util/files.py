"""Rewriting an operator's file so that it keeps its owner, group and mode.

``feedwatch feeds add`` is often run with sudo on a config that belongs to root:feedwatch 0640; a
plain write-and-rename would leave it root:root 0600 and lock the service out of its own config.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_keeping_owner(path: Path, text: str, *, validate: Callable[[Path], None] | None = None) -> None:
    """Replace ``path``'s content with ``text`` atomically, keeping owner, group and mode.

    ``validate(tmp)`` runs on the new content before it replaces the old; whatever it raises leaves
    the file untouched. The temporary file is a dot file ending in ``.tmp`` beside the target, so
    no ``*.toml`` glob (feeds.d, rules/) ever picks it up. When the owner cannot be kept (we are
    not root and the file is someone else's, or the folder is not ours to write), the content is
    validated the same way and then written in place, which keeps the inode and everything on it.
    """
    target = path.resolve()  # a symlinked config stays a symlink; its target gets the new content
    info = target.stat()
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except PermissionError:
        _validate_elsewhere(target, text, validate)
        _write_in_place(target, text)
        return
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
            kept = _chown(out.fileno(), info)
        if validate is not None:
            validate(tmp)
        if not kept:
            tmp.unlink()
            _write_in_place(target, text)
            return
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _chown(fd: int, info: os.stat_result) -> bool:
    """Give the new file the old one's owner and group; False when that is not allowed."""
    if (info.st_uid, info.st_gid) == (os.fstat(fd).st_uid, os.fstat(fd).st_gid):
        return True
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except PermissionError:
        return False
    return True


def _validate_elsewhere(target: Path, text: str, validate: Callable[[Path], None] | None) -> None:
    """Validate through a private temporary copy when the target's folder is not writable for us."""
    if validate is None:
        return
    with tempfile.TemporaryDirectory(prefix="feedwatch-") as scratch:
        copy = Path(scratch) / target.name
        copy.write_text(text, encoding="utf-8")
        validate(copy)


def _write_in_place(target: Path, text: str) -> None:
    with target.open("r+", encoding="utf-8") as out:
        out.write(text)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())
