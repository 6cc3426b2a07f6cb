"""The fast path's XML layer (the standard library's ElementTree over expat): nesting and text limits,
encodings read from the BOM and XML declaration, nothing from a DTD fetched or expanded, inline XHTML
written exactly as the fast path always wrote it, and item/entry elements found by local name.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer

from daemon.intake import fastparse, xmlread
from daemon.intake.fastparse import Unsure, read
from daemon.intake.rawfeed import RawEntry, RawFeed

RSS = '<rss version="2.0"{ns}><channel><title>Wire</title><link>https://wire.example/</link>{items}</channel></rss>'
ATOM = '<feed xmlns="http://www.w3.org/2005/Atom"{ns}><title>Wire</title><entry><id>e1</id>{body}</entry></feed>'


def rss(items: str, ns: str = "", head: str = "") -> bytes:
    return (head + RSS.format(ns=ns, items=items)).encode()


def item(guid: str = "g1", body: str = "<title>Hello</title>") -> str:
    return f"<item><guid>{guid}</guid>{body}</item>"


def nested(levels: int) -> bytes:
    """An RSS document ``levels`` elements deep (rss, channel, item, then an unknown element nesting)."""
    inner = "<x>" * (levels - 3) + "</x>" * (levels - 3)
    return rss(f"<item><guid>g1</guid>{inner}</item>")


def unsure(body: bytes, content_type: str | None = None) -> str:
    with pytest.raises(Unsure) as refused:
        read(body, content_type)
    return refused.value.reason


class TestNesting:
    def test_256_levels_are_read_and_257_refused(self) -> None:
        """The limit stays where it was: 256 levels of elements are read, one more goes to feedparser."""
        assert [e.guid for e in read(nested(256)).entries] == ["g1"]
        assert unsure(nested(257)) == "nesting deeper than 256 levels"

    def test_100k_levels_are_refused_quickly_without_recursion_error(self) -> None:
        """99,000 nested elements (just under the tag limit, so expat builds them) are refused at once."""
        body = nested(99_000)
        assert body.count(b"<") <= fastparse.MAX_TAGS
        started = time.perf_counter()
        assert unsure(body) == "nesting deeper than 256 levels"
        assert time.perf_counter() - started < 2.0  # ~0.1 s; generous for a busy machine

    def test_deep_document_is_refused_while_it_is_read(self) -> None:
        """Deep nesting is refused before expat reaches the end: ill-formed bytes after it are never read."""
        body = nested(99_000)
        assert unsure(body[: len(body) // 2] + b"<<not xml") == "nesting deeper than 256 levels"

    def test_depth_check_never_recurses(self) -> None:
        """The depth check walks level by level: far below the recursion limit it still refuses."""
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(120)
        try:
            with pytest.raises(Unsure):
                xmlread.parse(b"<r>" + b"<a>" * 5_000 + b"</a>" * 5_000 + b"</r>", "utf-8")
        finally:
            sys.setrecursionlimit(old)

    def test_long_text_node_is_refused(self) -> None:
        """A text node over 10,000,000 characters goes to feedparser, as libxml2's limit sent it."""
        body = rss(item(body=f"<title>{'a' * 10_000_001}</title>"))
        assert unsure(body).startswith("a text node or attribute value over")
        assert read(rss(item(body=f"<title>{'a' * 9_000_000}</title>"))).entries[0].title == "a" * 9_000_000


class TestEncoding:
    def test_latin1_declaration_decodes_latin1(self) -> None:
        """Bytes declared ISO-8859-1 are decoded as Latin-1 (é is one byte)."""
        latin1 = rss(item(body="<title>café</title>")).replace("café".encode(), b"caf\xe9")
        body = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + latin1
        assert read(body).entries[0].title == "café"

    def test_long_document_read_in_chunks_loses_no_character(self) -> None:
        """A document of many 64 KiB chunks, multi-byte characters falling across their edges, reads whole."""
        titles = [f"Ереван {i} café 東京 " + "x" * (i % 7) for i in range(3_000)]
        body = rss("".join(item(f"g{i}", f"<title>{t}</title>") for i, t in enumerate(titles)))
        assert len(body) > 3 * xmlread._CHUNK
        assert [e.title for e in read(body).entries] == [t.strip() for t in titles]

    def test_utf8_bom_outweighs_the_declaration(self) -> None:
        """A UTF-8 BOM wins over a Latin-1 declaration, as libxml2 read it: the text is UTF-8."""
        body = b'\xef\xbb\xbf<?xml version="1.0" encoding="iso-8859-1"?>' + rss(item(body="<title>café</title>"))
        assert read(body).entries[0].title == "café"

    @pytest.mark.parametrize(
        ("head", "reason"),
        [
            ('<?xml version="1.0" encoding="windows-1252"?>', "document encoding windows-1252"),
            ('<?xml version="1.0" encoding="latin1"?>', "document encoding latin1"),
            ('<?xml version="1.0" encoding="utf-16"?>', "document encoding utf-16"),
            ('<?xml encoding="utf-8" version="1.0"?>', "an XML declaration of an unusual shape"),
        ],
    )
    def test_other_declared_encodings_go_to_feedparser(self, head: str, reason: str) -> None:
        """Only UTF-8, US-ASCII and ISO-8859-1 are read here; other names and odd declarations are refused."""
        assert unsure(rss(item(), head=head)) == reason

    def test_utf16_document_goes_to_feedparser(self) -> None:
        """A UTF-16 document (by its BOM) is refused before expat sees it."""
        assert "UTF-16" in unsure(rss(item()).decode().encode("utf-16"))

    def test_non_ascii_byte_in_us_ascii_document_is_refused(self) -> None:
        """A byte above 0x7F in a document declared US-ASCII is ill-formed, as it was for libxml2."""
        body = b'<?xml version="1.0" encoding="US-ASCII"?>' + rss(item()).replace(b"Hello", b"H\xe9llo")
        assert unsure(body).startswith("ill-formed XML")
        ascii_only = b'<?xml version="1.0" encoding="US-ASCII"?>' + rss(item())
        assert read(ascii_only).entries[0].title == "Hello"

    def test_content_type_charset_must_agree(self) -> None:
        """A charset in the content type that differs from the declared encoding sends the feed to feedparser."""
        body = b'<?xml version="1.0" encoding="iso-8859-1"?>' + rss(item())
        assert unsure(body, "application/rss+xml; charset=utf-8").startswith("charset utf-8 in the content type")
        assert read(body, "application/rss+xml; charset=ISO-8859-1").entries[0].guid == "g1"


class TestEntities:
    def test_external_dtd_is_never_fetched(self, httpserver: HTTPServer) -> None:
        """A DOCTYPE naming a DTD on a local server: it gets no request, and an entity it would define is refused."""
        httpserver.expect_request("/rss.dtd").respond_with_data('<!ENTITY nbsp "&#160;">')
        dtd = httpserver.url_for("/rss.dtd")
        head = f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{dtd}">'
        assert unsure(rss(item(body="<title>a&nbsp;b</title>"), head=head)).startswith("ill-formed XML")
        assert read(rss(item(), head=head)).entries[0].title == "Hello"  # without references: read as usual
        assert httpserver.log == []

    def test_internal_subset_expands_nothing(self) -> None:
        """A DOCTYPE with element declarations, comments and PIs is read, and nothing in it reaches the text."""
        head = "<!DOCTYPE rss [<!ELEMENT rss ANY><!-- note --><?pi data?>]>"
        assert read(rss(item(), head=head)).entries[0].title == "Hello"

    def test_attribute_defaults_are_refused(self) -> None:
        """expat would add attributes a DTD defaults (here isPermaLink="false"); such documents are refused."""
        head = '<!DOCTYPE rss [<!ATTLIST guid isPermaLink CDATA "false">]>'
        assert unsure(rss(item("https://wire.example/1"), head=head)) == "attribute list declarations"

    def test_entity_declarations_and_undefined_references_are_refused(self) -> None:
        """Declared entities (billion laughs among them) and references to undeclared ones go to feedparser."""
        laughs = '<!DOCTYPE rss [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        assert unsure(rss(item(body="<title>&b;</title>"), head=laughs)) == "entity declarations"
        assert unsure(rss(item(body="<title>a&eacute;</title>"))).startswith("ill-formed XML")


class TestInlineXhtml:
    def test_children_written_with_their_namespace_declarations(self) -> None:
        """Each child of the div carries its own declarations, then those in scope, as before."""
        div = (
            '<div xmlns="http://www.w3.org/1999/xhtml">a &amp; <b class="x&quot;&#10;">b&amp;&lt;&gt;&#13;</b>tail'
            '<br/><svg:svg xmlns:svg="http://www.w3.org/2000/svg" width="1"><svg:circle r="1"></svg:circle></svg:svg>'
            '<span xml:lang="en" xl:href="u"><!-- c -->é</span></div>'
        )
        feed = read(
            ATOM.format(
                ns=' xmlns:xl="http://www.w3.org/1999/xlink"', body=f'<content type="xhtml">{div}</content>'
            ).encode()
        )
        xhtml, xl, svg = "http://www.w3.org/1999/xhtml", "http://www.w3.org/1999/xlink", "http://www.w3.org/2000/svg"
        assert feed.entries[0].content == (
            f'a &amp; <b xmlns="{xhtml}" xmlns:xl="{xl}" class="x&quot;&#10;">b&amp;&lt;&gt;&#13;</b>tail'
            f'<br xmlns="{xhtml}" xmlns:xl="{xl}"/>'
            f'<svg:svg xmlns:svg="{svg}" xmlns="{xhtml}" xmlns:xl="{xl}" width="1"><svg:circle r="1"/></svg:svg>'
            f'<span xmlns="{xhtml}" xmlns:xl="{xl}" xml:lang="en" xl:href="u">é</span>',
        )

    def test_prefixed_xhtml_keeps_its_prefix(self) -> None:
        """A div written with a prefix is written back with it (and the default namespace in scope)."""
        div = '<h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>x</h:p></h:div>'
        feed = read(ATOM.format(ns="", body=f'<summary type="xhtml">{div}</summary>').encode())
        xhtml, atom = "http://www.w3.org/1999/xhtml", "http://www.w3.org/2005/Atom"
        assert feed.entries[0].summary == f'<h:p xmlns:h="{xhtml}" xmlns="{atom}">x</h:p>'

    @pytest.mark.parametrize(
        "div",
        [
            '<div xmlns="http://www.w3.org/1999/xhtml" xmlns:h="http://www.w3.org/1999/xhtml"><p>x</p></div>',
            '<div xmlns="http://www.w3.org/1999/xhtml"><p xmlns="">x</p></div>',
            '<div xmlns="http://www.w3.org/1999/xhtml"><p><![CDATA[]]></p></div>',
        ],
        ids=["two-prefixes-one-namespace", "undeclared-default", "empty-cdata"],
    )
    def test_markup_it_cannot_write_as_before_is_refused(self, div: str) -> None:
        """Where the original prefix or an empty text node cannot be known, feedparser reads the entry."""
        unsure(ATOM.format(ns="", body=f'<content type="xhtml">{div}</content>').encode())

    def test_text_only_div_needs_no_second_pass(self) -> None:
        """A div holding only text is read from the plain tree."""
        div = '<div xmlns="http://www.w3.org/1999/xhtml">  a &lt; b  </div>'
        feed = read(ATOM.format(ns="", body=f'<content type="xhtml">{div}</content>').encode())
        assert feed.entries[0].content == ("a &lt; b",)


class TestElements:
    def test_items_are_found_by_exact_local_name_in_the_feeds_namespace(self) -> None:
        """<Item> is no item; an item in a foreign namespace is not an entry; an item found elsewhere is refused."""
        foreign = ' xmlns:x="https://x.example/ns"'
        body = rss("<Item><guid>no</guid></Item><x:item><guid>no</guid></x:item>" + item(), ns=foreign)
        assert [e.guid for e in read(body).entries] == ["g1"]
        assert unsure(rss(item() + "<x><item><guid>g2</guid></item></x>")) == "2 item/entry elements, 1 read as entries"

    def test_character_data_as_before(self) -> None:
        """Comments and PIs vanish and the text around them joins; CDATA is text; titles are stripped."""
        body = rss(
            "<item><title>  a<!-- c -->b<?pi x?>c <![CDATA[<d> & e]]>  </title><link>https://wire.example/1</link>"
            "<guid>g1</guid><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>"
        )
        assert read(body) == RawFeed(
            title="Wire",
            link="https://wire.example/",
            entries=(
                RawEntry(
                    title="abc <d> & e",
                    link="https://wire.example/1",
                    guid="g1",
                    guidislink=False,
                    published=datetime(2024, 1, 1, 10, tzinfo=UTC),
                ),
            ),
        )

    def test_attribute_names_are_matched_without_case(self) -> None:
        """IsPermaLink="false" keeps a URL guid from becoming the link; HREF is an Atom link's href."""
        entry = read(rss('<item><guid IsPermaLink="false">https://wire.example/1</guid></item>')).entries[0]
        assert (entry.guid, entry.link, entry.guidislink) == ("https://wire.example/1", None, False)
        entry = read(rss('<item><guid>g1</guid><link HREF="https://wire.example/2"/></item>')).entries[0]
        assert entry.link == "https://wire.example/2"

    def test_xml_base_and_tag_count_still_refuse(self) -> None:
        """xml:base and more than MAX_TAGS tags go to feedparser before any parsing."""
        assert unsure(rss(item(), ns=' xml:base="https://wire.example/"')) == "xml:base"
        many = "<x/>" * (fastparse.MAX_TAGS + 1)
        assert unsure(rss(item(body=f"<title>t</title>{many}"))).startswith("more than")
