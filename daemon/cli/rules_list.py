"""`feedwatch rules list`: the loaded rules, where they route, and what they did lately."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode

RECENT = timedelta(days=7)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ru = sub.add_parser("rules", help="the loaded watch rules")
    rsub = ru.add_subparsers(dest="rules_command", metavar="ACTION")
    rsub.required = True
    ls = rsub.add_parser("list", help="each rule: threshold, severity bands, channels, alerts in 7 days, silences")
    ls.add_argument("--json", action="store_true", help="print only JSON on stdout")
    ls.set_defaults(func=cmd_list)


def _activity(config: Any, now: datetime) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Alerts per rule in the last 7 days and active silences per rule, from the store when there is one."""
    from daemon.errors import StoreError
    from daemon.store.sqlite import Store

    try:
        store = Store(config.store.path, readonly=True)
    except StoreError:
        return {}, {}
    try:
        rows = store.conn.execute(
            "SELECT rule_id, COUNT(*) FROM alerts WHERE created_at >= ? AND kind IN ('new', 'update') GROUP BY rule_id",
            ((now - RECENT).isoformat(),),
        )
        counts = {r[0]: int(r[1]) for r in rows}
        silences: dict[str, list[str]] = {}
        for s in store.silences(now=now):
            if s.active(now):
                silences.setdefault(s.rule, []).append(s.id)
    finally:
        store.close()
    return counts, silences


def cmd_list(args: argparse.Namespace) -> int:
    from daemon.rules.load import load_rules

    config = load(args, secrets=False)
    report = load_rules(config.rules_dir, channels=list(config.channels))
    now = datetime.now(UTC)
    counts, silences = _activity(config, now)
    rules: list[dict[str, Any]] = []
    for rule in report.ruleset.rules:
        bands = rule.severity
        rules.append(
            {
                "id": rule.id,
                "enabled": rule.enabled,
                "description": rule.description,
                "threshold": rule.threshold,
                "severity": str(bands.fixed) if bands.fixed else {"warning": bands.warning, "critical": bands.critical},
                "channels": list(rule.channels) or list(config.alerts.default_channels),
                "default_route": not rule.channels,
                "throttle_seconds": rule.throttle.total_seconds() if rule.throttle else None,
                "feeds": sorted(rule.feeds),
                "tags": sorted(rule.tags),
                "source": f"{rule.path}:{rule.line}" if rule.line else rule.path,
                "alerts_7d": counts.get(rule.id, 0),
                "silenced_by": silences.get(rule.id, []) + silences.get("*", []),
            }
        )
    errors = [str(e) for e in report.errors]
    if args.json:
        show(json.dumps({"rules": rules, "errors": errors}, indent=2))
        return ExitCode.USAGE if errors else ExitCode.OK
    for r in rules:
        state = "" if r["enabled"] else " (disabled)"
        sev = f" ({r['severity']})" if isinstance(r["severity"], str) else _bands(r["severity"])
        route = ", ".join(r["channels"]) + (" (default)" if r["default_route"] else "")
        muted = f" · silenced by {', '.join(r['silenced_by'])}" if r["silenced_by"] else ""
        show(f"{r['id']}{state}  threshold {r['threshold']:g}{sev}  → {route}  · {r['alerts_7d']} alerts in 7d{muted}")
        if r["description"]:
            show(f"    {r['description']}")
    show(f"{len(rules)} rules from {config.rules_dir}")
    for error in errors:
        show(f"feedwatch: {error}", file=sys.stderr)
    return ExitCode.USAGE if errors else ExitCode.OK


def _bands(bands: dict[str, float | None]) -> str:
    parts = [f"{k} {v:g}" for k, v in bands.items() if v is not None]
    return f" ({', '.join(parts)})" if parts else ""
