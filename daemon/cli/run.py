"""`feedwatch run [--once] [--dry-run]`: the daemon, one poll-score-deliver cycle, or a preview of one."""

from __future__ import annotations

import argparse
import asyncio
import sys

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode
from daemon.config.model import Config
from daemon.service.log import setup_logging
from daemon.util.memory import limit_malloc_arenas
from daemon.util.startup import no_gc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the daemon (or one poll cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, then exit")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="poll and score every feed once, print what would alert; send and record nothing",
    )
    run.set_defaults(func=cmd_run)


def log_level(args: argparse.Namespace, config: Config) -> str:
    """--log-level, else on a terminal "warning" (people watch alerts there, not routine events like
    `delivered` or `pruned items=0`), else the config's level (journald, files)."""
    if args.log_level:
        return str(args.log_level)
    return "warning" if sys.stderr.isatty() else config.log_level


def cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    limit_malloc_arenas()  # before any thread starts: see daemon.util.memory
    with no_gc():  # the daemon's modules, config and rules: see daemon.util.startup
        from daemon.service.app import Service

        config = load(args)
        setup_logging(log_level(args, config))
        service = Service(config)
    if not any(f.enabled for f in config.feeds):
        # Not an error (a daemon picks feeds up on reload), but a first run that polls nothing must say so.
        show("feedwatch: no feeds to poll: add one with `feedwatch feeds add URL` (or enable one)", file=sys.stderr)
    if not args.once:
        asyncio.run(service.run_forever())
        return ExitCode.OK
    left = asyncio.run(service.run_once())
    if sys.stdout.isatty():
        print(summary(config, service.delivered, left))
    if left:
        return ExitCode.QUEUED
    if service.dead:
        # A dead letter is an alert nobody received: a cron job running --once must notice.
        plural = "delivery" if service.dead == 1 else "deliveries"
        show(f"feedwatch: {service.dead} {plural} failed for good; see `feedwatch outbox list`", file=sys.stderr)
        return ExitCode.DEGRADED
    return ExitCode.OK


def summary(config: Config, delivered: int, left: int) -> str:
    """One line after the alerts: what the cycle did and where its state is."""
    feeds = sum(1 for f in config.feeds if f.enabled)
    # With one channel a delivery is an alert; with several, an alert counts once per channel.
    what = "alert" if len(config.channels) <= 1 else "delivery"
    plural = {"alert": "alerts", "delivery": "deliveries"}[what] if delivered != 1 else what
    queued = f" · {left} still queued (sent on the next run)" if left else ""
    return (
        f"feedwatch: {feeds} feed{'s' * (feeds != 1)} polled · {delivered} {plural} delivered{queued} · "
        f"state in {config.store.path} (the next run sends only what is new)"
    )


def _dry_run(args: argparse.Namespace) -> int:
    """One previewing cycle (``--once`` or not); channel secrets are not needed: nothing is sent."""
    from daemon.service.dryrun import DryRun

    config = load(args, secrets=False)
    setup_logging(log_level(args, config))
    dry = DryRun(config)
    asyncio.run(dry.run(show))
    return ExitCode.DEGRADED if dry.failed else ExitCode.OK
