"""The fast parse path: the standard library's C ElementTree (expat, see ``xmlread``) reads well-formed
RSS 2.0/0.9x, RSS 1.0 and Atom in well under a millisecond per typical feed (feedparser takes ~10 ms), with
hard limits, and gives up (``Unsure``) on anything it does not read exactly as feedparser would — the
caller then falls back to feedparser.

It reads the fields feedwatch uses (title, link, guid, summary, content, dates, author) with feedparser's
own rules for which element wins: a permalink guid becomes the link only when no link came before it,
the shallowest non-empty title wins over ``media:title``, the last alternate HTML link wins. Everything
it is unsure about — ill-formed XML, nesting beyond 256 levels, DTD declarations, ``xml:base``, unescaped
markup in RSS text, repeated summaries, a date in an unusual shape, a non-XML content type, more item/entry
elements than it found entries — is a reason to fall back, never a guess.
"""

from __future__ import annotations

import contextlib
import html
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from operator import attrgetter

from daemon.intake import xmlread
from daemon.intake.feeddates import UnsureDate, parse_date
from daemon.intake.rawfeed import RawEntry, RawFeed
from daemon.intake.xmlread import Namespaces, Unsure

__all__ = ["MAX_TAGS", "Unsure", "read"]

# More tags than any real feed has (1,000 items with rich CDATA content stay below 100,000); above it the
# tree alone could take hundreds of MB, so such a document goes to the bounded fallback instead.
MAX_TAGS = 200_000

CORE = frozenset(uri.lower() for uri in {
    "", "http://backend.userland.com/rss", "http://blogs.law.harvard.edu/tech/rss", "http://purl.org/rss/1.0/",
    "http://my.netscape.com/rdf/simple/0.9/", "http://example.com/newformat#", "http://example.com/necho",
    "http://purl.org/echo/", "uri/of/echo/namespace#", "http://purl.org/pie/", "http://purl.org/atom/ns#",
    "http://www.w3.org/2005/Atom", "http://purl.org/rss/1.0/modules/rss091#",
})  # fmt: skip  # every namespace feedparser reads as the feed's own (its "" prefix)
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_MEDIA = frozenset({"http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss"})
_ITUNES = frozenset({"http://www.itunes.com/dtds/podcast-1.0.dtd", "http://example.com/dtds/podcast-1.0.dtd"})
_XHTML = "http://www.w3.org/1999/xhtml"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_ABOUT = f"{{{_RDF}}}about"
_ATOM = frozenset({"http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#"})

_DATE_SLOTS = {
    **dict.fromkeys([("", "pubdate"), ("", "published"), ("", "issued"), (_DCTERMS, "issued")], "published"),
    **dict.fromkeys([("", "updated"), ("", "modified"), ("", "lastbuilddate"), (_DC, "date"), (_DCTERMS, "modified")],
                    "updated"),
    **dict.fromkeys([("", "created"), (_DCTERMS, "created")], "created"),
}  # fmt: skip
_SUMMARY = {("", "description"), ("", "summary"), ("", "abstract"), (_DC, "description"), ("media", "description"),
            ("itunes", "summary")}  # fmt: skip
_AUTHOR = {("", "author"), (_DC, "creator"), (_DC, "author"), ("itunes", "author")}
# Elements that would change an entry's fields if feedparser met them below a direct child of the entry.
_FIELDS = frozenset({"title", "link", "guid", "id", "description", "summary", "content", "encoded", "pubdate",
                     "published", "updated", "issued", "modified", "created", "date", "creator", "item", "entry",
                     "abstract", "fullitem", "body", "lastbuilddate"})  # fmt: skip
_NESTS_FIELDS = frozenset({"author", "contributor", "source"})  # feedparser keeps their inner fields apart
# What a direct child of an entry is, by its (namespace key, local name); the key sets above are disjoint.
_KINDS = {
    ("", "title"): "title", (_DC, "title"): "title", ("media", "title"): "media-title", ("", "link"): "link",
    ("", "guid"): "guid", ("", "id"): "guid", ("", "content"): "content", (_CONTENT, "encoded"): "content",
    **dict.fromkeys(_SUMMARY, "summary"), **dict.fromkeys(_DATE_SLOTS, "date"), **dict.fromkeys(_AUTHOR, "author"),
}  # fmt: skip
_ENTRY_KEYS = frozenset({("", "item"), ("", "entry")})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_XML_MEDIA = re.compile(r"(?:application|text)/(?:xml|[\w.+-]+\+xml)")
_BASE_ATTR = re.compile(rb"\s(?:xml:)?base\s*=", re.I)
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_AMP_REF = re.compile(r"&([A-Za-z0-9_]+);")
_CP1252 = {b: bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_C1 = re.compile("[\x80-\x9f]")  # the only characters _CP1252 maps
_NAMES: dict[str, tuple[str, str]] = {}  # tag -> _split(tag); bounded, tags repeat across feeds
_ENTRY_TAGS: dict[str, bool] = {}  # tag -> whether it is an item/entry; bounded like _NAMES
_TAG = attrgetter("tag")
Element = ET.Element


class _NeedsNamespaces(Exception):
    """Inline XHTML met on the plain tree: read again with namespace declarations recorded."""


def _name(tag: str) -> tuple[str, str]:
    """(namespace key, lower-case local name); the key is "" for the feed's own namespaces."""
    known = _NAMES.get(tag)
    if known is None:
        known = _split(tag)
        if len(_NAMES) < 10_000:
            _NAMES[tag] = known
    return known


def _split(tag: str) -> tuple[str, str]:
    if tag[:1] != "{":
        return "", tag.lower()
    ns, _, local = tag[1:].partition("}")
    low = ns.lower()
    if low in CORE:
        return "", local.lower()
    if low in _MEDIA:
        return "media", local.lower()
    if low in _ITUNES:
        return "itunes", local.lower()
    return low, local.lower()


def _is_entry(tag: str) -> bool:
    """An <item> or <entry> (local name as written) in the feed's own namespace."""
    known = _ENTRY_TAGS.get(tag)
    if known is None:
        known = tag.rpartition("}")[2] in ("item", "entry") and _name(tag) in _ENTRY_KEYS
        if len(_ENTRY_TAGS) < 10_000:
            _ENTRY_TAGS[tag] = known
    return known


def _attr(el: Element, name: str) -> str | None:
    """An attribute by case-insensitive name, as feedparser lower-cases them."""
    value = el.get(name)
    if value is not None:
        return str(value)
    for key in el.keys():  # noqa: SIM118 (an element iterates its children; keys() are attribute names)
        if key.lower() == name:
            return str(el.get(key))
    return None


def _content_type(el: Element, default: str) -> str:
    value = (_attr(el, "type") or default).lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}.get(
        value, value
    )


class _Doc:
    """Per-document settings feedparser applies to every text value."""

    def __init__(self, utf8: bool, atom10: bool, spaces: Namespaces | None) -> None:
        self.utf8 = utf8
        self.atom10 = atom10
        self.spaces = spaces  # namespace declarations, recorded only when inline XHTML needs them

    def fix(self, value: str) -> str:
        """feedparser's repair of UTF-8 read as Latin-1, and its windows-1252 mapping of C1 controls."""
        if value.isascii():
            return value
        if self.utf8:
            with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                value = value.encode("iso-8859-1").decode("utf-8")
        return value.translate(_CP1252) if _C1.search(value) else value  # translate goes char by char

    def text(self, el: Element) -> str:
        """The text of a text construct, inline XHTML serialised as markup."""
        if _attr(el, "mode") is not None:
            raise Unsure("Atom 0.3 content mode")
        if len(el):
            if _content_type(el, "text/plain") != "application/xhtml+xml" or not self.atom10:
                raise Unsure("markup inside a text element")
            children = list(el)
            lone_div = len(children) == 1 and _name(children[0].tag) in (("", "div"), (_XHTML, "div"))
            if not lone_div or (el.text or "").strip() or (children[0].tail or "").strip():
                raise Unsure("inline XHTML without one wrapping div")
            div = children[0]
            if len(div) and self.spaces is None:
                raise _NeedsNamespaces
            inner = html.escape(div.text or "", quote=False)
            if len(div):
                from daemon.intake.xhtml import serialize  # rare in real feeds

                assert self.spaces is not None
                inner += "".join(serialize(c, self.spaces) for c in div)
            return self.fix(inner.strip())
        return self.fix((el.text or "").strip())


def _uri(value: str) -> str:
    """feedparser's repair of extra slashes after ``scheme://`` (``_URI_FIXER.sub(r"\1\3", ...)``)."""
    value = value.strip()
    m = _URI_FIXER.match(value)
    return value[: m.end(1)] + value[m.end(2) :] if m is not None and m.end(2) > m.end(1) else value


def _amp(value: str) -> str:
    return _AMP_REF.sub(r"&\1", value) if "&" in value else value


def _date(el: Element, doc: _Doc) -> datetime | None:
    try:
        return parse_date(doc.fix(el.text or ""))
    except UnsureDate as exc:
        raise Unsure(str(exc)) from None


class _EntryReader:
    """One entry's elements in document order, applying feedparser's rules for which value wins."""

    def __init__(self, el: Element, doc: _Doc) -> None:
        self.doc = doc
        # Titles, summaries and contents in document order with their depth below the entry: which one
        # wins depends on order and depth (see ``_title`` and ``_texts``).
        self.events: list[tuple[str, int, str, str]] = []  # (kind, depth, value, content type)
        self.dates: dict[str, datetime | None] = {}
        self.link: str | None = None
        self.guid = _attr(el, _RDF_ABOUT)  # RSS 1.0 items are identified by rdf:about
        self.guidislink = False
        self.guids = 0
        self.author = ""
        for child in el:
            self._child(child, _name(child.tag))

    def _child(self, child: Element, key: tuple[str, str]) -> None:
        kind = _KINDS.get(key)
        if kind is None:
            ns, local = key
            if local in ("fullitem", "body") and ns in ("", _XHTML):
                raise Unsure(f"<{local}> as entry content")
            if len(child) and local not in _NESTS_FIELDS:
                self._nested(child, 2)
        elif kind == "title" or kind == "media-title" or kind == "summary":
            self.events.append((kind, 1, self.doc.text(child), ""))
        elif kind == "link":
            self._link(child)
        elif kind == "guid":
            self._guid(child)
        elif kind == "date":
            self.dates[_DATE_SLOTS[key]] = _date(child, self.doc)
        elif kind == "content":
            ctype = _content_type(child, "text/html" if key[0] == _CONTENT else "text/plain")
            self.events.append(("content", 1, self.doc.text(child), ctype))
        elif not self.author:  # kind == "author"
            name = next((c for c in child if _name(c.tag) == ("", "name")), None) if len(child) else child
            self.author = self.doc.fix(((name.text if name is not None else "") or "").strip())

    def _nested(self, el: Element, depth: int) -> None:
        """Below a direct child (media:group and the like): media:title and summaries count, other fields refuse."""
        for sub in el:
            key = _name(sub.tag)
            if key == ("media", "title"):
                self.events.append(("media-title", depth, self.doc.text(sub), ""))
            elif key in _SUMMARY:
                self.events.append(("summary", depth, self.doc.text(sub), ""))
            elif key[1] in _FIELDS and key[0] in ("", _DC, _DCTERMS, _CONTENT):
                raise Unsure(f"<{key[1]}> nested inside <{_name(el.tag)[1]}>")
            elif len(sub):
                self._nested(sub, depth + 1)

    def _link(self, child: Element) -> None:
        named = bool(child.keys())  # RSS links have no attributes at all
        href = _attr(child, "href") if named else None
        if href is None:
            if (named and (_attr(child, "url") is not None or _attr(child, "uri") is not None)) or len(child):
                raise Unsure("a link element of an unusual shape")
            self.link = _amp(self.doc.fix(_uri(child.text or "")).replace("&amp;", "&"))
            return
        rel = (_attr(child, "rel") or "alternate").lower()
        kind = _content_type(child, "application/atom+xml" if rel == "self" else "text/html")
        if rel == "alternate" and kind in _HTML_TYPES:
            self.link = _uri(href)

    def _guid(self, child: Element) -> None:
        if len(child):
            raise Unsure("markup inside a guid")
        self.guids += 1
        permalink = (_attr(child, "ispermalink") or "true") == "true"
        self.guid = self.doc.fix(_uri(child.text or "") if permalink else (child.text or "").strip())
        # A permalink guid stands in for the link only when no link came before it (RSS 2.0).
        self.guidislink = permalink and self.link is None
        if self.guidislink:
            self.link = self.guid

    def _title(self) -> str:
        """A title is skipped when a non-empty one was kept at its depth or above; media:title never blocks."""
        title, kept_depth, block_depth = "", 0, 0
        for kind, depth, value, _ in self.events:
            if kind not in ("title", "media-title") or 0 < block_depth <= depth:
                continue
            if not kept_depth or depth <= kept_depth:
                title, kept_depth = value, depth
            if value and kind == "title":
                block_depth = depth
        return title

    def _texts(self) -> tuple[str, tuple[str, ...]]:
        """Summary and contents: a second summary while no content was seen becomes content; the first
        text or HTML content fills an absent summary; a summary replaces one only from its depth or above.
        """
        summary: str | None = None
        summary_depth = 0
        has_content = False
        contents: list[str] = []
        for kind, depth, value, ctype in self.events:
            if kind == "content":
                has_content = True
                contents.append(value)
                if summary is None and (ctype == "text/plain" or ctype in _HTML_TYPES):
                    summary = value
            elif kind == "summary":
                if summary is not None and not has_content:
                    has_content = True
                    contents.append(value)
                elif not summary_depth or depth <= summary_depth:
                    summary, summary_depth = value, depth
        return summary or "", tuple(contents)

    def entry(self) -> RawEntry:
        if self.guids > 1:
            raise Unsure("more than one guid/id in an entry")
        summary, contents = self._texts()
        return RawEntry(
            title=self._title(),
            link=self.link,
            guid=self.guid,
            guidislink=self.guidislink,
            summary=summary,
            content=contents,
            published=self.dates.get("published") or self.dates.get("updated") or self.dates.get("created"),
            author=self.author,
        )


def _channel(el: Element, doc: _Doc) -> tuple[str, str | None, str | None]:
    """Feed title, link and ttl from the direct children of the channel/feed element."""
    titles: list[str] = []
    link: str | None = None
    ttl: str | None = None
    for child in el:
        key = _name(child.tag)
        if key in (("", "title"), (_DC, "title")) and not len(child):
            titles.append(doc.fix((child.text or "").strip()))
        elif key == ("", "link"):
            href = _attr(child, "href")
            if href is None:
                link = _amp(doc.fix(_uri(child.text or "")))
            elif (_attr(child, "rel") or "alternate").lower() == "alternate" and _content_type(
                child, "text/html"
            ) in _HTML_TYPES:
                link = _uri(href)
        elif key == ("", "ttl"):
            ttl = (child.text or "").strip()
    return next((t for t in titles if t), ""), link, ttl


def _check_encoding(body: bytes, declared: str, content_type: str | None) -> None:
    """Refuse the combinations where feedparser's reading of the bytes could differ from ours."""
    if declared not in ("utf-8", "us-ascii", "iso-8859-1"):
        raise Unsure(f"document encoding {declared}")
    if not content_type:
        return
    media, _, params = content_type.partition(";")
    if not _XML_MEDIA.fullmatch(media.strip().lower()):
        raise Unsure(f"content type {media.strip()[:60]}")
    charset = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", params, re.I)
    if charset:
        if charset.group(1).lower() != declared:
            raise Unsure(f"charset {charset.group(1)[:40]} in the content type, {declared} in the document")
    elif media.strip().lower().startswith("text/") and not body.isascii():
        raise Unsure("text/* content type without a charset on a non-ASCII document")


def read(body: bytes, content_type: str | None = None) -> RawFeed:
    """Read one feed document; raises ``Unsure`` whenever feedparser should decide instead."""
    if body.count(b"<") > MAX_TAGS:
        raise Unsure(f"more than {MAX_TAGS:,} tags")
    if (b"base" in body or b"BASE" in body or b"Base" in body) and _BASE_ATTR.search(body):
        raise Unsure("xml:base")
    if b"<!ENTITY" in body:  # declared entities stay unexpanded here; feedparser expands the tiny ones
        raise Unsure("entity declarations")
    if b"<!ATTLIST" in body:  # expat would add the default attributes a DTD declares
        raise Unsure("attribute list declarations")
    declared = xmlread.declared_encoding(body)
    _check_encoding(body, declared, content_type)
    try:
        return _read(xmlread.parse(body, declared), declared, None)
    except _NeedsNamespaces:
        root, spaces = xmlread.parse_with_namespaces(body, declared)
        return _read(root, declared, spaces)


def _read(root: Element, declared: str, spaces: Namespaces | None) -> RawFeed:
    ns, local = _name(root.tag)
    if ns == "" and local == "rss":
        channel = next((c for c in root if _name(c.tag) == ("", "channel")), None)
        if channel is None:
            raise Unsure("rss without a channel")
        containers = [channel]
        atom10 = False
    elif ns == _RDF and local == "rdf":
        channel = next((c for c in root if _name(c.tag) == ("", "channel")), None)
        if channel is None:
            raise Unsure("RDF without a channel")
        containers = [channel, root]
        atom10 = False
    elif ns == "" and local == "feed" and root.tag[1:].partition("}")[0] in _ATOM:
        channel = root
        containers = [root]
        atom10 = root.tag.startswith("{http://www.w3.org/2005/Atom}")
    else:
        raise Unsure(f"root element <{local}>")
    doc = _Doc(utf8=declared == "utf-8", atom10=atom10, spaces=spaces)
    title, link, ttl = _channel(channel, doc)
    entries = [_EntryReader(el, doc).entry() for container in containers for el in container if _is_entry(el.tag)]
    # Every item/entry element anywhere, counted in C by tag; nested ones were not read as entries.
    found = sum(n for tag, n in Counter(map(_TAG, root.iter())).items() if _is_entry(tag))
    if found != len(entries):
        raise Unsure(f"{found} item/entry elements, {len(entries)} read as entries")
    return RawFeed(title=title, link=link, entries=tuple(entries), ttl=ttl)
