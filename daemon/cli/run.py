"""`feedwatch run [--once]`: the daemon, or one poll-score-deliver cycle."""

from __future__ import annotations

import argparse
import asyncio
import sys

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode
from daemon.service.log import setup_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the daemon (or one poll cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, then exit")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="poll and score every feed once, print what would alert; send and record nothing",
    )
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    from daemon.service.app import Service

    config = load(args)
    setup_logging(args.log_level or config.log_level)
    service = Service(config)
    if args.once:
        left = asyncio.run(service.run_once())
        if left:
            return ExitCode.QUEUED
        if service.dead:
            # A dead letter is an alert nobody received: a cron job running --once must notice.
            plural = "delivery" if service.dead == 1 else "deliveries"
            show(f"feedwatch: {service.dead} {plural} failed for good; see `feedwatch outbox list`", file=sys.stderr)
            return ExitCode.DEGRADED
        return ExitCode.OK
    asyncio.run(service.run_forever())
    return ExitCode.OK


def _dry_run(args: argparse.Namespace) -> int:
    """One previewing cycle (``--once`` or not); channel secrets are not needed: nothing is sent."""
    from daemon.service.dryrun import DryRun

    config = load(args, secrets=False)
    setup_logging(args.log_level or config.log_level)
    dry = DryRun(config)
    asyncio.run(dry.run(show))
    return ExitCode.DEGRADED if dry.failed else ExitCode.OK
