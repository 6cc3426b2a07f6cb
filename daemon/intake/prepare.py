"""Bytes made safe to parse, before either parser sees them: entity declarations that could blow up
are broken, NUL bytes dropped, stray invalid UTF-8 replaced; and the attribute count that makes
feedparser quadratic. Pure functions on bytes.
"""

from __future__ import annotations

import re

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
