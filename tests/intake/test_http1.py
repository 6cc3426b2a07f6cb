"""The feed client's HTTP/1.1 against hand-written servers on 127.0.0.1: keep-alive and its failures,
body framings, hostile responses, TLS and proxies."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.errors import FetchError
from daemon.intake.connection import PeerRefused
from daemon.intake.fetch import Fetcher, FetchResult, FetchSettings, make_client
from daemon.intake.headers import BasicAuth, Validators
from daemon.intake.http1 import HTTPClient
from daemon.intake.proxies import ProxyRules
from tests.kit.tls import server_context

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)

# (writer, connection number, request number on that connection, request head) -> keep the connection?
Reply = Callable[[asyncio.StreamWriter, int, int, bytes], Awaitable[bool]]


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Seen:
    """What a server saw: connections opened and ended, and every request head."""

    url: str = ""
    connections: int = 0
    ended: int = 0
    requests: list[bytes] = field(default_factory=list)


@contextlib.asynccontextmanager
async def server(reply: Reply, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Seen]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 whose every answer is written by ``reply``."""
    seen = Seen()
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)  # type: ignore[arg-type]
        number = seen.connections
        seen.connections += 1
        try:
            for index in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                seen.requests.append(head)
                keep = await reply(writer, number, index, head)
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            seen.ended += 1
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    srv = await asyncio.start_server(run, "127.0.0.1", 0, ssl=tls)
    port = srv.sockets[0].getsockname()[1]
    seen.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/feed"
    try:
        yield seen
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


def ok(body: bytes = FEED, *extra: bytes, version: bytes = b"1.1") -> bytes:
    head = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/%s 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (version, head, len(body), body)


def always(data: bytes, *, keep: bool = True) -> Reply:
    async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
        writer.write(data)
        return keep

    return reply


@contextlib.asynccontextmanager
async def fetcher(**settings: object) -> AsyncIterator[Fetcher]:
    base: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}
    base.update(settings)
    fs = FetchSettings(**base)  # type: ignore[arg-type]
    async with make_client(fs) as client:
        yield Fetcher(client, fs)


async def fetch_error(f: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        await f.fetch(url)
    assert str(info.value).startswith(url + ": "), "every fetch error starts with the feed URL"
    return info.value


class TestKeepAlive:
    async def test_sequential_fetches_share_one_connection(self) -> None:
        """Five polls of one origin, one after another, travel over a single TCP connection."""
        async with server(always(ok())) as seen, fetcher() as f:
            for _ in range(5):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 1
        assert len(seen.requests) == 5

    async def test_304_keeps_the_connection(self) -> None:
        """A 304 (no body) leaves its connection ready for the next poll."""
        not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'
        async with server(always(not_modified)) as seen, fetcher() as f:
            for _ in range(3):
                result = await f.fetch(seen.url, Validators(etag='"v1"'))
                assert (result.status, result.body) == (304, None)
        assert seen.connections == 1

    async def test_idle_connection_closed_by_the_server_is_replaced(self) -> None:
        """A server that hangs up on an idle kept connection costs nothing: the next poll connects anew."""
        async with server(always(ok(), keep=False)) as seen, fetcher() as f:
            assert (await f.fetch(seen.url)).body == FEED
            await asyncio.sleep(0.1)  # the server's FIN arrives while the connection is idle
            assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2

    async def test_request_racing_the_servers_close_is_sent_again(self) -> None:
        """A kept connection that closes with no answer to the next request is retried once on a new one."""

        async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
            if index == 1:
                return False  # read the second request, then hang up without a byte
            writer.write(ok())
            return True

        async with server(reply) as seen, fetcher() as f:
            assert (await f.fetch(seen.url)).body == FEED
            assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2
        assert len(seen.requests) == 3

    async def test_408_on_a_kept_connection_is_sent_again(self) -> None:
        """A "408 Request Timeout" on a kept connection (the server gave up on it) is retried on a new one."""

        async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
            if index == 1:
                writer.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return False
            writer.write(ok())
            return True

        async with server(reply) as seen, fetcher() as f:
            for _ in range(2):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2
        assert len(seen.requests) == 3

    async def test_bytes_sent_to_an_idle_connection_retire_it(self) -> None:
        """Anything a server sends on an idle connection (here a 408 notice) is not read as the next answer."""

        async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
            writer.write(ok())
            if conn == 0:
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            return True

        async with server(reply) as seen, fetcher() as f:
            assert (await f.fetch(seen.url)).body == FEED
            await asyncio.sleep(0.2)
            assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2
        assert len(seen.requests) == 2

    async def test_bytes_past_the_end_of_a_response_retire_its_connection(self) -> None:
        """A 304 that carries a body anyway leaves bytes that are not an answer: the connection is not reused."""
        bogus = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\nhello'
        async with server(always(bogus)) as seen, fetcher() as f:
            for _ in range(3):
                assert (await f.fetch(seen.url, Validators(etag='"v1"'))).status == 304
        assert seen.connections == 3

    async def test_new_connection_closed_without_answer_is_not_retried(self) -> None:
        """Only a reused connection earns a second try: a new one that closes unanswered is an error."""
        async with server(always(b"", keep=False)) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "broke the HTTP protocol (connection closed early?)" in str(err)
        assert seen.connections == 1

    async def test_connection_close_is_honoured(self) -> None:
        """``Connection: close`` from the server means a new connection for the next poll."""
        async with server(always(ok(FEED, b"Connection: close"), keep=False)) as seen, fetcher() as f:
            for _ in range(2):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2

    async def test_server_keep_alive_timeout_is_honoured(self) -> None:
        """``Keep-Alive: timeout=1`` leaves no idle time (a second of margin): the connection is not kept."""
        async with server(always(ok(FEED, b"Keep-Alive: timeout=1"))) as seen, fetcher() as f:
            for _ in range(2):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2

    async def test_unread_body_closes_its_connection(self) -> None:
        """An error page too large to drain is left unread, and its connection is not reused."""
        page = b"HTTP/1.1 404 Not Found\r\nContent-Length: 200000\r\n\r\n" + bytes(200_000)
        async with server(always(page)) as seen, fetcher() as f:
            for _ in range(2):
                assert (await fetch_error(f, seen.url)).status == 404
        assert seen.connections == 2

    async def test_expired_idle_connection_is_not_reused(self) -> None:
        """A connection idle longer than the keep-alive time is closed instead of reused."""
        client = HTTPClient(tls=ssl.create_default_context(), connect_timeout=2, read_timeout=2, keepalive=0.1)
        async with server(always(ok())) as seen, client:
            for pause in (0.0, 0.3):
                await asyncio.sleep(pause)
                response = await client.get(seen.url, [])
                while await response.read_chunk():
                    pass
        assert seen.connections == 2

    async def test_idle_connections_in_all_stay_under_the_cap(self) -> None:
        """With room for two idle connections, fetches from three origins leave two kept."""
        client = HTTPClient(tls=ssl.create_default_context(), connect_timeout=2, read_timeout=2, max_idle=2)
        async with server(always(ok())) as a, server(always(ok())) as b, server(always(ok())) as c, client:
            for seen in (a, b, c):
                response = await client.get(seen.url, [])
                while await response.read_chunk():
                    pass
            assert client.idle_connections() == 2

    async def test_closing_the_client_closes_idle_connections(self) -> None:
        """After the client is closed the server sees its kept connection end."""
        async with server(always(ok())) as seen:
            async with fetcher() as f:
                await f.fetch(seen.url)
                assert seen.ended == 0
            for _ in range(50):
                if seen.ended:
                    break
                await asyncio.sleep(0.02)
            assert seen.ended == 1


class TestPeerCheck:
    async def test_refused_peer_gets_no_request(self) -> None:
        """A connection whose address the caller refuses carries no request, new or kept."""
        async with server(always(ok())) as seen:
            async with HTTPClient(tls=ssl.create_default_context(), connect_timeout=2, read_timeout=2) as client:
                response = await client.get(seen.url, [])
                assert await response.read_chunk() == FEED
                assert await response.read_chunk() == b""
                for _ in range(2):  # the kept connection, then a new one
                    with pytest.raises(PeerRefused, match="not this one"):
                        await client.get(seen.url, [], admit=lambda peer, proxied: "not this one")
            assert len(seen.requests) == 1
            assert seen.connections == 2

    async def test_admit_sees_the_real_peer(self) -> None:
        """The address handed to the check is the socket's peer, loopback here, and not a proxy's."""
        peers: list[tuple[tuple[str, int] | None, bool]] = []

        def admit(peer: tuple[str, int] | None, proxied: bool) -> str | None:
            peers.append((peer, proxied))
            return None

        client = HTTPClient(tls=ssl.create_default_context(), connect_timeout=2, read_timeout=2)
        async with server(always(ok())) as seen, client:
            response = await client.get(seen.url, [], admit=admit)
            response.close()
        port = int(seen.url.split(":")[2].split("/")[0])
        assert peers == [(("127.0.0.1", port), False)]

    async def test_kept_connection_needs_no_dns_lookup(self) -> None:
        """The host's addresses are checked before a connection is made, not again for each poll on it."""
        lookups: list[str] = []

        async def resolve(host: str, port: int) -> list[str]:
            lookups.append(host)
            return ["127.0.0.1"]

        settings = FetchSettings(connect_timeout=2, read_timeout=2, total_timeout=5)
        async with server(always(ok())) as seen, make_client(settings) as client:
            f = Fetcher(client, settings, resolve=resolve)
            for _ in range(3):
                assert (await f.fetch(seen.url.replace("127.0.0.1", "localhost"))).body == FEED
        assert lookups == ["localhost"]
        assert seen.connections == 1

    async def test_every_proxied_request_is_checked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Through a proxy (which resolves the name itself, each time) every request's host is checked first."""
        lookups: list[str] = []

        async def resolve(host: str, port: int) -> list[str]:
            lookups.append(host)
            return ["93.184.216.34"] if len(lookups) < 3 else ["169.254.169.254"]

        settings = FetchSettings(connect_timeout=2, read_timeout=2, total_timeout=5)
        async with server(always(ok())) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/feed"))
            async with make_client(settings) as client:  # made after: a client reads the proxies when made
                f = Fetcher(client, settings, resolve=resolve)
                for _ in range(2):
                    assert (await f.fetch("http://feeds.example/rss")).body == FEED
                with pytest.raises(FetchError, match="link-local"):
                    await f.fetch("http://feeds.example/rss")
        assert lookups == ["feeds.example"] * 3
        assert len(proxy.requests) == 2
        assert proxy.connections == 1


class TestFraming:
    async def test_chunked_body_with_extensions_and_trailers(self) -> None:
        """A chunked body is reassembled, and the connection is reused after it."""
        body = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"10;name=value\r\n" + FEED[:16] + b"\r\n"
            b"%x\r\n" % (len(FEED) - 16) + FEED[16:] + b"\r\n"
            b"0\r\nX-Trailer: 1\r\n\r\n"
        )
        async with server(always(body)) as seen, fetcher() as f:
            for _ in range(2):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 1

    @pytest.mark.parametrize("version", [b"1.1", b"1.0"])
    async def test_close_delimited_body(self, version: bytes) -> None:
        """A body with no length, ended by the server closing, arrives whole."""
        data = b"HTTP/%s 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n%s" % (version, FEED * 100)
        async with server(always(data, keep=False)) as seen, fetcher() as f:
            result = await f.fetch(seen.url)
        assert (result.body, result.content_type) == (FEED * 100, "application/rss+xml")

    async def test_http_1_0_response_is_read_and_not_kept(self) -> None:
        """An HTTP/1.0 answer with Content-Length is read; 1.0 without keep-alive means a new connection."""
        async with server(always(ok(version=b"1.0"), keep=False)) as seen, fetcher() as f:
            for _ in range(2):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 2

    async def test_informational_response_is_skipped(self) -> None:
        """A 1xx before the real answer is passed over."""
        async with server(always(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok())) as seen, fetcher() as f:
            assert (await f.fetch(seen.url)).body == FEED

    async def test_path_and_query_are_percent_encoded(self) -> None:
        """Spaces and non-ASCII letters in a feed URL go out percent-encoded; existing escapes stay."""
        async with server(always(ok())) as seen, fetcher() as f:
            await f.fetch(seen.url.replace("/feed", "/caf\u00e9 feed/a%2Fb?q=\u00fc x&v=1#frag"))
        assert seen.requests[0].startswith(b"GET /caf%C3%A9%20feed/a%2Fb?q=%C3%BC%20x&v=1 HTTP/1.1\r\n")


class TestHostile:
    async def test_oversized_response_headers(self) -> None:
        """A response head past 100 KiB fails with a clear reason naming the URL."""
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Junk: " + b"a" * 200_000 + b"\r\n\r\n"
        async with server(always(head)) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "response headers larger than 100 KiB" in str(err)
        assert err.transient

    @pytest.mark.parametrize("line", [b"HTTP/1.1 OK\r\n\r\n", b"garbage\r\n\r\n", b"HTTP/1.1 2000 Big\r\n\r\n"])
    async def test_malformed_status_line(self, line: bytes) -> None:
        """A status line that is not HTTP is reported as a protocol failure, naming the URL."""
        async with server(always(line)) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "broke the HTTP protocol: malformed response head" in str(err)

    @pytest.mark.parametrize(
        "data",
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<rss>", b"HTTP/1.1 200 OK\r\nContent-Le"],
        ids=["body", "head"],
    )
    async def test_truncated_response(self, data: bytes) -> None:
        """A response cut short (in its body or its head) is an error, not a short feed."""
        async with server(always(data, keep=False)) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "connection closed early?" in str(err)

    async def test_trickled_headers_hit_the_total_deadline(self) -> None:
        """A server dribbling its response head a byte at a time fails at the total time limit."""

        async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
            return False

        async with server(reply) as seen, fetcher(read_timeout=0.5, total_timeout=1.0) as f:
            started = time.monotonic()
            err = await fetch_error(f, seen.url)
        assert "1 s total time limit" in str(err)
        assert time.monotonic() - started < 2.0

    async def test_endless_body_is_refused_while_streaming(self) -> None:
        """A body with no length that never ends is cut at max_bytes, long before it could be buffered."""

        async def reply(writer: asyncio.StreamWriter, conn: int, index: int, head: bytes) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
            while True:
                writer.write(bytes(64 * 1024))
                await writer.drain()

        async with server(reply) as seen, fetcher(max_bytes=1 << 20) as f:
            err = await fetch_error(f, seen.url)
        assert "body exceeds 1 MiB cap (before decompression)" in str(err)

    async def test_header_with_a_line_break_is_refused_without_echoing_it(self) -> None:
        """A configured header value holding a line break is a permanent error that does not repeat it."""
        async with server(always(ok())) as seen, fetcher() as f:
            with pytest.raises(FetchError) as info:
                await f.fetch(seen.url, headers={"X-Token": "s3cret\r\nX-Evil: 1"})
        assert "cannot send the request" in str(info.value)
        assert "s3cret" not in str(info.value)
        assert not info.value.transient
        assert seen.requests == []


class TestAuth:
    async def test_url_credentials_become_basic_auth(self) -> None:
        """``https://user:pass@host/`` sends those credentials as Basic auth."""
        async with server(always(ok())) as seen, fetcher() as f:
            await f.fetch(seen.url.replace("://", "://reader:p%40ss@"))
        assert b"Authorization: Basic cmVhZGVyOnBAc3M=\r\n" in seen.requests[0]

    async def test_basic_auth_wins_over_a_caller_authorization_header(self) -> None:
        """Username and password win over an Authorization header given with them; one is sent."""
        async with server(always(ok())) as seen, fetcher() as f:
            await f.fetch(seen.url, headers={"authorization": "Bearer t"}, auth=BasicAuth("u", "p"))
        assert seen.requests[0].lower().count(b"authorization:") == 1
        assert b"Authorization: Basic dTpw\r\n" in seen.requests[0]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    return server_context(tmp_path_factory.mktemp("tls"))


class TestTls:
    async def test_tls_connection_is_reused(self, tls: tuple[ssl.SSLContext, str]) -> None:
        """Polls over HTTPS share one TLS connection (one handshake)."""
        context, ca = tls
        async with server(always(ok()), tls=context) as seen, fetcher(ca_bundle=ca) as f:
            for _ in range(3):
                assert (await f.fetch(seen.url)).body == FEED
        assert seen.connections == 1

    async def test_tls_settings_are_made_at_the_first_https_connection(self, tls: tuple[ssl.SSLContext, str]) -> None:
        """A client given a TLS provider calls it only when an https feed connects, and once: plain-http
        polling never loads a CA store."""
        context, ca = tls
        made: list[ssl.SSLContext] = []

        def provide() -> ssl.SSLContext:
            made.append(ssl.create_default_context(cafile=ca))
            return made[-1]

        fs = FetchSettings(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)
        async with HTTPClient(tls=provide, connect_timeout=2, read_timeout=2) as client:
            f = Fetcher(client, fs)
            async with server(always(ok())) as plain:
                assert (await f.fetch(plain.url)).body == FEED
            assert made == []
            async with server(always(ok()), tls=context) as secure:
                for _ in range(2):
                    assert (await f.fetch(secure.url)).body == FEED
            assert len(made) == 1


async def tunnel_proxy(log: list[bytes], *, status: int = 200) -> tuple[asyncio.Server, str]:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), to 127.0.0.1 only, recording each request head."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        log.append(head)
        method, target, _ = head.split(b" ", 2)
        host, _, port = target.decode().rpartition(":")
        if method != b"CONNECT" or host != "127.0.0.1" or status != 200:
            writer.write(b"HTTP/1.1 %d No\r\nContent-Length: 0\r\n\r\n" % (status if status != 200 else 405))
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy = await asyncio.start_server(run, "127.0.0.1", 0)
    return proxy, f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"


class TestProxies:
    async def test_https_through_a_connect_tunnel(
        self, tls: tuple[ssl.SSLContext, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HTTPS_PROXY tunnels an https feed with CONNECT (credentials from the proxy URL), TLS inside."""
        context, ca = tls
        log: list[bytes] = []
        proxy, proxy_url = await tunnel_proxy(log)
        monkeypatch.setenv("HTTPS_PROXY", proxy_url.replace("://", "://me:pw@"))
        try:
            async with server(always(ok()), tls=context) as seen, fetcher(ca_bundle=ca) as f:
                for _ in range(2):
                    result: FetchResult = await f.fetch(seen.url)
                    assert result.body == FEED
            authority = seen.url.split("/")[2].encode()
            assert log == [
                b"CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic bWU6cHc=\r\n\r\n"
                % (authority, authority)
            ]
            assert seen.requests[0].startswith(b"GET /feed HTTP/1.1\r\n")
        finally:
            proxy.close()
            await proxy.wait_closed()

    async def test_refused_tunnel_is_a_proxy_error(
        self, tls: tuple[ssl.SSLContext, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A proxy answering 403 to CONNECT fails the fetch, saying so."""
        context, ca = tls
        proxy, proxy_url = await tunnel_proxy([], status=403)
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        try:
            async with server(always(ok()), tls=context) as seen, fetcher(ca_bundle=ca) as f:
                err = await fetch_error(f, seen.url)
            assert "proxy error reaching 127.0.0.1:" in str(err)
            assert "answered HTTP 403 to CONNECT" in str(err)
            assert seen.connections == 0
        finally:
            proxy.close()
            await proxy.wait_closed()

    async def test_no_proxy_goes_direct(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A host listed in NO_PROXY is fetched directly even with HTTP_PROXY set (to a dead port here)."""
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with server(always(ok())) as seen, fetcher() as f:
            assert (await f.fetch(seen.url)).body == FEED

    async def test_unreachable_proxy_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A proxy nobody answers at is reported as the proxy's failure, not the feed server's."""
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
        async with server(always(ok())) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "proxy error reaching 127.0.0.1:" in str(err)
        assert "cannot connect to the proxy 127.0.0.1:1" in str(err)
        assert seen.connections == 0

    async def test_socks_proxy_is_refused_plainly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A proxy URL of a scheme we cannot speak fails the fetch with the reason, sending nothing."""
        monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
        async with server(always(ok())) as seen, fetcher() as f:
            err = await fetch_error(f, seen.url)
        assert "only http:// proxies" in str(err)
        assert seen.connections == 0

    @pytest.mark.parametrize(
        ("no_proxy", "host", "direct"),
        [
            ("example.org", "example.org", True),
            ("example.org", "feeds.example.org", True),
            ("example.org", "badexample.org", False),
            (".example.org", "example.org", False),
            (".example.org", "feeds.example.org", True),
            ("*.example.org", "feeds.example.org", True),
            ("10.0.0.0/8", "10.1.2.3", True),
            ("10.0.0.0/8", "11.1.2.3", False),
            ("::1", "::1", True),
            ("https://example.org", "example.org", False),  # for https only; this is http
            ("*", "anything.example", True),
            ("", "example.org", False),
        ],
    )
    def test_no_proxy_entries(self, no_proxy: str, host: str, direct: bool) -> None:
        """NO_PROXY names hosts, domains (with or without a leading dot), networks, schemes, or everything."""
        rules = ProxyRules({"http": "http://proxy.invalid:3128"}, tuple(no_proxy.split(",")) if no_proxy else ())
        rules = ProxyRules(rules.proxies, rules.bypass, "*" in rules.bypass)
        assert (rules.proxy_for("http", host) is None) is direct


def test_polling_path_does_not_import_httpx() -> None:
    """The polling path (service, poller, fetcher, client) loads without httpx, httpcore or anyio."""
    import subprocess
    import sys

    code = (
        "import sys, daemon.service.app, daemon.service.dryrun, daemon.intake.poller, daemon.intake.fetch; "
        "print(sorted({'httpx', 'httpcore', 'anyio'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert out.stdout.strip() == "[]"
