"""Well-formed XML to an element tree for the fast parse path, on the standard library's C ElementTree
(expat), with the limits and the encoding rules the fast path promises: the bytes are decoded exactly as
their BOM or XML declaration says (UTF-8, US-ASCII or ISO-8859-1 only), nothing is ever fetched or
expanded, nesting stops at 256 levels and text at 10,000,000 characters (libxml2's defaults, which the
fast path was first built on). Anything else is ``Unsure``: feedparser decides instead.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import chain
from typing import Any

__all__ = ["MAX_DEPTH", "Namespaces", "Unsure", "declared_encoding", "parse", "parse_with_namespaces"]

MAX_DEPTH = 256  # levels of elements, the root counting as one
MAX_TEXT = 10_000_000  # characters in one text node or attribute value
_CODECS = {"utf-8": "utf-8", "us-ascii": "us-ascii", "iso-8859-1": "iso-8859-1"}
# The XML declaration as XML 1.0 spells it (version, then encoding, then standalone). One expat would
# read differently, or not at all, is refused rather than guessed at.
_DECLARATION = re.compile(
    rb"<\?xml\s+version\s*=\s*([\"'])1\.[0-9]+\1"
    rb"(?:\s+encoding\s*=\s*([\"'])([A-Za-z][A-Za-z0-9._-]*)\2)?"
    rb"(?:\s+standalone\s*=\s*([\"'])(?:yes|no)\4)?\s*\?>"
)
_WIDE = (b"\xff\xfe", b"\xfe\xff", b"\x4c\x6f\xa7\x94")  # UTF-16/32 BOMs; EBCDIC "<?xm"
_CHUNK = 64 * 1024  # bytes fed to expat at a time: a deep chain is caught within one chunk's elements
# The C accelerator's TreeBuilder answers close() with the root built so far and nothing else (the
# pure-Python one, never used on CPython, asserts the document is complete: it gets only the final check).
_PEEK = "_flush" not in vars(ET.TreeBuilder)


class Unsure(Exception):
    """The fast path will not vouch for this document; the reason says why (for logs and tests)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Each element's namespace declarations in document order, as (prefix, URI) with "" for the default
# namespace, and its parent: what serialising inline XHTML needs and ElementTree does not keep.
Namespaces = dict[int, tuple[list[tuple[str, str]], "ET.Element | None"]]


def declared_encoding(body: bytes) -> str:
    """The document's encoding, lower-case, as its BOM or XML declaration gives it ("utf-8" without one)."""
    if body.startswith(b"\xef\xbb\xbf"):
        return "utf-8"  # a UTF-8 BOM outweighs the declaration (libxml2 and expat agree)
    if body.startswith(_WIDE) or b"\x00" in body[:4]:
        raise Unsure("document encoding UTF-16, UTF-32 or EBCDIC")
    if body.startswith(b"<?xml") and body[5:6] in (b" ", b"\t", b"\r", b"\n"):
        m = _DECLARATION.match(body)
        if m is None:
            raise Unsure("an XML declaration of an unusual shape")
        return m.group(3).decode("ascii").lower() if m.group(3) else "utf-8"
    return "utf-8"


def _parser(encoding: str, builder: ET.TreeBuilder | None = None) -> ET.XMLParser:
    # The encoding given here overrides the document's own declaration: expat decodes exactly what was
    # checked. A bare TreeBuilder drops comments and processing instructions, and expat reads no DTD,
    # fetches nothing, and treats a reference to an undeclared entity as an error.
    return ET.XMLParser(target=builder or ET.TreeBuilder(), encoding=_CODECS[encoding])


def _open_depth(root: ET.Element) -> int:
    """How deep the last-child path goes (the elements still open lie on it), counting at most one past the limit."""
    depth = 1
    while len(root) and depth <= MAX_DEPTH:
        root = root[-1]
        depth += 1
    return depth


def _checked(root: ET.Element, size: int) -> ET.Element:
    level = [root]
    for _ in range(MAX_DEPTH):  # level by level in C: at most 256 steps, whatever the depth
        level = list(chain.from_iterable(level))
        if not level:
            break
    else:
        raise Unsure(f"nesting deeper than {MAX_DEPTH} levels")
    if size > MAX_TEXT and any(_long(el) for el in root.iter()):  # text only that long in a body that long
        raise Unsure(f"a text node or attribute value over {MAX_TEXT:,} characters")
    return root


def _long(el: ET.Element) -> bool:
    texts = (el.text or "", el.tail or "", *el.attrib.values())
    return any(len(t) > MAX_TEXT for t in texts)


def parse(body: bytes, encoding: str) -> ET.Element:
    """The document's root element; ``Unsure`` when it is ill-formed or beyond the limits."""
    builder = ET.TreeBuilder()
    parser = _parser(encoding, builder)
    view = memoryview(body)
    try:
        # expat has no nesting limit: a long document is fed in chunks, and one that goes deep is refused
        # while it is read (a chain closed within one chunk is caught by the final check, at most a
        # chunk's worth of elements later).
        for start in range(0, len(body), _CHUNK):
            parser.feed(view[start : start + _CHUNK])
            if start + _CHUNK < len(body) and _PEEK:
                so_far = builder.close()  # the C TreeBuilder's close() only returns the root built so far
                if so_far is not None and _open_depth(so_far) > MAX_DEPTH:
                    raise Unsure(f"nesting deeper than {MAX_DEPTH} levels")
        root = parser.close()
    except (ET.ParseError, ValueError) as exc:
        raise Unsure(f"ill-formed XML: {exc}") from None
    return _checked(root, len(body))


def parse_with_namespaces(body: bytes, encoding: str) -> tuple[ET.Element, Namespaces]:
    """``parse``, also recording every element's namespace declarations and parent (slower: events)."""
    # The text as ``parse`` decoded it: fed as str, expat reads it as such whatever the declaration says.
    text = body.decode(_CODECS[encoding])
    if "<![CDATA[]]>" in text:  # libxml2 kept it as an empty text node: <p></p>, where ours has none: <p/>
        raise Unsure("an empty CDATA section near inline XHTML")
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start-ns", "start", "end"))
    spaces: Namespaces = {}
    pending: list[tuple[str, str]] = []
    stack: list[ET.Element] = []
    try:
        parser.feed(text)
        events: list[tuple[str, Any]] = list(parser.read_events())  # type: ignore[arg-type]
        parser.close()  # raises on a document that ends too early
    except (ET.ParseError, ValueError) as exc:
        raise Unsure(f"ill-formed XML: {exc}") from None
    for event, item in events:
        if event == "start-ns":
            pending.append(item)
        elif event == "start":
            spaces[id(item)] = (pending, stack[-1] if stack else None)
            pending = []
            stack.append(item)
        else:
            stack.pop()
    root = next(item for event, item in events if event == "start")
    return _checked(root, len(body)), spaces
