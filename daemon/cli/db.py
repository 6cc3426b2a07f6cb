"""`feedwatch db backup FILE`: a consistent copy of the database, safe while the daemon runs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from daemon.cli.common import load
from daemon.cli.exitcodes import ExitCode
from daemon.errors import StoreError
from daemon.store.backup import CopyInfo, finish_copy
from daemon.store.sqlite import Store
from daemon.util.durations import format_size


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database maintenance")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")
    actions.required = True
    backup = actions.add_parser("backup", help="online copy of the database (safe while the daemon runs)")
    backup.add_argument("file", metavar="FILE", help="where to write the copy")
    backup.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    backup.set_defaults(func=cmd_backup)


def backup(source: Path, target: Path, *, busy_timeout: float) -> CopyInfo:
    """Copy ``source`` into ``target`` through a temporary file beside it, then rename it into place."""
    # Read-only: a backup must never migrate or otherwise write the live database.
    store = Store(source, readonly=True, busy_timeout=busy_timeout)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)  # mkstemp made it 0600: the copy holds everything the database holds
    tmp = Path(tmp_name)
    try:
        store.backup(tmp)
        info = finish_copy(tmp)
        os.replace(tmp, target)
    except StoreError as exc:
        _remove_copy(tmp)
        # The temporary copy is ours; the operator only knows the FILE they named.
        raise StoreError(str(exc).replace(str(tmp), str(target))) from exc
    except BaseException:
        _remove_copy(tmp)
        raise
    finally:
        store.close()
    return info


def _remove_copy(tmp: Path) -> None:
    for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def cmd_backup(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    source = config.store.path
    target = Path(args.file).expanduser().absolute()
    if target.resolve() == source.resolve():
        print(f"feedwatch: error: {target} is the live database itself", file=sys.stderr)
        return ExitCode.USAGE
    if target.is_dir():
        print(f"feedwatch: error: {target} is a folder; name the backup file", file=sys.stderr)
        return ExitCode.USAGE
    if target.exists() and not args.force:
        print(f"feedwatch: error: {target} already exists (use --force to overwrite)", file=sys.stderr)
        return ExitCode.USAGE
    if not target.parent.is_dir():
        print(f"feedwatch: error: folder {target.parent} does not exist", file=sys.stderr)
        return ExitCode.USAGE
    try:
        info = backup(source, target, busy_timeout=config.store.busy_timeout)
    except OSError as exc:
        print(f"feedwatch: error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.DEGRADED
    print(
        f"backup: {target} ({format_size(info.size)}, schema {info.schema}): {info.items} items, "
        f"{info.alerts} alerts, {info.pending} queued for delivery"
    )
    return ExitCode.OK
