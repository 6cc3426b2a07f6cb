"""The feedparser path: lenient, slow (~10 ms for a 27 KB feed, quadratic on some hostile input), so it
runs only when the fast path is unsure, and then in a bounded subprocess (see ``bounded``).

Importing this module imports feedparser (~20 ms, several MB): only the fallback worker does.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from daemon.errors import FeedParseError
from daemon.intake.rawfeed import RawEntry, RawFeed


def _published(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get, not the entry's own: FeedParserDict answers a missing updated_parsed with
        # published_parsed (and a DeprecationWarning).
        value = dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _content(entry: Mapping[str, Any]) -> tuple[str, ...]:
    parts = []
    for block in entry.get("content") or []:
        value = block.get("value") if isinstance(block, Mapping) else None
        if value:
            parts.append(value)
    return tuple(parts)


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def read(body: bytes, *, url: str, content_type: str | None = None, original: bytes | None = None) -> RawFeed:
    """Read one (prepared) document with feedparser; FeedParseError when it is not a usable feed.

    ``original`` is the body as fetched, for telling an HTML page from a broken feed.
    """
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(
            body,
            response_headers=headers,
            sanitize_html=False,  # we reduce everything to text ourselves
            resolve_relative_uris=False,
        )
    except MemoryError:
        raise  # the bounded child reports it as the memory cap
    except Exception as exc:  # feedparser is meant never to raise; if it does, it is this feed's problem
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {exc}", feed_url=url) from exc
    entries = parsed.get("entries") or []
    problem = None
    if parsed.get("bozo"):
        bozo_exc = parsed.get("bozo_exception")
        problem = f"{type(bozo_exc).__name__}: {bozo_exc}" if bozo_exc else "ill-formed feed"
    if not entries and not parsed.get("version"):
        if _looks_like_html(original or body) or (content_type or "").startswith("text/html"):
            raise FeedParseError("not a feed: the server returned an HTML page", feed_url=url)
        raise FeedParseError(f"not a feed: {problem or 'no RSS/Atom/RDF root element'}", feed_url=url)
    meta = parsed.get("feed") or {}
    raw_ttl = meta.get("ttl")
    return RawFeed(
        title=_str(meta.get("title")),
        link=meta.get("link") if isinstance(meta.get("link"), str) else None,
        ttl=str(raw_ttl) if raw_ttl is not None else None,
        problem=problem,
        entries=tuple(
            RawEntry(
                title=_str(e.get("title")),
                link=e.get("link") if isinstance(e.get("link"), str) else None,
                guid=g if isinstance(g := (e.get("id") or e.get("guid")), str) else None,
                guidislink=bool(e.get("guidislink")),
                summary=_str(e.get("summary") or e.get("description")),
                content=_content(e),
                published=_published(e),
                author=_str(e.get("author")),
            )
            for e in entries
        ),
    )
