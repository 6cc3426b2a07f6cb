"""The ``feedwatch`` command line. Exit codes (same for every command):

0 ok · 1 degraded (status) · 2 usage, config or rule error · 3 ``run --once`` left alerts queued ·
4 ``status``: no daemon heartbeat within 3 poll intervals.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from daemon import __version__
from daemon.cli.commands import COMMANDS
from daemon.cli.common import EXIT_DEGRADED, EXIT_USAGE
from daemon.errors import ConfigError, FeedwatchError, RuleError, StoreError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedwatch", description="Watch RSS/Atom feeds with explainable rules and deliver alerts."
    )
    parser.add_argument("--version", action="version", version=f"feedwatch {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $FEEDWATCH_CONFIG, then ./config.toml)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override config")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except (ConfigError, RuleError) as exc:
        print(f"feedwatch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"feedwatch: store error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FeedwatchError as exc:
        print(f"feedwatch: error: {exc}", file=sys.stderr)
        return EXIT_DEGRADED
    except KeyboardInterrupt:
        return 130
