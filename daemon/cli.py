"""The ``feedwatch`` command line. Exit codes (same for every command):

0 ok · 1 degraded (status) · 2 usage, config or rule error · 3 ``run --once`` left alerts queued ·
4 ``status``: no daemon heartbeat within 3 poll intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from daemon import __version__
from daemon.config import Config, find_config, load_config
from daemon.errors import ConfigError, FeedwatchError, RuleError, StoreError
from daemon.log import setup_logging

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace, *, secrets: bool = True) -> Config:
    return load_config(find_config(args.config), secrets=secrets)


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.service import Service

    config = _config(args)
    setup_logging(args.log_level or config.log_level)
    service = Service(config)
    if args.once:
        return asyncio.run(service.run_once())
    return asyncio.run(service.run_forever())


def cmd_check(args: argparse.Namespace) -> int:
    from daemon.rules import load_rules

    config = _config(args, secrets=False)
    rules_dir = Path(args.rules) if args.rules else config.rules_dir
    report = load_rules(rules_dir, channels=list(config.channels))
    print(f"config: {config.path} ok ({len(config.feeds)} feeds, {len(config.channels)} channels)")
    for rule in report.ruleset.rules:
        groups = ", ".join(f"{g.name}({len(g.terms)})" for g in rule.groups)
        state = "" if rule.enabled else " [disabled]"
        print(f"rule {rule.id}{state}: {groups}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        return EXIT_USAGE
    print(f"rules: {rules_dir} ok ({len(report.ruleset.rules)} rules)")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from daemon import status
    from daemon.store import Store

    config = _config(args, secrets=False)
    now = datetime.now(UTC)
    try:
        store = Store(config.store.path, readonly=True)
    except StoreError as exc:
        report = {"daemon": {"running": False}, "error": str(exc)}
        print(json.dumps(report, indent=2) if args.json else f"feedwatch: {exc}\nNOT RUNNING")
        return status.EXIT_NO_DAEMON
    try:
        report = status.collect(store, config, now)
    finally:
        store.close()
    print(json.dumps(report, indent=2) if args.json else status.render(report))
    return status.exit_code(report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedwatch", description="Watch RSS/Atom feeds with explainable rules and deliver alerts."
    )
    parser.add_argument("--version", action="version", version=f"feedwatch {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $FEEDWATCH_CONFIG, then ./config.toml)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override config")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run the daemon (or one poll cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, then exit")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate config and rules (exit 2 on errors)")
    check.add_argument("--rules", help="rules folder to check instead of the configured one")
    check.set_defaults(func=cmd_check)

    st = sub.add_parser("status", help="daemon, feeds, rules, outbox and recent alerts (exit 0/1/2/4)")
    st.add_argument("--json", action="store_true", help="one JSON document")
    st.set_defaults(func=cmd_status)
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
