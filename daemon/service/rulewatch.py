"""Noticing rule edits: the rules folder's ``*.toml`` files are looked at once a second.

A scan of a rules folder (a dozen files) costs tens of microseconds, so polling is nearly free, and it
sees every way a file can change: in-place writes, an editor's atomic rename, a symlink swapped
under it (Kubernetes ConfigMaps), a network or bind-mounted folder where inotify reports nothing.
An inotify watcher would also cost the daemon ~2 MB of resident memory for its libraries.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["SCAN_INTERVAL", "SETTLE", "changed_files", "snapshot", "watch"]

SCAN_INTERVAL = 1.0  # seconds between scans; a save is picked up within about SCAN_INTERVAL + SETTLE
SETTLE = 0.3  # editors write in bursts: reload once the files stop changing for this long

# path -> (mtime_ns, ctime_ns, size, inode); ctime and inode catch a rename over the file, and a
# rewrite that keeps the size and lands in the same mtime tick.
Snapshot = dict[str, tuple[int, int, int, int]]


def snapshot(rules_dir: Path) -> Snapshot | None:
    """Every ``*.toml`` file under ``rules_dir`` (links followed) with its stat; None when the folder is gone."""
    found: Snapshot = {}
    try:
        pending = [os.fspath(rules_dir)]
        os.stat(pending[0])
    except OSError:
        return None
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:  # a subfolder removed or unreadable mid-scan: the next scan sees the outcome
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    if not entry.name.startswith("."):  # editors' and ConfigMaps' dot folders
                        pending.append(entry.path)
                elif entry.name.endswith(".toml"):
                    st = os.stat(entry.path)
                    found[entry.path] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
            except OSError:  # removed between listing and stat: absent, as it will be next time
                continue
    return found


def changed_files(before: Snapshot | None, after: Snapshot | None) -> list[str]:
    """Names of the files added, removed or changed between two snapshots, sorted."""
    old, new = before or {}, after or {}
    paths = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
    return sorted({Path(p).name for p in paths})


async def watch(
    rules_dir: Path,
    stop: asyncio.Event,
    on_change: Callable[[list[str]], Awaitable[None]],
    on_missing: Callable[[], None],
    *,
    interval: float = SCAN_INTERVAL,
    settle: float = SETTLE,
) -> None:
    """Call ``on_change(file names)`` after each settled change, until ``stop`` is set.

    ``on_missing`` is called when the folder is (or becomes) absent, once per absence; the folder
    appearing again counts as a change.
    """
    seen = snapshot(rules_dir)
    if seen is None:
        on_missing()
    while not await _stopped(stop, interval):
        now = snapshot(rules_dir)
        if now == seen:
            continue
        while not await _stopped(stop, settle):  # let a burst of writes finish
            later = snapshot(rules_dir)
            if later == now:
                break
            now = later
        else:
            return
        names = changed_files(seen, now)
        if now is None and seen is not None:
            on_missing()
        seen = now
        if names:
            await on_change(names)


async def _stopped(stop: asyncio.Event, delay: float) -> bool:
    await asyncio.sleep(delay)  # a stopping daemon cancels this task; the flag covers a stop that raced it
    return stop.is_set()
