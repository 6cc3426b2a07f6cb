"""Bytes to items: feedparser (run in a worker thread by the caller), sanitising and item identity.

Identity is per feed: guid/id, else the canonical link (tracking parameters stripped), else a hash of
title and summary. Everything that leaves this module is plain text with control characters removed
and links that are absolute http(s) or None.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from daemon.errors import FeedParseError
from daemon.models import Item
from daemon.text import html_to_text
from daemon.urls import canonical_url, safe_link

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_CONTENT = 50_000
MAX_KEY = 512

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    items: tuple[Item, ...]
    ttl_minutes: int | None = None
    problem: str | None = None  # feedparser's complaint when the feed was ill-formed but usable
    duplicates: int = 0  # entries dropped because their identity repeated inside this document


def clean_text(value: str, limit: int) -> str:
    """Markup to one line of plain text, control characters removed, bounded length."""
    text = html_to_text(_CONTROL.sub(" ", value))
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


def _published(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _content(entry: Mapping[str, Any]) -> str:
    parts = []
    for block in entry.get("content") or []:
        value = block.get("value") if isinstance(block, Mapping) else None
        if value:
            parts.append(value)
    return " ".join(parts)


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def parse_feed(body: bytes, *, feed: str, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one feed document; raises FeedParseError when it is not a usable feed."""
    if not body or not body.strip():
        raise FeedParseError("empty response body", feed_url=url)
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(
            body,
            response_headers=headers,
            sanitize_html=False,  # we reduce everything to text ourselves
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is meant never to raise; if it does, it is this feed's problem
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {exc}", feed_url=url) from exc

    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    problem = None
    if parsed.get("bozo"):
        bozo_exc = parsed.get("bozo_exception")
        problem = f"{type(bozo_exc).__name__}: {bozo_exc}" if bozo_exc else "ill-formed feed"
    if not entries and not version:
        if _looks_like_html(body) or (content_type or "").startswith("text/html"):
            raise FeedParseError("not a feed: the server returned an HTML page", feed_url=url)
        raise FeedParseError(f"not a feed: {problem or 'no RSS/Atom/RDF root element'}", feed_url=url)

    meta = parsed.get("feed") or {}
    base = safe_link(meta.get("link")) or (url if url.startswith(("http://", "https://")) else None)
    items: list[Item] = []
    seen: set[str] = set()
    duplicates = 0
    for entry in entries:
        title = clean_text(entry.get("title") or "", MAX_TITLE)
        summary = clean_text(entry.get("summary") or entry.get("description") or "", MAX_SUMMARY)
        content = clean_text(_content(entry), MAX_CONTENT)
        if content == summary:
            content = ""
        link = safe_link(entry.get("link"), base)
        guid = entry.get("id") or entry.get("guid")
        key = item_key(guid if isinstance(guid, str) else None, link, title, summary)
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
                published=_published(entry),
                author=clean_text(entry.get("author") or "", 200),
                guid=guid if isinstance(guid, str) else None,
            )
        )
    ttl = None
    raw_ttl = meta.get("ttl")
    if raw_ttl and str(raw_ttl).strip().isdigit():
        ttl = int(str(raw_ttl).strip())
    return ParsedFeed(
        title=clean_text(meta.get("title") or "", MAX_TITLE),
        items=tuple(items),
        ttl_minutes=ttl,
        problem=problem,
        duplicates=duplicates,
    )
