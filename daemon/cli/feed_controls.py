"""`feedwatch feeds test URL` and `feeds enable|disable NAME`.

``test`` fetches, parses and scores a feed once and keeps nothing. ``enable``/``disable`` set the
feed's ``enabled`` key in the file that defines it (comments kept, validated before the atomic
replace); ``enable`` also lifts a stop recorded in the database, as after a 410 Gone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from daemon.cli.common import load, show
from daemon.cli.configfile import write_validated
from daemon.cli.exitcodes import ExitCode
from daemon.config.load import resolve_feed_url
from daemon.config.model import Config, FeedConfig

RELOAD_HINT = "run `systemctl reload feedwatch` (or send SIGHUP) to apply it to a running daemon"


def register(fsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = fsub.add_parser("test", help="fetch, parse and score a feed once; nothing is kept")
    test.add_argument("url", metavar="URL", help="a feed URL or file, or the name of a configured feed")
    test.add_argument("--all", action="store_true", help="list every item, not only those a rule fires on")
    test.set_defaults(func=cmd_test)

    en = fsub.add_parser("enable", help="poll a feed again (also one stopped by 410 Gone)")
    en.add_argument("feed", metavar="NAME", help="the feed's name (or URL) in config.toml")
    en.set_defaults(func=cmd_enable)

    dis = fsub.add_parser("disable", help="stop polling a feed (enabled = false in its file)")
    dis.add_argument("feed", metavar="NAME", help="the feed's name (or URL) in config.toml")
    dis.set_defaults(func=cmd_disable)


def _find(config: Config, key: str) -> FeedConfig | None:
    return next((f for f in config.feeds if key in (f.name, f.url)), None)


async def _fetch(config: Config, url: str, feed: FeedConfig | None) -> tuple[int, bytes, str | None, str]:
    from daemon.intake.fetch import Fetcher, make_client
    from daemon.intake.headers import BasicAuth, Validators
    from daemon.service.runtime import fetch_settings

    settings = fetch_settings(config)
    headers = dict(feed.headers) if feed else {}
    auth: BasicAuth | None = None
    if feed is not None and feed.username and feed.password:
        auth = BasicAuth(feed.username, feed.password.reveal())
    if feed is not None and feed.token:
        headers["Authorization"] = f"Bearer {feed.token.reveal()}"
    async with make_client(settings) as client:
        allow_private = feed.allow_private if feed is not None else config.polling.allow_private
        result = await Fetcher(client, settings).fetch(
            url, Validators(None, None), headers=headers, auth=auth, allow_private=allow_private
        )
    assert result.body is not None  # no validators sent: never a 304
    return result.status, result.body, result.content_type, result.final_url


def cmd_test(args: argparse.Namespace) -> int:
    from daemon.errors import FeedwatchError, FetchError
    from daemon.intake.parse import parse_feed
    from daemon.rules.load import load_rules
    from daemon.rules.matcher import Matcher

    config = load(args)
    feed = _find(config, args.url)
    url = feed.url if feed else args.url
    if "://" not in url:
        url = Path(url).absolute().as_uri()
    name = feed.name if feed else "test"
    try:
        status, body, ctype, final = asyncio.run(_fetch(config, url, feed))
        parsed = parse_feed(body, feed=name, url=final, content_type=ctype)
    except FeedwatchError as exc:
        # A FetchError names its (redacted) URL already; the others do not.
        where = "" if isinstance(exc, FetchError) else f"{url}: "
        show(f"feedwatch: {where}{exc}", file=sys.stderr)
        return ExitCode.DEGRADED
    moved = f" (from {final})" if final != url else ""
    show(f"fetched {url}{moved}: HTTP {status}, {len(body)} bytes, {ctype or 'no content type'}")
    show(f"parsed {parsed.title or '(no title)'!r}: {len(parsed.items)} items")
    if parsed.problem:
        show(f"  problem: {parsed.problem}")
    report = load_rules(config.rules_dir, channels=list(config.channels))
    for error in report.errors:
        show(f"feedwatch: rule error (the file is skipped): {error}", file=sys.stderr)
    matcher = Matcher(report.ruleset)
    tags = frozenset(feed.tags) if feed else frozenset()
    firing = 0
    for item in parsed.items:
        fired = [e for e in matcher.evaluate(item, feed_tags=tags) if e.fired]
        firing += bool(fired)
        if fired or args.all:
            title = " ".join(item.title.split()) or "(untitled)"
            verdict = ", ".join(f"{e.rule_id} [{e.severity}] {e.score:g}" for e in fired) or "no rule"
            show(f"  {title}  → {verdict}")
    show(f"{firing} of {len(parsed.items)} items fire a rule (scored as new items; nothing was kept)")
    return ExitCode.OK


def _set_enabled(config: Config, feed: FeedConfig, enabled: bool) -> bool:
    """Set ``enabled`` in the feed's own table; False when it already had that value."""
    import tomlkit
    from tomlkit.items import AoT

    source = Path(feed.source)
    document = tomlkit.parse(source.read_text(encoding="utf-8"))
    array = document.get("feeds")
    assert isinstance(array, AoT)
    for table in array:
        if table.get("name") == feed.name or table.get("url") == feed.url:
            break
    else:  # the loader named it after its URL: find the table by the URL it resolves to
        table = next(t for t in array if _resolved(source, t) == feed.url)
    if bool(table.get("enabled", True)) == enabled:
        return False
    if enabled:
        del table["enabled"]
    else:
        table["enabled"] = False
    write_validated(source, document)
    return True


def _resolved(source: Path, table: object) -> str | None:

    url = table.get("url") if isinstance(table, dict) else None
    return resolve_feed_url(str(url), source) if url else None


def cmd_disable(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    feed = _find(config, args.feed)
    if feed is None:
        show(f"feedwatch: no feed {args.feed!r} in {config.path}", file=sys.stderr)
        return ExitCode.USAGE
    if not _set_enabled(config, feed, False):
        show(f"{feed.name} is already disabled in {feed.source}")
        return ExitCode.OK
    show(f"disabled {feed.name} in {feed.source}; {RELOAD_HINT}")
    return ExitCode.OK


def cmd_enable(args: argparse.Namespace) -> int:
    from daemon.errors import StoreError
    from daemon.store.sqlite import Store

    config = load(args, secrets=False)
    feed = _find(config, args.feed)
    if feed is None:
        show(f"feedwatch: no feed {args.feed!r} in {config.path}", file=sys.stderr)
        return ExitCode.USAGE
    changed = _set_enabled(config, feed, True)
    lifted = None
    try:
        store = Store(config.store.path, busy_timeout=config.store.busy_timeout)
    except StoreError:
        store = None
    if store is not None:
        try:
            lifted = store.enable_feed(feed.name, datetime.now(UTC))
        finally:
            store.close()
    if lifted:
        show(f"{feed.name} was stopped ({lifted}); it is polled again at its next turn")
    if changed:
        show(f"enabled {feed.name} in {feed.source}; {RELOAD_HINT}")
    elif not lifted:
        show(f"{feed.name} is already enabled")
    return ExitCode.OK
