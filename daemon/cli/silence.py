"""`feedwatch silence add|list|expire`: mute a rule, a feed or a feed's operator alerts for a while.

Silences live in the database, so they work on a fresh store before any run and a running daemon
sees them at its next poll (no reload needed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode
from daemon.config.model import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    si = sub.add_parser("silence", help="mute alerts of a rule (or a feed's operator alerts) for a while")
    ssub = si.add_subparsers(dest="silence_command", metavar="ACTION")
    ssub.required = True

    add = ssub.add_parser("add", help="create a silence; prints its id")
    # Checked in the handler, not by argparse: every command must parse with its positionals alone.
    target = add.add_mutually_exclusive_group()
    target.add_argument("--rule", help="rule id, or '*' for every rule")
    target.add_argument("--ops", action="store_true", help="operator alerts about feeds (use with --feed)")
    add.add_argument("--feed", help="only alerts from this feed (its name in config.toml)")
    add.add_argument("--match", help="only alerts whose title contains this text (case-insensitive)")
    add.add_argument("--for", dest="duration", help='how long, e.g. "2h", "30m", "3d"')
    add.add_argument("--comment", default="", help="why (shown in `silence list` and `explain`)")
    add.set_defaults(func=cmd_add)

    ls = ssub.add_parser("list", help="active silences (--all: ended ones too)")
    ls.add_argument("--all", action="store_true", help="also silences that ended or were expired")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(func=cmd_list)

    ex = ssub.add_parser("expire", help="end a silence now (an id or a unique prefix of one)")
    ex.add_argument("silence_id", help="the id `silence add` printed, or a unique prefix of it")
    ex.set_defaults(func=cmd_expire)


def _user() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def cmd_add(args: argparse.Namespace) -> int:
    from daemon.alerting import silences
    from daemon.store.sqlite import Store
    from daemon.util.durations import parse_duration

    config = load(args, secrets=False)
    if args.rule is None and not args.ops:
        show("feedwatch: silence add needs --rule RULE (or --ops --feed FEED)", file=sys.stderr)
        return ExitCode.USAGE
    if args.duration is None:
        show("feedwatch: silence add needs --for DURATION, e.g. --for 2h", file=sys.stderr)
        return ExitCode.USAGE
    try:
        seconds = parse_duration(args.duration)
    except ValueError as exc:
        show(f"feedwatch: --for: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    rule = silences.OPS_RULE if args.ops else args.rule
    problems = silences.validate(rule, feed=args.feed, match=args.match, seconds=seconds, comment=args.comment)
    if args.ops and args.feed is None:
        problems.append("--ops needs --feed (silence one feed's operator alerts)")
    known_feeds = {f.name for f in config.feeds}
    if args.feed is not None and args.feed not in known_feeds:
        show(f"feedwatch: warning: no feed {args.feed!r} in {config.path}", file=sys.stderr)
    if args.rule not in (None, "*"):
        _warn_unknown_rule(config, args.rule)
    if problems:
        for problem in problems:
            show(f"feedwatch: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    now = datetime.now(UTC)
    silence = silences.Silence(
        id=silences.new_id(rule, args.feed, args.match, now, salt=str(os.getpid())),
        rule=rule,
        starts_at=now,
        ends_at=now + timedelta(seconds=seconds),
        feed=args.feed,
        match=args.match,
        comment=args.comment,
        created_by=_user(),
    )
    store = Store(config.store.path, busy_timeout=config.store.busy_timeout)
    try:
        with store.transaction():
            store.add_silence(silence, now)
    finally:
        store.close()
    show(silence.id)
    show(f"silenced {silence.describe()} until {silence.ends_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return ExitCode.OK


def _warn_unknown_rule(config: Config, rule_id: str) -> None:
    """A typo in --rule would silence nothing; the silence is still kept (the rule may come later)."""
    from daemon.rules.load import load_rules

    report = load_rules(config.rules_dir, channels=list(config.channels))
    if all(r.id != rule_id for r in report.ruleset.rules):
        show(f"feedwatch: warning: no rule {rule_id!r} in {config.rules_dir}", file=sys.stderr)


def as_dict(s: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "rule": s.rule,
        "feed": s.feed,
        "match": s.match,
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "active": s.active(now),
        "comment": s.comment,
        "created_by": s.created_by,
        "matches": s.describe(),
    }


def cmd_list(args: argparse.Namespace) -> int:
    from daemon.errors import StoreError
    from daemon.store.sqlite import Store
    from daemon.util.durations import format_duration

    config = load(args, secrets=False)
    now = datetime.now(UTC)
    try:
        store = Store(config.store.path, readonly=True)
    except StoreError:
        found = []  # no database yet: no silences
    else:
        try:
            found = store.silences(now=None if args.all else now)
        finally:
            store.close()
    if args.json:
        show(json.dumps([as_dict(s, now) for s in found], indent=2))
        return ExitCode.OK
    if not found:
        show("no active silences" if not args.all else "no silences")
        return ExitCode.OK
    for s in found:
        left = (s.ends_at - now).total_seconds()
        when = f"ends in {format_duration(left)}" if left > 0 else f"ended {s.ends_at:%Y-%m-%d %H:%M} UTC"
        who = f" by {s.created_by}" if s.created_by else ""
        comment = f"  “{s.comment}”" if s.comment else ""
        show(f"{s.id}  {s.describe()}  ({when}{who}){comment}")
    return ExitCode.OK


def cmd_expire(args: argparse.Namespace) -> int:
    from daemon.store.controls import AmbiguousId
    from daemon.store.sqlite import Store

    config = load(args, secrets=False)
    now = datetime.now(UTC)
    store = Store(config.store.path, busy_timeout=config.store.busy_timeout)
    try:
        try:
            silence = store.silence(args.silence_id)
        except AmbiguousId as exc:
            show(f"feedwatch: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        if silence is None:
            show(f"feedwatch: no silence {args.silence_id!r}", file=sys.stderr)
            return ExitCode.USAGE
        with store.transaction():
            store.expire_silence(silence.id, now)
    finally:
        store.close()
    if silence.ends_at <= now:
        show(f"{silence.id} had already ended at {silence.ends_at:%Y-%m-%d %H:%M} UTC")
    else:
        show(f"expired {silence.id} ({silence.describe()}); alerts it would have muted are sent from now on")
    return ExitCode.OK
