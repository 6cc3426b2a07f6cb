"""Hostile and broken feed documents: each ends as one feed's error or as clean items, never more.

Through ``parse_feed`` directly, and through the real poller and store where HTTP or storage matters.
The robustness sweep runs every file of the shared feedparser corpus.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs

from daemon.errors import FeedParseError
from daemon.intake.parse import MAX_SUMMARY, ParsedFeed, parse_feed
from tests.conftest import SHARED_CORPUS
from tests.kit.feeds import FeedServer
from tests.kit.polling import PROXY_VARS, Daemon, entry, feed_toml, rss, write_config

URL = "https://news.example.org/feed"
MB = 1_000_000


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def doc(items: str, *, prolog: str = "", declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    return (
        f'{declaration}\n{prolog}\n<rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example.org/</link>{items}</channel></rss>"
    )


def parse(body: bytes, content_type: str | None = None) -> ParsedFeed:
    return parse_feed(body, feed="f", url=URL, content_type=content_type)


def texts(parsed: ParsedFeed) -> str:
    """Everything a parsed feed could show anyone, joined."""
    parts = [parsed.title]
    for i in parsed.items:
        parts += [i.title, i.summary, i.content, i.author, i.link or "", i.key]
    return "\n".join(parts)


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result or the FeedParseError raised, peak MB traced, seconds)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = fn()
    except FeedParseError as exc:
        result = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak / MB, time.perf_counter() - started


def quadratic(n: int) -> str:
    """One n-character entity referenced n times: n² characters if expanded (5000 → 25 M)."""
    return doc(
        f"<item><guid>g</guid><title>x</title><description>{'&a;' * n}</description></item>",
        prolog=f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * n}">\n]>',
    )


class TestEntityExpansion:
    def test_billion_laughs_is_not_expanded(self) -> None:
        """Nested entities ("billion laughs") are never expanded: bounded memory and time, no lol-flood."""
        decls = '<!ENTITY lol0 "lol">\n' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
        body = doc(
            "<item><guid>g</guid><title>&lol9;</title><description>&lol9;</description></item>",
            prolog=f"<!DOCTYPE rss [\n{decls}]>",
        ).encode()
        result, peak, seconds = measured(lambda: parse(body))
        assert peak < 20
        assert seconds < 5
        if isinstance(result, ParsedFeed):
            assert "lollollol" not in texts(result)

    @pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
    def test_quadratic_blowup_is_not_expanded(self, codec: str) -> None:
        """A long entity referenced many times (84 MB inside feedparser before) stays a literal reference."""
        text = quadratic(5000)
        if codec != "utf-8":
            text = text.replace('encoding="utf-8"', f'encoding="{codec}"')
        result, peak, seconds = measured(lambda: parse(text.encode(codec)))
        assert peak < 20
        assert seconds < 5
        assert isinstance(result, ParsedFeed)
        assert "A" * 100 not in texts(result)
        assert len(result.items[0].summary) <= MAX_SUMMARY
        assert "entity declarations removed" in (result.problem or "")

    def test_short_entity_declarations_still_work(self) -> None:
        """The declarations feeds really use (a character reference, a short word) are kept and expanded."""
        body = doc(
            "<item><guid>g</guid><title>Talks&nbsp;in &city;</title></item>",
            prolog='<!DOCTYPE rss [\n<!ENTITY nbsp "&#160;">\n<!ENTITY city "Baku">\n]>',
        ).encode()
        parsed = parse(body)
        assert parsed.items[0].title == "Talks in Baku"  # the no-break space, as a space
        assert parsed.problem is None

    @pytest.mark.parametrize(
        "prolog",
        [
            '<!DOCTYPE rss [<!ENTITY x SYSTEM "{url}">]>',
            '<!DOCTYPE rss [\n<!ENTITY x SYSTEM "{url}">\n]>',
            '<!DOCTYPE rss [\n<!ENTITY % p SYSTEM "{url}">\n%p;\n]>',
            '<!DOCTYPE rss [\n<!ENTITY x PUBLIC "-//x//y" "{url}">\n]>',
        ],
    )
    def test_external_entities_are_not_read(self, tmp_path: Path, prolog: str) -> None:
        """External entities (general, parameter, PUBLIC) never pull a local file into an item."""
        secret = tmp_path / "secret.txt"
        secret.write_text("TOPSECRET-7f3a root:x:0:0")
        for url in (secret.as_uri(), "file:///etc/passwd"):
            body = doc(
                "<item><guid>g</guid><title>A &x; B</title><description>&x;</description></item>",
                prolog=prolog.format(url=url),
            ).encode()
            try:
                shown = texts(parse(body))
            except FeedParseError as exc:
                shown = str(exc)
            assert "TOPSECRET" not in shown
            assert "root:" not in shown

    def test_external_dtd_and_entities_are_not_fetched(self, httpserver: HTTPServer) -> None:
        """A DOCTYPE or entity pointing at a URL makes no request to it."""
        httpserver.expect_request("/evil.dtd").respond_with_data('<!ENTITY x "LEAK">')
        httpserver.expect_request("/ent").respond_with_data("LEAK")
        body = doc(
            "<item><guid>g</guid><title>A &x; &y;</title></item>",
            prolog=f'<!DOCTYPE rss SYSTEM "{httpserver.url_for("/evil.dtd")}" [\n'
            f'<!ENTITY y SYSTEM "{httpserver.url_for("/ent")}">\n]>',
        ).encode()
        try:
            shown = texts(parse(body))
        except FeedParseError as exc:
            shown = str(exc)
        assert "LEAK" not in shown
        assert len(httpserver.log) == 0

    async def test_hostile_feed_over_http_stays_that_feeds_problem(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """Served over HTTP, an entity bomb is polled like any feed: items stored, problem logged once."""
        server = FeedServer(httpserver, body=quadratic(5000).encode())
        config = write_config(tmp_path, feed_toml("news", server.url))
        with capture_logs() as logs:
            async with Daemon(config) as d:
                state = await d.poll("news")
                assert (state.health.last_status, state.health.consecutive_failures) == (200, 0)
                assert await d.count_items() == 1
                (title,) = [t for (t,) in await d.sql("SELECT title FROM items")]
                assert title == "x"
                await d.poll("news")
        problems = [e for e in logs if e["event"] == "feed_ill_formed"]
        assert len(problems) == 1
        assert "entity declarations removed" in problems[0]["problem"]


class TestParserCost:
    @pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
    def test_element_with_thousands_of_attributes_is_refused_at_once(self, codec: str) -> None:
        """20,000 attributes on one element (19 s inside feedparser, growing with the square) fail in a blink."""
        attributes = " ".join(f'a{i}="1"' for i in range(20_000))
        body = doc(f"<item {attributes}><guid>g</guid><title>x</title></item>").replace("utf-8", codec)
        started = time.perf_counter()
        with pytest.raises(FeedParseError, match="an element with 20000 attributes"):
            parse(body.encode(codec))
        assert time.perf_counter() - started < 2

    def test_many_namespaces_and_long_tags_are_fine(self) -> None:
        """A root element with dozens of namespace declarations and long attribute values still parses."""
        namespaces = " ".join(f'xmlns:ns{i}="http://ns{i}.example.org/{"x" * 40}"' for i in range(60))
        body = (
            f'<?xml version="1.0"?><rss version="2.0" {namespaces}><channel><title>T</title>'
            f"<item><guid>g</guid><title>Long link</title><link>https://n.example/{'p' * 3000}</link></item>"
            "</channel></rss>"
        ).encode()
        parsed = parse(body)
        assert [i.title for i in parsed.items] == ["Long link"]
        assert parsed.problem is None


class TestEncodings:
    def test_invalid_utf8_and_nul_bytes_leave_the_rest_readable(self) -> None:
        """A UTF-8 feed with a stray byte and NULs keeps its Cyrillic text; bad bytes become U+FFFD."""
        body = doc(
            "<item><guid>g1</guid><title>Обстрел в Мартуни</title><description>Артиллерия</description></item>"
            "<item><guid>g2</guid><title>bad BYTE and NUL here</title></item>"
        ).encode()
        body = body.replace(b"BYTE", b"\xff\xfe").replace(b"NUL", b"N\x00U\x00L")
        parsed = parse(body)
        assert [i.title for i in parsed.items] == ["Обстрел в Мартуни", "bad �� and NUL here"]
        assert "\x00" not in texts(parsed)
        assert "NUL bytes removed" in (parsed.problem or "")
        assert "2 invalid UTF-8 bytes replaced" in (parsed.problem or "")

    def test_latin1_labelled_utf8_keeps_feedparsers_fallback(self) -> None:
        """A Latin-1 document declared UTF-8 (no valid UTF-8 at all) is read as Latin-1, not as U+FFFD."""
        body = doc("<item><guid>g</guid><title>Café in Ağdam</title></item>").encode("utf-8")
        body = body.replace("Café in Ağdam".encode(), "Café in Agdam".encode("latin-1"))
        parsed = parse(body)
        assert parsed.items[0].title == "Café in Agdam"
        assert parsed.problem

    @pytest.mark.parametrize("content_type", ["application/rss+xml; charset=iso-8859-1", "text/xml; charset=koi8-r"])
    def test_wrong_declared_charset_gives_clean_text(self, content_type: str) -> None:
        """UTF-8 served under a wrong charset yields mojibake at worst, never control characters."""
        body = doc("<item><guid>g</guid><title>Ceasefire — talks “resume” in Baku</title></item>").encode()
        parsed = parse(body, content_type)
        shown = texts(parsed)
        assert "Baku" in shown
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", shown)

    @pytest.mark.parametrize(
        "body",
        [bytes(range(256)) * 8, b"\x00" * 4096, b"\xff\xfe" + "<rss>".encode("utf-16-le") + b"\x00\xd8" * 100],
    )
    def test_binary_garbage_is_a_feed_error(self, body: bytes) -> None:
        """Bytes that are no document at all end as FeedParseError, not as a crash."""
        with pytest.raises(FeedParseError, match="not a feed"):
            parse(body)


class TestLargeFeeds:
    @pytest.mark.slow
    async def test_ten_thousand_items_are_stored_once(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A 10,000-item feed parses in bounded time, every item is stored once, and re-polling adds none."""
        items = [
            entry(f"g{i}", f"Report {i} from the wire", f"Summary {i}", link=f"https://n.example/{i}")
            for i in range(10_000)
        ]
        server = FeedServer(httpserver, body=rss(*items))
        server.etags = False  # every poll downloads and parses it all again
        config = write_config(tmp_path, feed_toml("news", server.url), polling={"total_timeout": "30s"})
        async with Daemon(config) as d:
            seconds = []
            for _ in range(2):
                started = time.perf_counter()
                state = await d.poll("news")
                seconds.append(time.perf_counter() - started)
                assert (state.health.last_status, state.health.consecutive_failures) == (200, 0)
                assert await d.count_items() == 10_000
            assert state.items_seen == 10_000
            assert await d.alerts() == []
        assert max(seconds) < 60, seconds


class TestIdentity:
    async def test_items_without_guid_link_or_title(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """Items lacking guid, link or title get stable keys: stored once, unchanged on the next poll."""
        body = doc(
            "<item><description>Only a summary</description></item>"
            "<item><title>Only a title</title></item>"
            "<item><link>https://n.example/only-link</link></item>"
            "<item></item><item></item>"
        ).encode()
        parsed = parse(body)
        assert [i.key.split(":")[0] for i in parsed.items] == ["hash", "hash", "url", "hash"]
        assert parsed.duplicates == 1
        server = FeedServer(httpserver, body=body)
        server.etags = False
        async with Daemon(write_config(tmp_path, feed_toml("news", server.url))) as d:
            await d.poll("news")
            await d.poll("news")
            assert await d.count_items() == 4
            assert await d.sql("SELECT COUNT(*) FROM items WHERE updated_at IS NOT NULL") == [(0,)]

    async def test_duplicate_guids_in_one_document_are_one_item(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A guid repeated inside one feed is stored once, with its first version."""
        body = rss(entry("g1", "Shelling near Alpha"), entry("g1", "Shelling near Bravo"), entry("g2", "Quiet"))
        server = FeedServer(httpserver, body=body)
        config = write_config(tmp_path, feed_toml("news", server.url, backfill="all"))
        async with Daemon(config) as d:
            await d.poll("news")
            assert await d.sql("SELECT key, title FROM items ORDER BY key") == [
                ("id:g1", "Shelling near Alpha"),
                ("id:g2", "Quiet"),
            ]
            assert await d.alerted_titles() == ["Shelling near Alpha"]


HOSTILE_LINKS = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java&#9;script:alert(1)",
    "java&#10;script:alert(1)",
    "&#106;avascript:alert(1)",
    "vbscript:msgbox(1)",
    "vb\r\nscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "fi\nle:///etc/passwd",
]


class TestLinks:
    @pytest.mark.parametrize("link", HOSTILE_LINKS)
    @pytest.mark.parametrize("form", ["rss-link", "atom-link", "permalink-guid"])
    def test_hostile_links_become_none(self, link: str, form: str) -> None:
        """Script, data and file links, also split by tab or newline, are dropped in every place a link can hide."""
        if form == "rss-link":
            body = doc(f"<item><guid isPermaLink='false'>g</guid><title>A</title><link>{link}</link></item>")
        elif form == "permalink-guid":
            body = doc(f"<item><guid isPermaLink='true'>{link}</guid><title>A</title></item>")
        else:
            body = (
                '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
                f'<entry><id>g</id><title>A</title><link rel="alternate" href="{link}"/></entry></feed>'
            )
        (item,) = parse(body.encode()).items
        assert item.link is None

    @pytest.mark.parametrize(
        ("guid", "expected"),
        [("123", None), ("tag:news.example.org,2020:1", None), ("https://n.example/a", "https://n.example/a")],
    )
    def test_guid_is_a_link_only_when_it_is_a_url(self, guid: str, expected: str | None) -> None:
        """A permalink guid that is not an absolute URL is not turned into a made-up address on the site."""
        (item,) = parse(doc(f"<item><guid>{guid}</guid><title>A</title></item>").encode()).items
        assert item.link == expected


class TestTitles:
    @pytest.mark.parametrize(
        "title",
        [
            "Line one\r\nBcc: x@y",
            "Line one&#13;&#10;Bcc: x@y",
            "<![CDATA[Line one\r\nBcc: x@y]]>",
            "Line one\u2028Bcc: x@y",
            "Line one\u0085Bcc: x@y",
            "Line one&#x2029;Bcc: x@y",
            "Line one\x0bBcc: x@y",
        ],
    )
    def test_titles_become_one_line(self, title: str) -> None:
        """CR, LF and every other line break in a title collapse to spaces: one line, words kept."""
        (item,) = parse(doc(f"<item><guid>g</guid><title>{title}</title></item>").encode()).items
        assert item.title.splitlines() == [item.title]
        # feedparser reads a C1 NEL as windows-1252 would ("…"); every other break becomes a space.
        assert item.title in ("Line one Bcc: x@y", "Line one…Bcc: x@y")


# --- the shared feedparser corpus -----------------------------------------------------------------

# conftest's location (beside the repository); a worktree nested one level deeper finds it further up.
CORPUS = next(
    (
        p
        for p in [SHARED_CORPUS, *(d / "shared" / "corpus" / "feedparser" for d in Path(__file__).parents)]
        if p.is_dir()
    ),
    SHARED_CORPUS,
)
MANIFEST = CORPUS / "MANIFEST.tsv"
HEADER = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.I | re.M)
# Where we knowingly differ from feedparser's own expectation, and why.
DEVIATIONS = {
    # An empty CDF channel has no items and no version feedparser recognises: we call it "not a feed".
    "wellformed/cdf/channel_href_map_link.xml": "not a feed",
}


def corpus_files() -> list[Any]:
    if not MANIFEST.is_file():
        reason = f"shared feedparser corpus not found at {SHARED_CORPUS} or above the tests"
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=reason), id="corpus-absent")]
    rows = [line.split("\t") for line in MANIFEST.read_text().splitlines() if not line.startswith("#")]
    return [pytest.param(path, expect, id=path) for path, _size, _sha, expect in rows[1:]]


def content_type_of(path: str, body: bytes) -> str | None:
    """The Content-Type upstream serves these files with, from their ``Header:`` line."""
    if not path.startswith(("encoding/http_", "wellformed/http/")):
        return None
    m = HEADER.search(body)
    return m.group(1).decode() if m else None


class TestCorpus:
    @pytest.mark.parametrize(("path", "expect"), corpus_files())
    def test_corpus_file(self, path: str, expect: str) -> None:
        """Every corpus file parses or is a FeedParseError; bozo and entries agree with feedparser's own."""
        body = (CORPUS / path).read_bytes()
        content_type = content_type_of(path, body)
        result, _, _ = measured(lambda: parse_feed(body, feed="corpus", url=URL, content_type=content_type))
        if isinstance(result, FeedParseError):
            assert path in DEVIATIONS or expect.startswith("bozo"), f"{path}: {result}"
            assert DEVIATIONS.get(path, "") in str(result)
            return
        parsed: ParsedFeed = result
        reference = feedparser.parse(body, response_headers={"content-type": content_type} if content_type else {})
        assert len(parsed.items) + parsed.duplicates == len(reference.entries)
        if expect.startswith("not bozo"):
            assert parsed.problem is None, parsed.problem
        elif expect.startswith("bozo"):
            assert parsed.problem is not None
        for item in parsed.items:
            assert item.link is None or item.link.startswith(("http://", "https://"))
            assert "\n" not in item.title
            assert "\r" not in item.title
