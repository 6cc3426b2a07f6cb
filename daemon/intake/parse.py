"""Bytes to items: feedparser (run in a worker thread by the caller), sanitising and item identity.

Identity is per feed: guid/id, else the canonical link (tracking parameters stripped), else a hash of
title and summary. Everything that leaves this module is plain text with control characters removed
and links that are absolute http(s) or None.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from daemon.errors import FeedParseError
from daemon.models import Item
from daemon.util.text import html_to_text
from daemon.util.urls import canonical_url, safe_link

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_CONTENT = 50_000
MAX_KEY = 512

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")

# Internal DTD entities are the one way an XML document can grow while it is parsed. feedparser keeps every
# declaration whose value holds no "&", however long, and expat expands it at each reference: an 80 KB
# feed declaring one 20,000-character entity referenced 20,000 times took 1.2 GB and 26 s. Declarations
# short enough to be what feeds really use (``<!ENTITY nbsp "&#160;">``) are kept; every other one is
# broken, so the strict parser gives up on the document and the loose one shows ``&name;`` literally.
_ENTITY_DECL = re.compile(
    rb"<!ENTITY(?=(\s{1,16}[A-Za-z_:][\w.:-]{0,63}\s{1,16}"
    rb"(?:\"(?:&\#x?[0-9A-Fa-f]{1,6};|[^&%<\"]{0,8})\"|'(?:&\#x?[0-9A-Fa-f]{1,6};|[^&%<']{0,8})')\s{0,16}>))?"
)
_BROKEN_ENTITY = b"<!-NTITY"
_WIDE_CODECS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037")  # cp037: EBCDIC
_WIDE_ENTITY = tuple(("<!ENTITY".encode(c), "<!-NTITY".encode(c)) for c in _WIDE_CODECS)
_WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"\x4c\x6f\xa7\x94")  # UTF-16/32 BOMs; EBCDIC "<?xm"
_XML_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
# feedparser's time grows with the square of an element's attribute count: one element with 20,000
# attributes (200 KB) took 19 s, a 10 MiB one would take hours. Real feeds stay far below this.
MAX_ATTRIBUTES = 200
_LONG_TAG = re.compile(r"<[^<>]{1024,}>")  # linear: the spans between angle brackets never overlap
_ATTRIBUTE = re.compile(r"\s[\w:.-]+\s*=\s*[\"']")
_BOM_CODECS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),
)


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


def _keep_tiny_entity(m: re.Match[bytes]) -> bytes:
    return m.group(0) if m.group(1) is not None else _BROKEN_ENTITY


def _is_wide(body: bytes) -> bool:
    """UTF-16/32 or EBCDIC (by BOM or first bytes), where ASCII byte patterns mean nothing."""
    head = body[:4]
    return head.startswith(_WIDE_STARTS) or b"\x00" in head


def _wide_codec(head: bytes) -> str:
    """The codec of a UTF-16/32 or EBCDIC document, from its BOM or where its first NUL bytes sit."""
    for bom, codec in _BOM_CODECS:
        if head.startswith(bom):
            return codec
    if head[:2] == b"\x00\x00":
        return "utf-32-be"
    if head[:1] == b"\x00":
        return "utf-16-be"
    return "utf-32-le" if head[1:3] == b"\x00\x00" else "utf-16-le"


def most_attributes(body: bytes) -> int:
    """The largest number of attributes on one element (only elements longer than 1 KiB are counted)."""
    text = body.decode(_wide_codec(body[:4]), "replace") if _is_wide(body) else body.decode("latin-1")
    return max((len(_ATTRIBUTE.findall(tag)) for tag in _LONG_TAG.findall(text)), default=0)


def _repair_utf8(body: bytes, content_type: str | None) -> tuple[bytes, int]:
    """A UTF-8 document with a few invalid bytes, each replaced by U+FFFD; and how many there were.

    Left alone, feedparser re-decodes the *whole* document as windows-1252 or iso-8859-2 when one byte is
    not UTF-8: a Russian feed with one stray byte turned into mojibake that no rule term could match.
    Only when everything declared says UTF-8 and valid multi-byte characters outnumber the bad bytes; a
    Latin-1 document mislabelled as UTF-8 has no valid ones and keeps feedparser's fallback.
    """
    declared = [m.group(1).decode().lower() for m in [_XML_ENCODING.match(body)] if m]
    declared += [m.group(1).lower() for m in [_CHARSET.search(content_type or "")] if m]
    if any(name not in _UTF8_NAMES for name in declared):
        return body, 0
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        bad = text.count("\ufffd")
        good = len(text) - len(text.encode("ascii", "ignore")) - bad
        if good > bad:
            return text.encode("utf-8"), bad
    return body, 0


def prepare(body: bytes, content_type: str | None = None) -> tuple[bytes, list[str]]:
    """Bytes safe to hand to feedparser, and what was changed to make them so.

    Entity declarations that could blow up are broken, NUL bytes dropped, stray invalid UTF-8 replaced.
    """
    notes: list[str] = []
    if _is_wide(body):
        found = [pair for pair in _WIDE_ENTITY if pair[0] in body]
        for plain, broken in found:
            body = body.replace(plain, broken)
        return body, ["entity declarations removed"] if found else []
    if b"<!ENTITY" in body:
        body = _ENTITY_DECL.sub(_keep_tiny_entity, body)
        if _BROKEN_ENTITY in body:
            notes.append("entity declarations removed")
    if b"\x00" in body:
        notes.append(f"{body.count(0)} NUL bytes removed")
        body = body.replace(b"\x00", b"")  # never valid in XML; they only send the strict parser away
    body, bad = _repair_utf8(body, content_type)
    if bad:
        notes.append(f"{bad} invalid UTF-8 {'byte' if bad == 1 else 'bytes'} replaced")
    return body, notes


def _item_link(entry: Mapping[str, Any], base: str | None) -> str | None:
    """The entry's link; a guid feedparser promoted to link only when it is itself an absolute URL."""
    raw = entry.get("link")
    if entry.get("guidislink") and raw == entry.get("id"):
        # "<guid>123</guid>" without isPermaLink="false" is a link by the letter of RSS 2.0, but a bare
        # id resolved against the site would be a made-up address.
        return safe_link(raw)
    return safe_link(raw, base)


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def parse_feed(body: bytes, *, feed: str, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one feed document; raises FeedParseError when it is not a usable feed."""
    if not body or not body.strip():
        raise FeedParseError("empty response body", feed_url=url)
    headers = {"content-type": content_type} if content_type else {}
    safe_body, notes = prepare(body, content_type)
    attributes = most_attributes(safe_body)
    if attributes > MAX_ATTRIBUTES:
        raise FeedParseError(
            f"not a usable feed: an element with {attributes} attributes (more than {MAX_ATTRIBUTES})", feed_url=url
        )
    try:
        parsed = feedparser.parse(
            safe_body,
            response_headers=headers,
            sanitize_html=False,  # we reduce everything to text ourselves
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is meant never to raise; if it does, it is this feed's problem
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {exc}", feed_url=url) from exc

    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    complaints = list(notes)
    if parsed.get("bozo"):
        bozo_exc = parsed.get("bozo_exception")
        complaints.append(f"{type(bozo_exc).__name__}: {bozo_exc}" if bozo_exc else "ill-formed feed")
    problem = "; ".join(complaints) or None
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
        link = _item_link(entry, base)
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


@dataclass(frozen=True, slots=True)
class Refused:
    """A parse that failed, in a form that survives the trip back from a worker process.

    FeedParseError itself does not: its keyword-only constructor cannot be unpickled, and an exception
    the pool cannot unpickle breaks the whole pool.
    """

    reason: str
    crash: str | None = None  # the traceback, when the parser failed unexpectedly (a bug, not the feed)


def parse_in_worker(body: bytes, name: str, url: str, content_type: str | None) -> ParsedFeed | Refused:
    """Entry point for parse workers (thread or process): never raises, so nothing unpicklable comes back.

    It lives here, not in the poller, so a spawned worker imports only the parsing stack.
    """
    try:
        return parse_feed(body, feed=name, url=url, content_type=content_type)
    except FeedParseError as exc:
        return Refused(exc.reason)
    except Exception as exc:
        return Refused(f"parser failed: {type(exc).__name__}: {exc}", crash=traceback.format_exc())
