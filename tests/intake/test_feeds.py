"""Feed parsing: identity per feed, sanitising, and clear errors for things that are not feeds."""

from __future__ import annotations

import random

import pytest

from daemon.errors import FeedParseError
from daemon.intake.parse import item_key, parse_feed
from daemon.util.urls import _PLAIN_HTTP, _REFUSED, _parsed_link, safe_link


def rss(items: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example.org/</link>{extra}{items}</channel></rss>"
    ).encode()


class TestIdentity:
    @pytest.mark.parametrize(
        ("guid", "link", "expected"),
        [
            ("abc-1", "https://x.org/a", "id:abc-1"),
            (None, "https://X.org/a?utm_source=rss&id=3#top", "url:https://x.org/a?id=3"),
            ("  ", "https://x.org/a", "url:https://x.org/a"),
        ],
    )
    def test_guid_then_canonical_link(self, guid: str | None, link: str, expected: str) -> None:
        """guid wins; else the canonical link without tracking parameters or fragment."""
        assert item_key(guid, link, "t", "s") == expected

    def test_hash_when_no_guid_or_link(self) -> None:
        """Without guid or link the key is a hash of title and summary, stable across calls."""
        a = item_key(None, None, "Title", "Summary")
        assert a.startswith("hash:")
        assert a == item_key(None, None, "Title", "Summary")
        assert a != item_key(None, None, "Title", "Other")

    def test_same_guid_in_two_feeds_is_two_items(self) -> None:
        """Identity is per feed: a bare guid in two feeds yields items that differ by feed."""
        body = rss("<item><guid isPermaLink='false'>123</guid><title>A</title></item>")
        a = parse_feed(body, feed="one", url="https://one.example/")
        b = parse_feed(body, feed="two", url="https://two.example/")
        assert (a.items[0].feed, a.items[0].key) != (b.items[0].feed, b.items[0].key)

    def test_duplicate_guids_inside_one_feed_collapse(self) -> None:
        """An entry repeating an earlier guid in the same document is dropped and counted."""
        body = rss("<item><guid>g1</guid><title>A</title></item><item><guid>g1</guid><title>B</title></item>")
        parsed = parse_feed(body, feed="f", url="https://f.example/")
        assert [i.title for i in parsed.items] == ["A"]
        assert parsed.duplicates == 1


class TestSanitising:
    @pytest.mark.parametrize(
        "link",
        ["javascript:alert(1)", "java\tscript:alert(1)", "data:text/html,x", "vbscript:x", "file:///etc/passwd"],
    )
    def test_unsafe_links_are_dropped(self, link: str) -> None:
        """Only absolute http(s) links survive; script, data and file links become None."""
        body = rss(f"<item><guid>g</guid><title>A</title><link>{link}</link></item>")
        assert parse_feed(body, feed="f", url="https://f.example/").items[0].link is None

    @pytest.mark.parametrize(
        ("link", "kept"),
        [
            ("https://news.example/a b", None),
            ("https://bank.example@evil.example/login", None),
            ("https://news.example/\u202eexe.pdf", None),
        ],
        ids=["space", "userinfo", "bidi"],
    )
    def test_links_are_kept_as_written_or_refused(self, link: str, kept: str | None) -> None:
        """A space inside is never silently dropped (the link is refused); so are userinfo and bidi controls."""
        body = rss(f"<item><guid>g</guid><title>A</title><link>{link}</link></item>")
        assert parse_feed(body, feed="f", url="https://f.example/").items[0].link == kept

    def test_plain_links_are_judged_as_urlsplit_judges_them(self) -> None:
        """Links accepted without parsing (plain http(s) hosts) get the verdict urlsplit and urljoin give."""
        schemes = ["http", "https", "HTTPS", "hTTp"] * 3 + ["ftp", "", "http:", "1http"]
        separators = ["://"] * 8 + [":/", ":///", "//", ":", ""]
        pieces = ["news", ".", "example", "-", ":8080", ":", ":x", "@", "?q=1", "#f", "/", "[", "]", "%41", "_",
                  "\u00e9", "b\u00fccher", "xn--bcher-kva", "..", "a", "1", "\uff0e", "\u2488", " ", "\t", "\x7f",
                  "\u202e", "\u3000", "\x85"]  # fmt: skip
        rng = random.Random(14)
        bases = [None, "https://f.example/dir/", "ftp://f.example/"]
        plain = 0
        for _ in range(20_000):
            host = "".join(rng.choice(pieces[:5] * 4 + pieces) for _ in range(rng.randint(0, 4)))
            tail = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
            link = rng.choice(schemes) + rng.choice(separators) + host + rng.choice(["", "/", "?", "#"]) + tail
            base = rng.choice(bases)
            cleaned = link.strip()
            try:  # the verdict of the checks one by one: refused characters, then urlsplit
                refused = not cleaned or _REFUSED.search(cleaned) or any(c.isspace() for c in cleaned)
                expected = None if refused else _parsed_link(cleaned, base)
            except ValueError:  # urlsplit refuses the netloc before the check that catches it
                continue
            assert safe_link(link, base) == expected, (link, base)
            plain += _PLAIN_HTTP.fullmatch(link) is not None
        assert plain > 500

    def test_html_and_control_characters_become_plain_text(self) -> None:
        """Markup, entities and control characters are reduced to one line of text."""
        body = rss(
            "<item><guid>g</guid><title>Shelling&#13;&#10;Bcc: x@y</title>"
            "<description>&lt;p&gt;Caf&amp;eacute; &lt;b&gt;bold&lt;/b&gt;&lt;script&gt;evil()&lt;/script&gt;"
            "&lt;/p&gt;</description></item>"
        )
        item = parse_feed(body, feed="f", url="https://f.example/").items[0]
        assert "\r" not in item.title
        assert "\n" not in item.title
        assert item.summary == "Café bold"

    def test_relative_link_resolved_against_feed(self) -> None:
        """A relative item link is made absolute against the feed's own link."""
        body = rss("<item><guid>g</guid><title>A</title><link>/news/1</link></item>")
        assert parse_feed(body, feed="f", url="https://f.example/").items[0].link == "https://news.example.org/news/1"


class TestNotAFeed:
    @pytest.mark.parametrize(
        ("body", "ctype", "message"),
        [
            (b"", None, "empty response body"),
            (b"   \n", None, "empty response body"),
            (b"<!DOCTYPE html><html><body>Login</body></html>", "text/html", "HTML page"),
            (b"just some text", "text/plain", "not a feed"),
        ],
    )
    def test_clear_error(self, body: bytes, ctype: str | None, message: str) -> None:
        """Empty bodies, HTML pages and plain text are FeedParseErrors naming the URL."""
        with pytest.raises(FeedParseError, match=message) as info:
            parse_feed(body, feed="f", url="https://f.example/rss")
        assert "https://f.example/rss" in str(info.value)

    def test_ill_formed_but_usable_feed_is_used(self) -> None:
        """A bozo feed that still yields entries is used and its problem reported."""
        body = rss("<item><guid>g</guid><title>A &amp B</title></item>").replace(b"</channel></rss>", b"")
        parsed = parse_feed(body, feed="f", url="https://f.example/")
        assert len(parsed.items) == 1
        assert parsed.problem
