"""Fetching feeds against real servers on 127.0.0.1: caching, decoding, caps, deadlines, redirects, errors."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import gzip
import os
import socket
import ssl
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import brotli
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.errors import ConfigError, FetchError
from daemon.intake.connection import Connector, Streams, open_streams
from daemon.intake.decode import body_decoder
from daemon.intake.fetch import Fetcher, FetchResult, FetchSettings, make_client
from daemon.intake.headers import BasicAuth, Validators
from daemon.util.redact import redact_url
from tests.kit.tls import make_certs

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
MiB = 1 << 20

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@contextlib.asynccontextmanager
async def fetcher_for(
    settings: FetchSettings | None = None, connect: Connector = open_streams
) -> AsyncIterator[Fetcher]:
    settings = settings or FetchSettings(connect_timeout=2, read_timeout=2, total_timeout=5)
    async with make_client(settings, connect=connect) as client:
        yield Fetcher(client, settings)


async def fetch(url: str, validators: Validators | None = None, **settings: object) -> FetchResult:
    base: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}
    base.update(settings)
    async with fetcher_for(FetchSettings(**base)) as f:  # type: ignore[arg-type]
        return await f.fetch(url, validators or Validators())


async def fetch_error(url: str, **settings: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        await fetch(url, **settings)
    assert redact_url(url) in str(info.value), "every fetch error names the feed URL"
    return info.value


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A hand-written HTTP/1.1 server on 127.0.0.1, for misbehaviour werkzeug will not produce."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)  # type: ignore[arg-type]
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/feed"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def serve(body: bytes, *headers: bytes) -> Handler:
    """A raw_server handler answering 200 with ``body`` and extra header lines."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b"".join(h + b"\r\n" for h in headers)
        writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (head, len(body)))
        writer.write(body)
        await writer.drain()

    return handler


async def measured_failure(url: str, settings: FetchSettings) -> tuple[FetchError, int, float]:
    """Fetch expecting failure; returns (error, peak traced bytes, seconds) for the fetch alone.

    The client is made first: its one-time TLS setup is not what is being measured. tracemalloc counts
    every thread, so the server must be ``raw_server`` on this loop: werkzeug's thread allocates ~10 MB
    now and then, which would be charged to us.
    """
    async with fetcher_for(settings) as f:
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(FetchError) as info:
                await f.fetch(url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return info.value, peak, time.monotonic() - started


def gzip_bomb(size: int) -> bytes:
    """A single-member gzip stream of ``size`` zero bytes, built in milliseconds.

    Each 1 MiB block is compressed after a full flush, which resets the compressor, so every block
    compresses to the same bytes and can be repeated instead of recomputed (~1000:1).
    """
    assert size % MiB == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(bytes(MiB), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * (size // MiB) + comp.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)


def raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


class TestConditionalGet:
    async def test_etag_round_trip_gives_304(self, httpserver: HTTPServer) -> None:
        """A stored ETag is sent back as If-None-Match and a 304 returns no body but keeps the validators."""

        def handler(request: Request) -> Response:
            if request.headers.get("If-None-Match") == '"v1"':
                return Response(status=304)
            return Response(FEED, headers={"ETag": '"v1"'}, content_type="application/rss+xml")

        httpserver.expect_request("/feed").respond_with_handler(handler)
        url = httpserver.url_for("/feed")
        first = await fetch(url)
        assert (first.status, first.body, first.validators.etag) == (200, FEED, '"v1"')
        assert first.content_type == "application/rss+xml"
        second = await fetch(url, first.validators)
        assert (second.status, second.body) == (304, None)
        assert second.validators == first.validators

    async def test_last_modified_round_trip_gives_304(self, httpserver: HTTPServer) -> None:
        """A stored Last-Modified is sent back as If-Modified-Since and honoured."""
        stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

        def handler(request: Request) -> Response:
            if request.headers.get("If-Modified-Since") == stamp:
                return Response(status=304)
            return Response(FEED, headers={"Last-Modified": stamp})

        httpserver.expect_request("/feed").respond_with_handler(handler)
        url = httpserver.url_for("/feed")
        first = await fetch(url)
        assert first.validators == Validators(etag=None, last_modified=stamp)
        second = await fetch(url, first.validators)
        assert second.status == 304
        assert second.validators.last_modified == stamp

    async def test_304_with_new_etag_updates_only_that_validator(self, httpserver: HTTPServer) -> None:
        """Validators a 304 sends replace the stored ones; those it omits are kept."""
        httpserver.expect_request("/feed").respond_with_data("", status=304, headers={"ETag": '"v2"'})
        result = await fetch(httpserver.url_for("/feed"), Validators('"v1"', "Wed, 21 Oct 2015 07:28:00 GMT"))
        assert result.validators == Validators('"v2"', "Wed, 21 Oct 2015 07:28:00 GMT")

    async def test_identifying_headers_are_sent(self, httpserver: HTTPServer) -> None:
        """Each request names feedwatch in User-Agent and asks for feeds and compressed bodies."""
        httpserver.expect_request("/feed").respond_with_data(FEED)
        await fetch(httpserver.url_for("/feed"), user_agent="feedwatch/test (+https://example.org)")
        request = httpserver.log[0][0]
        assert request.headers["User-Agent"] == "feedwatch/test (+https://example.org)"
        assert "application/rss+xml" in request.headers["Accept"]
        assert request.headers["Accept-Encoding"] == "gzip, deflate, br"
        assert "If-None-Match" not in request.headers

    async def test_caller_headers_and_auth_are_sent(self, httpserver: HTTPServer) -> None:
        """Per-feed headers and credentials reach the feed's own server."""
        httpserver.expect_request("/feed").respond_with_data(FEED)
        async with fetcher_for() as f:
            await f.fetch(httpserver.url_for("/feed"), headers={"X-Token": "t"}, auth=BasicAuth("u", "p"))
        request = httpserver.log[0][0]
        assert request.headers["X-Token"] == "t"
        assert request.headers["Authorization"].startswith("Basic ")


class TestCacheHints:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"Cache-Control": "public, max-age=900"}, 900.0),
            ({"Cache-Control": "max-age=900", "Age": "300"}, 600.0),
            ({"Cache-Control": "no-cache, max-age=900"}, None),
            ({"Cache-Control": "max-age=0"}, None),
            ({}, None),
            ({"Expires": "0"}, None),
        ],
    )
    async def test_publisher_freshness_becomes_expires_in(
        self, httpserver: HTTPServer, headers: dict[str, str], expected: float | None
    ) -> None:
        """Cache-Control max-age (less Age) becomes expires_in; no-cache or nothing gives None."""
        httpserver.expect_request("/feed").respond_with_data(FEED, headers=headers)
        assert (await fetch(httpserver.url_for("/feed"))).expires_in == expected

    async def test_expires_header_is_relative_to_server_date(self) -> None:
        """An Expires date is measured from the server's Date header, so clock skew does not matter."""

        async def dated(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(
                b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 12:00:00 GMT\r\n"
                b"Expires: Tue, 01 Jan 2030 13:00:00 GMT\r\nContent-Length: %d\r\n\r\n%s" % (len(FEED), FEED)
            )
            await writer.drain()

        async with raw_server(dated) as url:
            assert (await fetch(url)).expires_in == 3600.0


class TestDecoding:
    @pytest.mark.parametrize(
        ("encoding", "encode"),
        [
            ("gzip", gzip.compress),
            ("x-gzip", gzip.compress),
            ("deflate", zlib.compress),
            ("deflate", raw_deflate),
            ("br", brotli.compress),
            ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
            ("gzip", lambda data: gzip.compress(data[:10]) + gzip.compress(data[10:])),
            ("identity", lambda data: data),
        ],
        ids=[
            "gzip",
            "x-gzip",
            "deflate-zlib",
            "deflate-raw",
            "br",
            "gzip-then-br",
            "gzip-2-members",
            "identity",
        ],
    )
    async def test_compressed_bodies_are_decoded(
        self, httpserver: HTTPServer, encoding: str, encode: Callable[[bytes], bytes]
    ) -> None:
        """Every Content-Encoding we advertise decodes back to the original bytes."""
        data = FEED * 2000  # ~160 KB: several read chunks and several bounded decode steps
        httpserver.expect_request("/feed").respond_with_data(encode(data), headers={"Content-Encoding": encoding})
        assert (await fetch(httpserver.url_for("/feed"))).body == data

    @pytest.mark.parametrize(
        ("encoding", "encode"),
        [
            ("gzip", lambda d: gzip.compress(d[:5000]) + gzip.compress(d[5000:]) + b"\0\0junk"),
            ("deflate", zlib.compress),
            ("deflate", raw_deflate),
            ("br", brotli.compress),
            ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ],
        ids=["gzip-members-and-trailing-junk", "deflate-zlib", "deflate-raw", "br", "gzip-then-br"],
    )
    @pytest.mark.parametrize("chunk", [1, 2, 7, 70_000])
    def test_decoding_survives_any_chunking(self, encoding: str, encode: Callable[[bytes], bytes], chunk: int) -> None:
        """Network reads split bodies anywhere (even inside a header): output is identical and bounded."""
        data = os.urandom(3000) * 30 + b"abc" * 50_000
        blob = encode(data)
        decoder = body_decoder(encoding)  # the decoder alone: chunking is ours to pick
        pieces = [p for i in range(0, len(blob), chunk) for p in decoder.feed(blob[i : i + chunk])]
        pieces += decoder.flush()
        assert b"".join(pieces) == data
        assert max(map(len, pieces)) <= 128 * 1024

    @pytest.mark.parametrize("encoding", ["gzip", "br"])
    async def test_corrupt_body_is_a_decode_error(self, httpserver: HTTPServer, encoding: str) -> None:
        """Bytes that are not what Content-Encoding claims give a clear decode error."""
        httpserver.expect_request("/feed").respond_with_data(
            b"\x1f\x8bnot-really" * 10, headers={"Content-Encoding": encoding}
        )
        err = await fetch_error(httpserver.url_for("/feed"))
        assert f"could not decode {encoding} body" in str(err)

    async def test_unknown_encoding_is_refused(self, httpserver: HTTPServer) -> None:
        """A Content-Encoding we did not ask for is reported by name."""
        httpserver.expect_request("/feed").respond_with_data(FEED, headers={"Content-Encoding": "zstd"})
        assert "unsupported Content-Encoding 'zstd'" in str(await fetch_error(httpserver.url_for("/feed")))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(256 * MiB)


class TestSizeCap:
    async def test_gzip_bomb_stops_at_cap_with_bounded_memory(self, bomb: bytes) -> None:
        """A 260 KB gzip body inflating to 256 MiB fails at the 10 MiB cap, peaking well under 3x the cap."""
        assert len(bomb) < 300_000
        async with raw_server(serve(bomb, b"Content-Encoding: gzip")) as url:
            err, peak, elapsed = await measured_failure(url, FetchSettings())
        assert str(err) == f"{url}: body exceeds 10 MiB cap (after decompression)"
        assert err.transient
        assert not err.gone
        assert peak < 3 * 10 * MiB, f"peak {peak / MiB:.1f} MiB"
        assert elapsed < 5

    async def test_brotli_bomb_stops_at_cap_with_bounded_memory(self) -> None:
        """24 KB of brotli inflating to 128 MiB fail at a 1 MiB cap, peaking well under 3x the cap."""
        comp = brotli.Compressor(quality=1)
        bomb = b"".join(comp.process(bytes(MiB)) for _ in range(128)) + comp.finish()
        async with raw_server(serve(bomb, b"Content-Encoding: br")) as url:
            err, peak, _ = await measured_failure(url, FetchSettings(max_bytes=MiB))
        assert "body exceeds 1 MiB cap (after decompression)" in str(err)
        assert peak < 3 * MiB, f"peak {peak / MiB:.1f} MiB"

    async def test_plain_body_over_cap_is_refused(self, httpserver: HTTPServer) -> None:
        """An uncompressed body larger than the cap fails, announced by Content-Length or not."""
        httpserver.expect_request("/announced").respond_with_data(bytes(2000))
        httpserver.expect_request("/chunked").respond_with_handler(
            lambda _: Response(iter([bytes(600)] * 4), content_type="application/rss+xml")
        )
        err = await fetch_error(httpserver.url_for("/announced"), max_bytes=1000)
        assert "body exceeds 1000 bytes cap (server announced 2000 bytes)" in str(err)
        err = await fetch_error(httpserver.url_for("/chunked"), max_bytes=1000)
        assert "body exceeds 1000 bytes cap" in str(err)

    async def test_compressed_bytes_count_against_cap(self, httpserver: HTTPServer) -> None:
        """Bytes read off the wire count too, even ones the decoder discards (junk after a gzip stream)."""
        body = gzip.compress(FEED) + bytes(5000)
        httpserver.expect_request("/feed").respond_with_handler(
            lambda _: Response(iter([body[:500], body[500:]]), headers={"Content-Encoding": "gzip"})
        )
        err = await fetch_error(httpserver.url_for("/feed"), max_bytes=1000)
        assert "body exceeds 1000 bytes cap (before decompression)" in str(err)

    async def test_body_at_cap_is_accepted(self, httpserver: HTTPServer) -> None:
        """A body exactly as large as the cap still arrives whole."""
        httpserver.expect_request("/feed").respond_with_data(
            gzip.compress(bytes(1000)), headers={"Content-Encoding": "gzip"}
        )
        assert (await fetch(httpserver.url_for("/feed"), max_bytes=1000)).body == bytes(1000)


class TestDeadlines:
    async def test_trickling_server_hits_total_deadline(self) -> None:
        """A server sending a byte every 50 ms never trips the read timeout but fails the total deadline."""

        async def trickle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(200):
                writer.write(b"<")
                await writer.drain()
                await asyncio.sleep(0.05)

        async with raw_server(trickle) as url:
            started = time.monotonic()
            err = await fetch_error(url, read_timeout=0.5, total_timeout=1.0)
            elapsed = time.monotonic() - started
        assert "1 s total time limit" in str(err)
        assert err.transient
        assert 0.9 < elapsed < 2.0

    async def test_silent_server_hits_read_timeout(self) -> None:
        """A server that accepts and then says nothing is reported as a read timeout."""

        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        async with raw_server(silent) as url:
            err = await fetch_error(url, read_timeout=0.3, total_timeout=3.0)
        assert "read timeout: 127.0.0.1:" in str(err)
        assert "sent nothing for 0.3 s" in str(err)


class TestNetworkErrors:
    async def test_connection_refused(self) -> None:
        """A port nobody listens on is reported as a refused connection to that host and port."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        err = await fetch_error(f"http://127.0.0.1:{port}/feed")
        assert f"connection refused by 127.0.0.1:{port}" in str(err)
        assert err.transient
        assert err.status is None

    async def test_name_resolution_failure(self) -> None:
        """A resolver failure is reported as such, naming the host (no real DNS is queried)."""

        async def no_dns(host: str, port: int, tls: ssl.SSLContext | None, name: str | None) -> Streams:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async with fetcher_for(connect=no_dns) as f:
            with pytest.raises(FetchError) as info:
                await f.fetch("https://feeds.example.invalid/rss")
        assert (
            str(info.value)
            == "https://feeds.example.invalid/rss: name resolution failed for host feeds.example.invalid"
        )
        assert info.value.transient

    async def test_connection_closed_without_response(self) -> None:
        """A server hanging up before answering is named as a protocol failure."""

        async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        async with raw_server(hang_up) as url:
            err = await fetch_error(url)
        assert "broke the HTTP protocol" in str(err)

    async def test_password_never_in_error_text(self) -> None:
        """A password embedded in the feed URL is redacted from the error message."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(FetchError) as info:
            await fetch(f"http://reader:s3cret@127.0.0.1:{port}/feed")
        assert "s3cret" not in str(info.value)
        assert f"http://reader:***@127.0.0.1:{port}/feed" in str(info.value)


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "text"),
        [(404, "HTTP 404 Not Found"), (401, "HTTP 401 Unauthorized"), (403, "HTTP 403 Forbidden"),
         (500, "HTTP 500 Internal Server Error"), (599, "HTTP 599")],
    )  # fmt: skip
    async def test_error_statuses_are_retried_at_backoff(self, httpserver: HTTPServer, status: int, text: str) -> None:
        """Client and server errors are transient (retried at backoff), carry the status, never disable."""
        httpserver.expect_request("/feed").respond_with_data("nope", status=status)
        err = await fetch_error(httpserver.url_for("/feed"))
        assert err.reason == text
        assert (err.status, err.transient, err.gone, err.retry_after) == (status, True, False, None)

    async def test_410_means_gone(self, httpserver: HTTPServer) -> None:
        """HTTP 410 marks the feed gone, which the scheduler turns into disabling it."""
        httpserver.expect_request("/feed").respond_with_data("", status=410)
        err = await fetch_error(httpserver.url_for("/feed"))
        assert (err.status, err.gone, err.transient) == (410, True, False)
        assert "HTTP 410 Gone" in str(err)

    @pytest.mark.parametrize("status", [429, 503])
    async def test_retry_after_seconds(self, httpserver: HTTPServer, status: int) -> None:
        """429 and 503 carry Retry-After given in seconds."""
        httpserver.expect_request("/feed").respond_with_data("", status=status, headers={"Retry-After": "120"})
        err = await fetch_error(httpserver.url_for("/feed"))
        assert (err.status, err.transient, err.retry_after) == (status, True, 120.0)
        assert "(retry after 120 s)" in str(err)

    async def test_retry_after_http_date(self, httpserver: HTTPServer) -> None:
        """Retry-After as an HTTP date becomes seconds from the server's clock."""

        def handler(_: Request) -> Response:
            now = dt.datetime.now(dt.UTC)
            return Response(
                "",
                status=429,
                headers={
                    "Date": email.utils.format_datetime(now, usegmt=True),
                    "Retry-After": email.utils.format_datetime(now + dt.timedelta(seconds=300), usegmt=True),
                },
            )

        httpserver.expect_request("/feed").respond_with_handler(handler)
        err = await fetch_error(httpserver.url_for("/feed"))
        assert err.retry_after is not None
        assert 299 <= err.retry_after <= 301

    async def test_503_without_retry_after(self, httpserver: HTTPServer) -> None:
        """A 503 with no (or an unparseable) Retry-After is transient with no hint."""
        httpserver.expect_request("/feed").respond_with_data("", status=503, headers={"Retry-After": "soon"})
        err = await fetch_error(httpserver.url_for("/feed"))
        assert (err.status, err.transient, err.retry_after) == (503, True, None)


class TestRedirects:
    async def test_301_chain_gives_permanent_url(self, httpserver: HTTPServer) -> None:
        """Only-permanent hops (301, 308) report the final address for the caller to store."""
        httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
        httpserver.expect_request("/b").respond_with_data(
            "", status=308, headers={"Location": httpserver.url_for("/c")}
        )
        httpserver.expect_request("/c").respond_with_data(FEED)
        result = await fetch(httpserver.url_for("/a"))
        assert result.body == FEED
        assert result.url == httpserver.url_for("/a")
        assert result.final_url == result.permanent_url == httpserver.url_for("/c")

    @pytest.mark.parametrize("temporary", [302, 303, 307])
    async def test_temporary_hop_gives_no_permanent_url(self, httpserver: HTTPServer, temporary: int) -> None:
        """One temporary hop anywhere in the chain keeps the stored URL unchanged."""
        httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
        httpserver.expect_request("/b").respond_with_data("", status=temporary, headers={"Location": "/c"})
        httpserver.expect_request("/c").respond_with_data(FEED)
        result = await fetch(httpserver.url_for("/a"))
        assert result.final_url == httpserver.url_for("/c")
        assert result.permanent_url is None

    async def test_relative_location_is_resolved(self, httpserver: HTTPServer) -> None:
        """A Location relative to the current URL (../ included) is resolved before following."""
        httpserver.expect_request("/x/y/feed").respond_with_data("", status=302, headers={"Location": "../rss?v=2"})
        httpserver.expect_request("/x/rss", query_string="v=2").respond_with_data(FEED)
        result = await fetch(httpserver.url_for("/x/y/feed"))
        assert (result.body, result.final_url) == (FEED, httpserver.url_for("/x/rss") + "?v=2")

    async def test_redirect_loop_is_detected(self, httpserver: HTTPServer) -> None:
        """A loop is reported as a loop, showing the cycle, before the hop limit is reached."""
        httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
        httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
        err = await fetch_error(httpserver.url_for("/a"))
        assert f"redirect loop: {httpserver.url_for('/a')} -> {httpserver.url_for('/b')} -> " in str(err)
        assert len(httpserver.log) == 2

    async def test_too_many_redirects(self, httpserver: HTTPServer) -> None:
        """More hops than max_redirects fail without following the rest."""
        for i in range(10):
            httpserver.expect_request(f"/r{i}").respond_with_data("", status=301, headers={"Location": f"/r{i + 1}"})
        err = await fetch_error(httpserver.url_for("/r0"), max_redirects=3)
        assert "too many redirects (more than 3)" in str(err)
        assert len(httpserver.log) == 4

    async def test_redirect_to_file_is_refused(self, httpserver: HTTPServer) -> None:
        """A server cannot make us read local files by redirecting to file://."""
        httpserver.expect_request("/feed").respond_with_data("", status=302, headers={"Location": "file:///etc/passwd"})
        assert "redirected to an unsupported URL 'file:///etc/passwd'" in str(
            await fetch_error(httpserver.url_for("/feed"))
        )

    async def test_credentials_stay_with_their_origin(self, httpserver: HTTPServer) -> None:
        """Auth and per-feed headers are not forwarded when a redirect leaves the feed's origin."""
        with HTTPServer("127.0.0.1", 0) as other:
            other.expect_request("/feed").respond_with_data(FEED)
            httpserver.expect_request("/feed").respond_with_data(
                "", status=302, headers={"Location": other.url_for("/feed")}
            )
            async with fetcher_for() as f:
                result = await f.fetch(httpserver.url_for("/feed"), headers={"X-Token": "t"}, auth=BasicAuth("u", "p"))
            assert result.body == FEED
            assert "Authorization" in httpserver.log[0][0].headers
            assert "Authorization" not in other.log[0][0].headers
            assert "X-Token" not in other.log[0][0].headers
            assert other.log[0][0].headers["User-Agent"].startswith("feedwatch/")


class TestLocalFiles:
    @pytest.mark.parametrize("form", ["path", "file-url"])
    async def test_unchanged_file_gives_304(self, tmp_path: Path, form: str) -> None:
        """A local feed is read whole, then answers 304 until its content or mtime changes."""
        path = tmp_path / "feed.xml"
        path.write_bytes(FEED)
        url = str(path) if form == "path" else path.as_uri()
        first = await fetch(url)
        assert (first.status, first.body, first.final_url, first.permanent_url) == (200, FEED, url, None)
        assert first.validators.last_modified == email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        assert (await fetch(url, first.validators)).status == 304
        assert (await fetch(url, Validators(last_modified=first.validators.last_modified))).status == 304
        path.write_bytes(FEED + b" ")
        third = await fetch(url, first.validators)
        assert (third.status, third.body) == (200, FEED + b" ")

    async def test_file_rewritten_within_the_same_second_is_seen(self, tmp_path: Path) -> None:
        """The file ETag uses the nanosecond mtime and size, so a quick rewrite is not taken for unchanged."""
        path = tmp_path / "feed.xml"
        path.write_bytes(FEED)
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        first = await fetch(str(path))
        path.write_bytes(FEED.upper())
        os.utime(path, ns=(1_700_000_000_500_000_000, 1_700_000_000_500_000_000))
        assert (await fetch(str(path), first.validators)).body == FEED.upper()

    async def test_file_over_cap(self, tmp_path: Path) -> None:
        """The byte cap applies to local files too."""
        path = tmp_path / "big.xml"
        path.write_bytes(bytes(2048))
        assert "body exceeds 1 KiB cap" in str(await fetch_error(str(path), max_bytes=1024))

    async def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a retried error naming the path."""
        err = await fetch_error(str(tmp_path / "nope.xml"))
        assert f"file not found: {tmp_path / 'nope.xml'}" in str(err)
        assert err.transient

    async def test_bare_host_hints_at_scheme(self) -> None:
        """A URL written without https:// is read as a path, and the error says how to fix it."""
        assert "write the URL with https://" in str(await fetch_error("feeds-example.invalid"))


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "javascript:alert(1)",
            "ftp://127.0.0.1/feed.xml",
            "data:text/xml,<rss/>",
            "//127.0.0.1/feed",
            "",
            "http:///x",
        ],
    )
    async def test_unsupported_urls_are_configuration_errors(self, url: str) -> None:
        """Anything but absolute http, https or file URLs (or paths) is refused and never retried soon."""
        err = await fetch_error(url)
        assert not err.transient
        assert not err.gone

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://reader:s3cret@feeds.example/rss", "https://reader:***@feeds.example/rss"),
            ("https://reader@feeds.example/rss", "https://***@feeds.example/rss"),
            ("https://reader:s3cret@[::1/rss", "https://reader:***@[::1/rss"),
            ("/srv/feeds/local.xml", "/srv/feeds/local.xml"),
        ],
        ids=["password", "user-only", "unparseable", "path"],
    )
    def test_redact_url(self, url: str, shown: str) -> None:
        """Passwords in URLs are masked wherever a URL is shown, even in URLs that do not parse."""
        assert redact_url(url) == shown

    async def test_env_proxy_is_used(self, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """HTTP_PROXY from the environment routes requests through the proxy."""
        monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/").rstrip("/"))
        httpserver.expect_request("/feed").respond_with_data(FEED)
        # Port 1 on loopback has no listener: only the proxy can answer.
        assert (await fetch("http://127.0.0.1:1/feed")).body == FEED
        assert httpserver.log[0][0].headers["Host"] == "127.0.0.1:1"

    def test_bad_ca_bundle_is_a_config_error(self, tmp_path: Path) -> None:
        """An unreadable CA bundle is reported when the client is made, naming the file."""
        with pytest.raises(ConfigError, match="cannot load CA bundle"):
            make_client(FetchSettings(ca_bundle=str(tmp_path / "missing.pem")))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, str]]:
    """An HTTPS server on 127.0.0.1 with a certificate from a throwaway CA; yields (server, CA path)."""
    ca_pem, cert_pem, key_pem = make_certs()
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(ca_pem)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    with HTTPServer("127.0.0.1", 0, ssl_context=context) as server:
        yield server, str(folder / "ca.pem")


class TestTls:
    async def test_ca_bundle_is_trusted(self, tls_server: tuple[HTTPServer, str]) -> None:
        """With ca_bundle set, a server signed by that CA is fetched over HTTPS."""
        server, ca = tls_server
        server.clear()
        server.expect_request("/feed").respond_with_data(FEED)
        assert (await fetch(server.url_for("/feed"), ca_bundle=ca)).body == FEED

    async def test_unknown_ca_is_refused(self, tls_server: tuple[HTTPServer, str]) -> None:
        """Without the bundle, the same server fails certificate verification, said plainly."""
        server, _ = tls_server
        server.clear()
        server.expect_request("/feed").respond_with_data(FEED)
        err = await fetch_error(server.url_for("/feed"))
        assert "TLS certificate verification failed for 127.0.0.1" in str(err)
