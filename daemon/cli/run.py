"""`feedwatch run [--once]`: the daemon, or one poll-score-deliver cycle."""

from __future__ import annotations

import argparse
import asyncio

from daemon.cli.common import load
from daemon.cli.exitcodes import ExitCode
from daemon.service.log import setup_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the daemon (or one poll cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, then exit")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.service.app import Service

    config = load(args)
    setup_logging(args.log_level or config.log_level)
    service = Service(config)
    if args.once:
        left = asyncio.run(service.run_once())
        return ExitCode.QUEUED if left else ExitCode.OK
    asyncio.run(service.run_forever())
    return ExitCode.OK
