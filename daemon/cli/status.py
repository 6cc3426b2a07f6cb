"""`feedwatch status [--json]`: daemon, feeds, rules, outbox and recent alerts."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode
from daemon.errors import StoreError

HEALTH_EXIT = {"ok": ExitCode.OK, "degraded": ExitCode.DEGRADED, "no daemon": ExitCode.NO_DAEMON}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("status", help="daemon, feeds, rules, outbox and recent alerts (exit 0/1/2/4)")
    st.add_argument("--json", action="store_true", help="one JSON document")
    st.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from daemon.service import status
    from daemon.store.sqlite import Store

    config = load(args, secrets=False)
    now = datetime.now(UTC)
    try:
        store = Store(config.store.path, readonly=True)
    except StoreError as exc:
        report = {"daemon": {"running": False}, "error": str(exc)}
        show(json.dumps(report, indent=2) if args.json else f"feedwatch: {exc}\nNOT RUNNING")
        return ExitCode.NO_DAEMON
    try:
        report = status.collect(store, config, now)
    finally:
        store.close()
    show(json.dumps(report, indent=2) if args.json else status.render(report))
    return HEALTH_EXIT[status.health(report)]
