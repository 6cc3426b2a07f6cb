"""`feedwatch feeds list|add|remove|import` (`test|enable|disable` in feed_controls): manage feeds in config.toml.

Edits go through tomlkit so the operator's comments survive, are validated by loading the edited
config before anything is written, and replace the file atomically. A running daemon picks them up
on reload (SIGHUP / `systemctl reload feedwatch`).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import tomlkit
from tomlkit.items import AoT, Table

from daemon.cli import feed_controls
from daemon.cli.common import load, show
from daemon.cli.configfile import write_validated
from daemon.cli.exitcodes import ExitCode
from daemon.config.load import find_config, load_config, resolve_feed_url
from daemon.errors import ConfigError, StoreError
from daemon.store.sqlite import Store
from daemon.util.urls import missing_scheme

RELOAD_HINT = "run `systemctl reload feedwatch` (or send SIGHUP) to apply it to a running daemon"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feeds = sub.add_parser("feeds", help="list, add, remove or import feeds")
    fsub = feeds.add_subparsers(dest="feeds_command", metavar="ACTION")
    fsub.required = True

    ls = fsub.add_parser("list", help="configured feeds with their health")
    ls.set_defaults(func=cmd_list)

    add = fsub.add_parser("add", help="add a feed to config.toml")
    add.add_argument("url", metavar="URL", help="feed URL (https://…) or a local file path")
    add.add_argument("--name", help="short name used in alerts and logs (default: from the URL)")
    add.add_argument("--interval", help='e.g. "10m" or "auto"')
    add.add_argument("--tag", action="append", default=[], dest="tags", help="tag for routing (repeatable)")
    add.add_argument("--backfill", help='"24h" or "all" (default: record the backlog without alerting)')
    add.set_defaults(func=cmd_add)

    rm = fsub.add_parser("remove", help="remove a feed (by URL or name) from the file that defines it")
    rm.add_argument("feed", metavar="FEED", help="the feed's name or URL")
    rm.set_defaults(func=cmd_remove)

    imp = fsub.add_parser("import", help="add every feed of an OPML file (from a feed reader export)")
    imp.add_argument("opml", metavar="FILE.opml", help="OPML export of a feed reader")
    imp.set_defaults(func=cmd_import)

    feed_controls.register(fsub)


def cmd_list(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    health: dict[str, str] = {}
    try:
        store = Store(config.store.path, readonly=True)
    except StoreError:
        store = None
    if store is not None:
        for state in store.feeds():
            if state.health.disabled:
                health[state.name] = f"disabled: {state.health.last_error or ''}".strip()
            elif state.health.consecutive_failures:
                health[state.name] = f"failing ({state.health.consecutive_failures}): {state.health.last_error}"
            elif state.health.last_success:
                health[state.name] = f"ok {state.health.last_success:%Y-%m-%d %H:%M}"
        store.close()
    for feed in config.feeds:
        interval = "auto" if feed.auto_interval else f"{feed.interval or config.polling.interval:g}s"
        tags = f" [{', '.join(feed.tags)}]" if feed.tags else ""
        off = "" if feed.enabled else " (disabled)"
        show(f"{feed.name}{off}\t{feed.url}\tevery {interval}{tags}\t{health.get(feed.name, 'never polled')}")
    return ExitCode.OK


@dataclass(frozen=True)
class NewFeed:
    """A feed as `feeds add` will write it into config.toml."""

    url: str
    name: str | None = None
    interval: str | None = None
    tags: tuple[str, ...] = ()
    backfill: str | None = None


def _feed_table(feed: NewFeed) -> Table:
    table = tomlkit.table()
    if feed.name:
        table["name"] = feed.name
    table["url"] = feed.url
    if feed.interval:
        table["interval"] = feed.interval
    if feed.tags:
        table["tags"] = list(feed.tags)
    if feed.backfill:
        table["backfill"] = feed.backfill
    return table


def add_feeds(config_path: Path, feeds: list[NewFeed], skipped: list[str] | None = None) -> int:
    """Append feeds to config_path; URLs or names already configured (here or in feeds.d) are skipped,
    each with its reason appended to ``skipped``."""
    current = load_config(config_path, secrets=False)
    by_url = {f.url: f.name for f in current.feeds}
    names = {f.name for f in current.feeds}
    document = tomlkit.parse(config_path.read_text(encoding="utf-8"))
    array = document.get("feeds")
    if array is None:
        array = tomlkit.aot()
        document["feeds"] = array
    if not isinstance(array, AoT):
        raise ConfigError("feeds: expected an array of [[feeds]] tables", path=config_path)
    added = 0
    for feed in feeds:
        resolved = resolve_feed_url(feed.url, config_path)
        owner = by_url.get(resolved) or by_url.get(feed.url)
        if owner is not None or (feed.name and feed.name in names):
            if skipped is not None:
                why = f"already configured (feed {owner!r})" if owner else f"a feed is already named {feed.name!r}"
                skipped.append(f"{feed.url}: {why}")
            continue
        array.append(_feed_table(feed))
        by_url[resolved] = feed.name or ""
        added += 1
    if added:
        write_validated(config_path, document)
    return added


def cmd_add(args: argparse.Namespace) -> int:
    path = find_config(args.config)
    refuse_missing_scheme(args.url, path)
    feed = NewFeed(args.url, args.name, args.interval, tuple(args.tags), args.backfill)
    skipped: list[str] = []
    if add_feeds(path, [feed], skipped) == 0:
        show(f"feedwatch: {skipped[0] if skipped else args.url + ' is already configured'}", file=sys.stderr)
        return ExitCode.USAGE
    show(f"added {args.url} to {path}; {RELOAD_HINT}")
    return ExitCode.OK


def cmd_remove(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    match = next((f for f in config.feeds if args.feed in (f.url, f.name)), None)
    if match is None:
        show(f"feedwatch: no feed {args.feed!r} in {config.path}", file=sys.stderr)
        return ExitCode.USAGE
    source = Path(match.source)
    document = tomlkit.parse(source.read_text(encoding="utf-8"))
    array = document.get("feeds")
    assert isinstance(array, AoT)
    for index, table in enumerate(array):
        name = table.get("name")
        url = table.get("url")
        if name == match.name or url == args.feed or resolve_feed_url(str(url), source) == match.url:
            del array[index]
            break
    write_validated(source, document)
    show(f"removed {match.name} ({match.url}) from {source}; {RELOAD_HINT}")
    return ExitCode.OK


def parse_opml(path: Path) -> list[NewFeed]:
    """Every outline with an xmlUrl; enclosing outline titles become tags (reader folders)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"cannot read OPML: {exc}", path=path) from exc
    feeds: list[NewFeed] = []

    def walk(node: ET.Element, folders: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            url = outline.get("xmlUrl")
            label = outline.get("title") or outline.get("text") or ""
            if url:
                feeds.append(NewFeed(url=url.strip(), tags=tuple(_tag(f) for f in folders if f)))
            else:
                walk(outline, (*folders, label))

    body = root.find("body")
    if body is None:
        raise ConfigError("not an OPML file: no <body>", path=path)
    walk(body, ())
    return feeds


def _tag(folder: str) -> str:
    return "-".join(folder.lower().split())


def refuse_missing_scheme(url: str, config_path: Path) -> None:
    """ "news.example.org/rss" is a web address without its scheme, not a file beside the config."""
    suggestion = missing_scheme(url)
    if suggestion and not (config_path.parent / url).exists():
        raise ConfigError(f"feed URL {url!r} has no scheme: did you mean {suggestion!r}?")


def opml_verdict(url: str) -> tuple[bool, str | None]:
    """(import it?, what to tell the operator). An OPML file is someone else's list: only web feeds are
    taken, never local files or metadata addresses; loopback and private ones are named so they are seen."""
    from daemon.intake.netguard import literal_address, refusal

    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False, f"not imported: {url}: not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False, f"not imported: {url}: only http and https feeds are imported from OPML"
    address = literal_address(host)
    if address is not None and refusal(address, allow_private=True) is not None:
        return False, f"not imported: {url}: {refusal(address, allow_private=True)}"
    if host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback):
        return True, f"warning: {url} is on this host (loopback): make sure it is meant to be polled"
    if address is not None and refusal(address, allow_private=False) is not None:
        return True, f"warning: {url} is a private address: it is polled only with allow_private = true"
    return True, None


def cmd_import(args: argparse.Namespace) -> int:
    path = find_config(args.config)
    feeds = parse_opml(Path(args.opml))
    found = len(feeds)
    kept = []
    for feed in feeds:
        ok, note = opml_verdict(feed.url)
        if note:
            show(f"feedwatch: {note}", file=sys.stderr)
        if ok:
            kept.append(feed)
    feeds = kept
    skipped: list[str] = []
    added = add_feeds(path, feeds, skipped)
    for reason in skipped:
        show(f"feedwatch: not imported: {reason}", file=sys.stderr)
    show(f"imported {added} of {found} feeds from {args.opml} into {path}; {RELOAD_HINT}")
    return ExitCode.OK
