"""`feedwatch status [--json]`: daemon, feeds, rules, outbox and recent alerts."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from daemon.cli.common import show
from daemon.cli.exitcodes import ExitCode
from daemon.config.load import find_config, load_config
from daemon.config.model import Config
from daemon.errors import ConfigError, StoreError
from daemon.util.startup import no_gc

HEALTH_EXIT = {"ok": ExitCode.OK, "degraded": ExitCode.DEGRADED, "no daemon": ExitCode.NO_DAEMON}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("status", help="daemon, feeds, rules, outbox and recent alerts (exit 0/1/2/4)")
    st.add_argument("--json", action="store_true", help="one JSON document on stdout")
    st.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    with no_gc():  # importing the store: see daemon.util.startup
        from daemon.service import status
        from daemon.store.sqlite import Store

    path = find_config(args.config)
    config: Config | None
    error: str | None = None
    try:
        config = load_config(path, secrets=False)
        database = config.store.path
    except ConfigError as exc:
        # A broken edit must not blind the operator while the daemon runs on with its last good config.
        found = status.running_store(Path(path))
        if found is None:
            raise
        config, database, error = None, found, str(exc)
    now = datetime.now(UTC)
    try:
        store = Store(database, readonly=True)
    except StoreError as exc:
        report = {"daemon": {"running": False}, "error": str(exc)}
        show(json.dumps(report, indent=2) if args.json else f"feedwatch: {exc}\nNOT RUNNING")
        return ExitCode.NO_DAEMON
    try:
        report = status.collect(store, config, now, config_error=error)
    finally:
        store.close()
    show(json.dumps(report, indent=2) if args.json else status.render(report))
    return HEALTH_EXIT[status.health(report)]
