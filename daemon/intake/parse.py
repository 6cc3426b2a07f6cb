"""Bytes to items: the fast path (the standard library's ElementTree), a bounded feedparser fallback,
then our own sanitising and item identity (called in a worker thread or process by the poller).

A document goes to feedparser only when the fast path is unsure of it (``fastparse``); that fallback runs
in a child process with a deadline and a memory cap (``bounded``). Identity is per feed: guid/id, else
the canonical link (tracking parameters stripped), else a hash of title and summary. Everything that
leaves this module is plain text with control characters removed and links that are absolute http(s) or
None.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from dataclasses import dataclass

from daemon.errors import FeedParseError
from daemon.intake import bounded, fastparse
from daemon.intake.bounded import DEFAULT_LIMITS, ParseLimits
from daemon.intake.prepare import MAX_ATTRIBUTES, most_attributes, prepare
from daemon.intake.rawfeed import RawEntry, RawFeed
from daemon.models import Item
from daemon.util.text import html_to_text
from daemon.util.urls import canonical_url, safe_link

__all__ = [
    "MAX_ATTRIBUTES",
    "Fallback",
    "ParsedFeed",
    "Refused",
    "build",
    "clean_text",
    "first_pass",
    "item_key",
    "parse_feed",
    "prepare",
]

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_CONTENT = 50_000
MAX_KEY = 512

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document: its title and sanitised items."""

    title: str
    items: tuple[Item, ...]
    ttl_minutes: int | None = None
    problem: str | None = None  # feedparser's complaint when the feed was ill-formed but usable
    duplicates: int = 0  # entries dropped because their identity repeated inside this document


def clean_text(value: str, limit: int) -> str:
    """Markup to one line of plain text, control characters removed, bounded length."""
    # Every character _CONTROL matches is unprintable; isprintable() settles most text without the regex.
    text = html_to_text(value if value.isprintable() else _CONTROL.sub(" ", value))
    return text[:limit]


def item_key(guid: str | None, link: str | None, title: str, summary: str) -> str:
    if guid and guid.strip():
        g = _CONTROL.sub("", guid.strip())
        return "id:" + (g if len(g) <= MAX_KEY else hashlib.sha256(g.encode()).hexdigest())
    canon = canonical_url(link)
    if canon:
        return "url:" + (canon if len(canon) <= MAX_KEY else hashlib.sha256(canon.encode()).hexdigest())
    digest = hashlib.sha256(f"{title}\x1f{summary}".encode("utf-8", "replace")).hexdigest()[:32]
    return "hash:" + digest


def _item_link(entry: RawEntry, base: str | None) -> str | None:
    """The entry's link; a guid promoted to link only when it is itself an absolute URL."""
    raw = entry.link
    if entry.guidislink and raw == entry.guid:
        # "<guid>123</guid>" without isPermaLink="false" is a link by the letter of RSS 2.0, but a bare
        # id resolved against the site would be a made-up address.
        return safe_link(raw)
    return safe_link(raw, base)


def build(raw: RawFeed, *, feed: str, url: str, notes: list[str] | None = None) -> ParsedFeed:
    """Sanitised, identified items from what a parser read; the same for both parse paths."""
    base = safe_link(raw.link) or (url if url.startswith(("http://", "https://")) else None)
    items: list[Item] = []
    seen: set[str] = set()
    duplicates = 0
    for entry in raw.entries:
        title = clean_text(entry.title, MAX_TITLE)
        summary = clean_text(entry.summary, MAX_SUMMARY)
        content = clean_text(" ".join(part for part in entry.content if part), MAX_CONTENT)
        if content == summary:
            content = ""
        link = _item_link(entry, base)
        key = item_key(entry.guid, link, title, summary)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        items.append(
            Item(
                feed=feed,
                key=key,
                title=title,
                link=link,
                summary=summary,
                content=content,
                published=entry.published,
                author=clean_text(entry.author, 200),
                guid=entry.guid,
            )
        )
    ttl = None
    if raw.ttl and raw.ttl.strip().isdigit():
        ttl = int(raw.ttl.strip())
    complaints = [*(notes or []), *([raw.problem] if raw.problem else [])]
    return ParsedFeed(
        title=clean_text(raw.title, MAX_TITLE),
        items=tuple(items),
        ttl_minutes=ttl,
        problem="; ".join(complaints) or None,
        duplicates=duplicates,
    )


@dataclass(frozen=True, slots=True)
class Fallback:
    """The fast path declined a document: what the bounded feedparser child needs, and why."""

    body: bytes  # prepared (see ``prepare``)
    notes: tuple[str, ...]
    reason: str


def first_pass(body: bytes, *, feed: str, url: str, content_type: str | None) -> ParsedFeed | Fallback:
    """The fast path's items, or a Fallback for the bounded feedparser child; FeedParseError for no feed."""
    if not body or not body.strip():
        raise FeedParseError("empty response body", feed_url=url)
    safe_body, notes = prepare(body, content_type)
    attributes = most_attributes(safe_body)
    if attributes > MAX_ATTRIBUTES:  # no feed has them; feedparser is quadratic in them: refuse at once
        raise FeedParseError(
            f"not a usable feed: an element with {attributes} attributes (more than {MAX_ATTRIBUTES})", feed_url=url
        )
    try:
        raw = fastparse.read(safe_body, content_type)
    except fastparse.Unsure as exc:
        return Fallback(safe_body, tuple(notes), exc.reason)
    return build(raw, feed=feed, url=url, notes=notes)


def parse_feed(
    body: bytes, *, feed: str, url: str, content_type: str | None = None, limits: ParseLimits = DEFAULT_LIMITS
) -> ParsedFeed:
    """Parse one feed document; raises FeedParseError when it is not a usable feed or its parse overran."""
    first = first_pass(body, feed=feed, url=url, content_type=content_type)
    if isinstance(first, ParsedFeed):
        return first
    raw = bounded.read(first.body, url=url, content_type=content_type, original=body, limits=limits)
    return build(raw, feed=feed, url=url, notes=list(first.notes))


@dataclass(frozen=True, slots=True)
class Refused:
    """A parse that failed, in a form that survives the trip back from a worker process.

    FeedParseError itself does not: its keyword-only constructor cannot be unpickled, and an exception
    the pool cannot unpickle breaks the whole pool.
    """

    reason: str
    crash: str | None = None  # the traceback, when the parser failed unexpectedly (a bug, not the feed)


def parse_in_worker(body: bytes, name: str, url: str, content_type: str | None) -> ParsedFeed | Fallback | Refused:
    """Entry point for parse workers (thread or process): the fast path only, and it never raises, so
    nothing unpicklable comes back. A Fallback goes on to the bounded feedparser child.

    It lives here, not in the poller, so a spawned worker imports only the parsing stack.
    """
    try:
        return first_pass(body, feed=name, url=url, content_type=content_type)
    except FeedParseError as exc:
        return Refused(exc.reason)
    except Exception as exc:
        return Refused(f"parser failed: {type(exc).__name__}: {exc}", crash=traceback.format_exc())
