"""`feedwatch check`: validate config and rules; exit 2 with precise messages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.cli.common import load
from daemon.cli.exitcodes import ExitCode
from daemon.util.startup import seconds_since_start, timer

if TYPE_CHECKING:
    from daemon.config.model import Config
    from daemon.rules.ruleset import Rule


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="validate config and rules (exit 2 on errors)")
    check.add_argument("--rules", help="rules folder to check instead of the configured one")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    started = seconds_since_start()  # interpreter, imports and config: what every command pays
    t0 = timer()
    from daemon.rules.load import check_examples, load_rules, no_rules_error

    rules_dir = Path(args.rules) if args.rules else config.rules_dir
    report = load_rules(rules_dir, channels=list(config.channels))
    t1 = timer()
    # Examples are unit tests for rules: an edit that breaks one fails the check.
    failures = check_examples(report.ruleset)
    t2 = timer()
    # Problems first, so the "ok" summary is the last thing read.
    for warning in [*report.warnings, *_unknown_feeds(config, report.ruleset.rules)]:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    sys.stderr.flush()
    print(f"config: {config.path} ok ({len(config.feeds)} feeds, {len(config.channels)} channels)")
    for rule in report.ruleset.rules:
        groups = ", ".join(f"{g.name}({len(g.terms)})" for g in rule.groups)
        state = "" if rule.enabled else " [disabled]"
        print(f"rule {rule.id}{state}: {groups}")
    if not report.errors and not report.ruleset.rules:
        print(f"error: {no_rules_error(rules_dir)}", file=sys.stderr)
        return ExitCode.USAGE
    if report.errors or failures:
        return ExitCode.USAGE
    examples = sum(len(r.examples) for r in report.ruleset.rules)
    if examples:
        print(f"examples: {examples} passed")
    print(f"rules: {rules_dir} ok ({len(report.ruleset.rules)} rules)")
    startup = "?" if started is None else f"{started:.2f} s"
    print(f"timing: start-up {startup}, loading the rules {t1 - t0:.2f} s, examples {t2 - t1:.2f} s")
    return ExitCode.OK


def _unknown_feeds(config: Config, rules: Iterable[Rule]) -> list[str]:
    """Feed names in rules that no [[feeds]] entry defines: a typo there makes a rule silently never fire."""
    known = {f.name for f in config.feeds}
    shown = ", ".join(sorted(known)) or "none"
    warnings = []
    for rule in rules:
        where = f"{rule.path}:{rule.line}" if rule.line else rule.path
        for key, names in (("feeds", rule.feeds), ("except_feeds", rule.except_feeds)):
            for name in sorted(names - known):
                warnings.append(
                    f"{where}: rule {rule.id!r}: {key} names {name!r}, which no [[feeds]] entry defines"
                    f" (configured: {shown})"
                )
    return warnings
