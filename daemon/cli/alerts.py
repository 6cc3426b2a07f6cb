"""`feedwatch alerts list|show|resend`, `feedwatch outbox retry` and `feedwatch send-test CHANNEL`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon.cli.common import count, load, show
from daemon.cli.exitcodes import ExitCode
from daemon.config.model import Config
from daemon.errors import ConfigError, DeliveryError
from daemon.models import Alert, AlertKind, Hit, Severity, alert_to_dict
from daemon.store.controls import AmbiguousId
from daemon.store.sqlite import Store

if TYPE_CHECKING:
    import httpx


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    al = sub.add_parser("alerts", help="what was sent where, and why")
    asub = al.add_subparsers(dest="alerts_command", metavar="ACTION")
    asub.required = True
    ls = asub.add_parser("list", help="recent alerts with their delivery state")
    ls.add_argument("-n", "--limit", type=count, default=20, help="how many alerts, newest first (default 20)")
    ls.add_argument("--json", action="store_true", help="print only JSON on stdout")
    ls.add_argument("--rule", help="only alerts of this rule")
    ls.add_argument("--since", help='only alerts this recent: a duration ("24h", "7d") or an ISO date/time')
    ls.add_argument("--severity", choices=["info", "warning", "critical"], help="only alerts at least this severe")
    ls.add_argument(
        "--status",
        choices=["pending", "delivered", "dead", "silenced", "held", "digest", "folded"],
        help="only alerts with a delivery in this state",
    )
    ls.set_defaults(func=cmd_list)
    show = asub.add_parser("show", help="one alert: rule, score, hits and deliveries")
    show.add_argument("alert_id", metavar="ID", help="alert id as printed by `alerts list`, or a unique prefix")
    show.add_argument("--json", action="store_true", help="print only JSON on stdout")
    show.set_defaults(func=cmd_show)
    resend = asub.add_parser("resend", help="queue an alert again for its channels (same idempotency key)")
    resend.add_argument("alert_id", metavar="ID", help="alert id, as printed by `alerts list`")
    resend.add_argument("--channel", action="append", help="only these channels")
    resend.set_defaults(func=cmd_resend)

    ob = sub.add_parser("outbox", help="the delivery queue")
    osub = ob.add_subparsers(dest="outbox_command", metavar="ACTION")
    osub.required = True
    retry = osub.add_parser("retry", help="move dead letters back to the queue")
    retry.set_defaults(func=cmd_outbox_retry)
    ols = osub.add_parser("list", help="deliveries waiting, held or dead (not the delivered ones)")
    ols.add_argument(
        "--state",
        action="append",
        choices=["pending", "dead", "held", "digest", "silenced", "delivered", "folded"],
        help="only this state (repeatable; default: pending, dead, held, digest)",
    )
    ols.add_argument("-n", "--limit", type=count, default=100, help="how many deliveries, oldest first (default 100)")
    ols.add_argument("--json", action="store_true", help="print only JSON on stdout")
    ols.set_defaults(func=cmd_outbox_list)

    test = sub.add_parser("send-test", help="send a sample alert through a configured channel")
    test.add_argument("channel", metavar="CHANNEL", help="a channel name from [channels] in config.toml")
    test.set_defaults(func=cmd_send_test)


def _store(config: Config, *, readonly: bool) -> Store:
    return Store(config.store.path, readonly=readonly, busy_timeout=config.store.busy_timeout)


def _deliveries(store: Store, alert_id: str) -> list[dict[str, object]]:
    return [
        {
            "channel": r.channel,
            "state": r.state,
            "attempts": r.attempts,
            "error": r.last_error,
            "delivered_at": r.delivered_at,
        }
        for r in store.deliveries(alert_id)
    ]


def since(text: str, now: datetime) -> datetime:
    """``--since``: a duration back from now, or an ISO date/time (UTC when it has no offset)."""
    from daemon.util.durations import parse_duration

    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f'--since: expected a duration like "24h" or an ISO date, got {text!r}') from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_list(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    store = _store(config, readonly=True)
    try:
        found = store.find_alerts(
            limit=args.limit,
            rule=args.rule,
            since=since(args.since, datetime.now(UTC)) if args.since else None,
            severity=int(Severity.parse(args.severity)) if args.severity else None,
            status=args.status,
        )
        alerts = [(r.alert, r.silence_id) for r in found]
        rows = [(a, s, _deliveries(store, a.alert_id)) for a, s in alerts]
    finally:
        store.close()
    if args.json:
        doc = [{"alert": alert_to_dict(a), "silence_id": s, "deliveries": d} for a, s, d in rows]
        show(json.dumps(doc, indent=2))
        return ExitCode.OK
    for alert, _silence, deliveries in rows:
        where = ", ".join(f"{d['channel']}:{d['state']}" for d in deliveries) or "-"
        rule = alert.rule_id or str(alert.kind)
        show(
            f"{alert.created_at:%Y-%m-%d %H:%M:%S} {alert.alert_id} [{alert.severity}] {rule}: {alert.title}  ({where})"
        )
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    store = _store(config, readonly=True)
    try:
        row = store.alert_row(args.alert_id)
        alert = row.alert if row else None
        deliveries = _deliveries(store, alert.alert_id) if alert else []
    except AmbiguousId as exc:
        show(f"feedwatch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    if alert is None:
        show(f"feedwatch: no alert {args.alert_id!r}", file=sys.stderr)
        return ExitCode.USAGE
    if args.json:
        show(json.dumps({"alert": alert_to_dict(alert), "deliveries": deliveries}, indent=2))
        return ExitCode.OK
    show(f"{alert.alert_id}  {alert.kind}  [{alert.severity}]  rule {alert.rule_id or '-'}  score {alert.score:g}")
    show(f"  {alert.title}")
    if alert.link:
        show(f"  {alert.link}")
    show(f"  feed {alert.feed} · story {alert.story_id or '-'} · created {alert.created_at:%Y-%m-%d %H:%M:%S %Z}")
    if alert.thread_id:
        show(f"  updates {alert.thread_id}")
    for hit in alert.hits:
        fuzzy = f" ≈{hit.fuzzy:.0f}" if hit.fuzzy is not None else ""
        show(
            # The alternative that matched: a term from a shared list can hold fifty of them.
            f"  hit {hit.group}/{hit.alias or hit.term!r}: {hit.text!r}{fuzzy} in {hit.field}[{hit.start}:{hit.end}]"
            f" {hit.contribution:+g}"
        )
    for d in deliveries:
        show(f"  → {d['channel']}: {d['state']} after {d['attempts']} attempt(s) {d['error'] or ''}".rstrip())
    return ExitCode.OK


def cmd_resend(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    unknown = sorted(set(args.channel or ()) - set(config.channels))
    if unknown:
        # Checked before the store is touched: a typo must not quietly queue nothing.
        known = ", ".join(sorted(config.channels)) or "none"
        show(f"feedwatch: no channel {', '.join(map(repr, unknown))} (configured: {known})", file=sys.stderr)
        return ExitCode.USAGE
    store = _store(config, readonly=False)
    try:
        row = store.alert_row(args.alert_id)  # an id or a unique prefix, as `alerts show` takes
        if row is None:
            show(f"feedwatch: no alert {args.alert_id!r}", file=sys.stderr)
            return ExitCode.USAGE
        alert_id = row.alert.alert_id
        count = store.requeue(alert_id, args.channel, datetime.now(UTC))
    except AmbiguousId as exc:
        show(f"feedwatch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    who = "a running daemon delivers it, or the next `feedwatch run --once`"
    show(f"queued {alert_id} again for {count} channel(s); {who}")
    return ExitCode.OK


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    store = _store(config, readonly=False)
    try:
        with store.transaction():
            count = store.retry_dead(datetime.now(UTC))
    finally:
        store.close()
    show(f"{count} dead letter(s) queued again")
    return ExitCode.OK


def cmd_outbox_list(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    store = _store(config, readonly=True)
    try:
        rows = store.outbox_rows(states=args.state or ["pending", "dead", "held", "digest"], limit=args.limit)
    finally:
        store.close()
    entries: list[dict[str, Any]] = [
        {
            "alert_id": r.alert_id,
            "channel": r.channel,
            "state": r.state,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at if r.state == "pending" else None,
            "error": r.last_error,
            "rule_id": r.rule_id,
            "kind": r.kind,
            "severity": str(Severity(r.severity)),
            "created_at": r.created_at,
        }
        for r in rows
    ]
    if args.json:
        show(json.dumps(entries, indent=2))
        return ExitCode.OK
    if not entries:
        show("outbox: nothing waiting")
    for e in entries:
        due = f" next try {e['next_attempt_at'][:19]}" if e["next_attempt_at"] else ""
        error = f": {e['error']}" if e["error"] else ""
        rule = f"{e['rule_id'] or e['kind']} [{e['severity']}]"
        show(f"{e['alert_id']} → {e['channel']}  {e['state']}  {rule}  {e['attempts']} attempt(s){due}{error}")
    return ExitCode.OK


def sample_alert(now: datetime) -> Alert:
    title = "feedwatch test alert: shelling reported near Martuni"
    return Alert(
        alert_id=f"fw-test-{now:%Y%m%d%H%M%S}",
        kind=AlertKind.TEST,
        rule_id="send-test",
        severity=Severity.WARNING,
        score=3.0,
        title=title,
        link="https://example.org/feedwatch-test",
        feed="send-test",
        created_at=now,
        snippet="This is a test message sent by `feedwatch send-test`. No action is needed.",
        description="A sample alert to check that this channel delivers",
        hits=(Hit("places", "Martuni", "Martuni", "title", 46, 53, "Martuni", 1.0),),
    )


async def _send(config: Config, name: str) -> None:
    from daemon.intake.fetch import FetchSettings
    from daemon.service.runtime import build_channels, channel_client

    async with contextlib.AsyncExitStack() as stack:

        def http() -> httpx.AsyncClient:  # only Slack and webhook channels need one
            client = channel_client(FetchSettings())
            stack.push_async_callback(client.aclose)
            return client

        channel = build_channels(config, http)[name]
        try:
            await channel.send(sample_alert(datetime.now(UTC)))
        finally:
            await channel.aclose()


def cmd_send_test(args: argparse.Namespace) -> int:
    config = load(args)
    if args.channel not in config.channels:
        known = ", ".join(sorted(config.channels))
        show(f"feedwatch: no channel {args.channel!r} (configured: {known})", file=sys.stderr)
        return ExitCode.USAGE
    try:
        asyncio.run(_send(config, args.channel))
    except DeliveryError as exc:
        kind = "temporary" if type(exc).__name__.startswith("Transient") else "permanent"
        show(f"feedwatch: send-test to {args.channel} failed ({kind}): {_one_line(exc.reason)}", file=sys.stderr)
        return ExitCode.DEGRADED
    except Exception as exc:  # whatever a channel let escape: still one line, never a traceback
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        show(f"feedwatch: send-test to {args.channel} failed (unexpected): {reason}", file=sys.stderr)
        return ExitCode.DEGRADED
    show(f"sent a test alert through {args.channel}")
    return ExitCode.OK


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
