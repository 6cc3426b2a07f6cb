"""The fast parse path against feedparser: no entry feedparser finds is lost, and titles, links, ids and
dates agree after our own sanitising — over every file of the shared feedparser corpus, generated feeds
and hostile documents; and both paths stay within their time and memory bounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from daemon.errors import FeedParseError
from daemon.intake import bounded, fastparse, fpparse
from daemon.intake.bounded import MiB, ParseLimits
from daemon.intake.feeddates import UnsureDate, parse_date
from daemon.intake.parse import ParsedFeed, build, parse_feed
from daemon.intake.prepare import prepare
from daemon.intake.rawfeed import RawFeed
from tests.conftest import SHARED_CORPUS
from tests.kit.feedfuzz import document, odd_date, rfc822, w3dtf
from tests.kit.feeds import FeedServer
from tests.kit.polling import Daemon, entry, feed_toml, rss, write_config

URL = "https://feeds.example/feed.xml"
REPO = Path(__file__).resolve().parents[2]
CORPUS = next(
    (
        p
        for p in [SHARED_CORPUS, *(d / "shared" / "corpus" / "feedparser" for d in Path(__file__).parents)]
        if p.is_dir()
    ),
    SHARED_CORPUS,
)
HEADER = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.I | re.M)


def corpus_paths() -> list[Any]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        reason = f"shared feedparser corpus not found at {SHARED_CORPUS} or above the tests"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="corpus-absent")]
    rows = [line.split("\t") for line in manifest.read_text().splitlines() if not line.startswith("#")]
    return [pytest.param(row[0], id=row[0]) for row in rows[1:]]


def corpus_file(path: str) -> tuple[bytes, str | None]:
    body = (CORPUS / path).read_bytes()
    content_type = None
    if path.startswith(("encoding/http_", "wellformed/http/")):
        m = HEADER.search(body)
        content_type = m.group(1).decode() if m else None
    return body, content_type


def fields(parsed: ParsedFeed) -> list[tuple[Any, ...]]:
    """What must agree between the paths, item by item (after sanitising)."""
    return [(i.key, i.title, i.link, i.guid, i.published, i.summary, i.content) for i in parsed.items]


def both(body: bytes, content_type: str | None = None) -> tuple[ParsedFeed | str, ParsedFeed | str]:
    """(fast path's result or why it is unsure, feedparser's result or its refusal), both in-process."""
    safe, notes = prepare(body, content_type)
    fast: ParsedFeed | str
    try:
        fast = build(fastparse.read(safe, content_type), feed="f", url=URL, notes=notes)
    except fastparse.Unsure as exc:
        fast = f"unsure: {exc.reason}"
    reference: ParsedFeed | str
    try:
        reference = build(fpparse.read(safe, url=URL, content_type=content_type, original=body), feed="f", url=URL)
    except FeedParseError as exc:
        reference = f"refused: {exc.reason}"
    return fast, reference


def assert_agree(fast: ParsedFeed | str, reference: ParsedFeed | str) -> None:
    if isinstance(fast, str):
        return  # the fast path declined: the document goes to feedparser itself
    assert isinstance(reference, ParsedFeed), f"fast path read a document feedparser refuses: {reference}"
    assert fields(fast) == fields(reference)
    assert fast.duplicates == reference.duplicates


class TestCorpus:
    @pytest.mark.parametrize("path", corpus_paths())
    def test_fast_path_agrees_with_feedparser(self, path: str) -> None:
        """Where the fast path reads a corpus file, every item's title, link, id, date and text equals feedparser's."""
        body, content_type = corpus_file(path)
        assert_agree(*both(body, content_type))

    @pytest.mark.slow
    @pytest.mark.parametrize("path", corpus_paths())
    def test_no_entry_feedparser_finds_is_lost(self, path: str) -> None:
        """parse_feed (fast path, else the bounded fallback) keeps every entry feedparser finds in a corpus file."""
        body, content_type = corpus_file(path)
        _, reference = both(body, content_type)
        parsed: ParsedFeed | str
        try:
            parsed = parse_feed(body, feed="f", url=URL, content_type=content_type)
        except FeedParseError as exc:
            parsed = f"refused: {exc.reason}"
        if isinstance(reference, ParsedFeed):
            assert isinstance(parsed, ParsedFeed), f"{path}: {parsed} but feedparser reads it"
            assert fields(parsed) == fields(reference)

    def test_fast_path_reads_most_wellformed_files(self) -> None:
        """The fast path is really used: it reads most well-formed corpus files (not everything falls back)."""
        manifest = CORPUS / "MANIFEST.tsv"
        if not manifest.is_file():
            pytest.skip(f"shared feedparser corpus not found at {SHARED_CORPUS}")
        paths = [line.split("\t")[0] for line in manifest.read_text().splitlines()[2:]]
        wellformed = [p for p in paths if p.startswith("wellformed/")]
        read = sum(1 for p in wellformed if not isinstance(both(*corpus_file(p))[0], str))
        assert read >= 0.7 * len(wellformed), f"fast path read {read} of {len(wellformed)} well-formed files"


class TestGenerated:
    def test_generated_feeds_agree(self) -> None:
        """600 generated feeds (RSS 2.0/0.91/1.0, Atom; odd orders, guids, markup, dates): no disagreement."""
        read = 0
        for seed in range(600):
            fast, reference = both(document(seed))
            assert_agree(fast, reference)
            read += not isinstance(fast, str)
        assert read >= 400, f"fast path read only {read} of 600 generated feeds"

    def test_dates_read_as_feedparser_reads_them(self) -> None:
        """Every date the fast path reads is the instant feedparser reads; the rest are left to feedparser."""
        import random

        from feedparser.datetimes import _parse_date

        rng = random.Random(7)
        samples = [f(rng) for f in (rfc822, w3dtf, odd_date) for _ in range(700)]
        read = 0
        for text in samples:
            try:
                ours = parse_date(text)
            except UnsureDate:
                continue
            read += 1
            theirs = _parse_date(text)
            expected = None if theirs is None else time.strftime("%Y-%m-%dT%H:%M:%S", theirs)
            assert (ours.strftime("%Y-%m-%dT%H:%M:%S") if ours else None) == expected, text
        assert read >= 1200


# --- hostile documents -----------------------------------------------------------------------------

HEAD = b'<?xml version="1.0"?><rss version="2.0" xmlns:a="http://a.example/"><channel><title>t</title>'


def namespace_heavy(size: int, *, broken: bool = False) -> bytes:
    """Thousands of prefixed elements (feedparser is quadratic in them: 1 MiB took 20 s)."""
    unit = b"<a:b>1</a:b>"
    body = HEAD + b"<item><title>x</title><guid>g1</guid>" + unit * (size // len(unit)) + b"</item></channel></rss>"
    return body.replace(b"</channel>", b"</chanel>") if broken else body


def deep(levels: int) -> bytes:
    return (
        HEAD + b"<item><title>x</title><guid>g</guid>" + b"<a>" * levels + b"</a>" * levels + b"</item></channel></rss>"
    )


def laughs() -> bytes:
    decls = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{decls}]><rss version="2.0"><channel>'
        f"<title>t</title><item><guid>g</guid><title>&l9;</title></item></channel></rss>"
    ).encode()


def attributes(n: int) -> bytes:
    many = " ".join(f'a{i}="v"' for i in range(n))
    return HEAD + f"<item><guid>g</guid><title {many}>x</title></item></channel></rss>".encode()


HOSTILE = {
    "namespace-heavy 1 MiB": namespace_heavy(MiB),
    "namespace-heavy 1 MiB, ill-formed": namespace_heavy(MiB, broken=True),
    "deep nesting 100k levels": deep(100_000),
    "billion laughs": laughs(),
    "huge attributes": attributes(20_000),
}
QUICK = ParseLimits(seconds=3.0, memory=128 * MiB)


class TestHostile:
    @pytest.mark.slow
    @pytest.mark.parametrize("name", list(HOSTILE))
    def test_hostile_feed_keeps_what_feedparser_finds(self, name: str) -> None:
        """A hostile document either loses no entry feedparser finds, or is refused with a reason, within bounds."""
        body = HOSTILE[name]
        started = time.perf_counter()
        try:
            parsed: ParsedFeed | str = parse_feed(body, feed="f", url=URL, limits=QUICK)
        except FeedParseError as exc:
            parsed = exc.reason
        # The deadline plus starting and stopping the child, which a busy machine can stretch to a few seconds.
        assert time.perf_counter() - started < QUICK.seconds + 4.0
        safe, _ = prepare(body)
        try:
            reference: RawFeed | str = bounded.read(safe, url=URL, content_type=None, original=body, limits=QUICK)
        except FeedParseError as exc:
            reference = exc.reason
        if isinstance(reference, RawFeed):
            assert isinstance(parsed, ParsedFeed), parsed
            assert {i.key for i in build(reference, feed="f", url=URL).items} <= {i.key for i in parsed.items}
        else:
            assert isinstance(parsed, ParsedFeed) or parsed

    def test_namespace_heavy_feed_takes_the_fast_path(self) -> None:
        """1 MiB of prefixed elements (20 s in feedparser) is read in well under a second."""
        started = time.perf_counter()
        parsed = parse_feed(HOSTILE["namespace-heavy 1 MiB"], feed="f", url=URL, limits=QUICK)
        assert [i.key for i in parsed.items] == ["id:g1"]
        assert time.perf_counter() - started < 1.5

    def test_fallback_past_its_deadline_fails_the_feed_with_the_reason(self) -> None:
        """An ill-formed namespace-heavy document goes to feedparser, which is stopped at the deadline."""
        limits = ParseLimits(seconds=1.5, memory=256 * MiB)
        started = time.perf_counter()
        with pytest.raises(FeedParseError) as refused:
            parse_feed(HOSTILE["namespace-heavy 1 MiB, ill-formed"], feed="f", url=URL, limits=limits)
        assert refused.value.reason == "parse took longer than 1.5 s"
        assert time.perf_counter() - started < 3.0

    @pytest.mark.slow
    def test_fallback_over_its_memory_cap_fails_the_feed_with_the_reason(self) -> None:
        """Deep nesting that feedparser would grow into hundreds of MB stops at the cap, with that reason."""
        with pytest.raises(FeedParseError) as refused:
            parse_feed(deep(300_000), feed="f", url=URL, limits=ParseLimits(seconds=20, memory=64 * MiB))
        assert refused.value.reason == "parse exceeded 64 MiB"

    def test_entities_never_expand(self) -> None:
        """Billion laughs: the title never holds the expansion."""
        parsed = parse_feed(HOSTILE["billion laughs"], feed="f", url=URL, limits=QUICK)
        assert all(len(i.title) < 100 for i in parsed.items)

    @pytest.mark.slow
    def test_fast_path_memory_stays_bounded(self, tmp_path: Path) -> None:
        """In a fresh process, parsing every hostile document through the fast path peaks under 200 MiB."""
        script = tmp_path / "peak.py"
        script.write_text(
            "import json, sys\n"
            "from daemon.intake.parse import parse_feed\n"
            "from daemon.intake.bounded import ParseLimits\n"
            "from daemon.errors import FeedParseError\n"
            "from tests.intake.test_parse_paths import HOSTILE, namespace_heavy\n"
            "docs = [*HOSTILE.values(), namespace_heavy(9 * 1024 * 1024)]\n"
            "for body in docs:\n"
            "    try:\n"
            "        parse_feed(body, feed='f', url='https://x.example/', limits=ParseLimits(seconds=2))\n"
            "    except FeedParseError:\n"
            "        pass\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(json.dumps({'VmHWM': int(hwm.split()[1])}))\n"
        )
        out = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        peak_kib = json.loads(out.stdout.strip().splitlines()[-1])["VmHWM"]
        assert peak_kib < 200 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"


class TestInDaemon:
    async def test_overrunning_fallback_fails_its_feed_and_stalls_nothing(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """A feed whose fallback parse overruns fails with the reason; a healthy feed and the loop carry on."""
        hostile = FeedServer(httpserver, "/hostile", HOSTILE["namespace-heavy 1 MiB, ill-formed"])
        healthy = FeedServer(httpserver, "/healthy", rss(entry("g1", "Quiet day")))
        config = write_config(
            tmp_path,
            feed_toml("hostile", hostile.url) + feed_toml("healthy", healthy.url),
            polling={"parse_timeout": "1500ms", "total_timeout": "20s"},
        )
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.02)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async with Daemon(config) as d:
            tick = asyncio.create_task(ticker())
            started = time.perf_counter()
            bad, good = await asyncio.gather(d.poll("hostile"), d.poll("healthy"))
            elapsed = time.perf_counter() - started
            tick.cancel()
        assert (bad.health.consecutive_failures, bad.health.last_error) == (1, "parse took longer than 1.5 s")
        assert (good.health.last_status, good.health.consecutive_failures, good.items_seen) == (200, 0, 1)
        assert elapsed < 4.0
        assert max(gaps) < 0.5, f"event loop stalled {max(gaps):.2f} s"
