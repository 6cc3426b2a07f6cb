"""A lean HTTP/1.1 client for feed GETs: asyncio streams, h11 for the framing, keep-alive per origin.

A feed poll is one GET, so this is all it does: no cookies, no redirects (the fetcher follows them
itself, checking every hop), no HTTP/2, no pipelining. Connections are kept per origin (scheme, host,
port, proxy) for ``keepalive`` seconds, or less when the server's ``Keep-Alive: timeout=N`` says so,
reused newest first, at most ``max_idle_per_origin`` per origin and ``max_idle`` in all; expired ones are
closed lazily. A response not read to its end closes its connection. A kept connection that the server
closed while it was idle is noticed before reuse or, racing, fails before any byte of the answer: then
the request goes once more on a new connection (a GET may be repeated).

Proxies come from the environment (:mod:`daemon.intake.proxies`): an ``http://`` proxy gets the whole
URL in the request line for ``http`` feeds and a ``CONNECT`` tunnel, with TLS inside, for ``https`` ones.

Every failure is an :class:`HTTPError`:

==================  ============================================================================
``ConnectError``    no connection: refused, name resolution, TLS handshake or certificate (cause kept)
``ConnectTimeout``  no connection (TCP and TLS) within ``connect_timeout``
``ReadTimeout``     the server sent nothing for ``read_timeout`` seconds
``WriteTimeout``    the request could not be sent within ``read_timeout`` seconds
``RemoteClosed``    the connection closed before the response was complete
``ProtocolError``   the bytes received are not an HTTP/1.x response (or its head is too large)
``ReadError``       the connection failed while sending or reading
``ProxyError``      the proxy refused the tunnel, or its URL cannot be used
``InvalidRequest``  a header cannot be sent as given; ``InvalidURL``: the URL cannot be requested
==================  ============================================================================
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote, urlsplit

import h11

from daemon.intake.headers import Headers, header_bytes, header_text, keepalive_timeout
from daemon.intake.proxies import ProxyRules, TunnelRefused, proxy_authorization, tunnel
from daemon.util.urls import ascii_host

READ_SIZE = 64 * 1024  # bytes asked of the socket per read
MAX_HEAD = 100 * 1024  # response line and headers; CDNs with many cookies need more than h11's 16 KiB
# nginx keeps an idle connection 75 s, AWS load balancers 60 s, Apache 5 s (which it announces in
# Keep-Alive: timeout=5). Under a minute keeps the connections of one poll cycle for the next feeds of
# that host without holding sockets servers have long given up on.
KEEPALIVE = 50.0
SWEEP_EVERY = 5.0  # seconds between lazy sweeps of expired idle connections
DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=~"  # kept as written: reserved characters and existing escapes
_QUERY_SAFE = _PATH_SAFE + "?"

Key = tuple[str, str, int, str | None]  # scheme, host (ASCII), port, proxy URL
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# (host, port, TLS context or None, server name) -> connected streams; tests pass one that refuses
# anything but loopback, so a broken guard shows as a recorded attempt rather than as traffic.
Connector = Callable[[str, int, ssl.SSLContext | None, str | None], Awaitable[Streams]]


class HTTPError(Exception):
    """A request failed; the message says how, in words for an operator."""


class ConnectError(HTTPError):
    pass


class ConnectTimeout(HTTPError):
    pass


class ReadTimeout(HTTPError):
    pass


class WriteTimeout(HTTPError):
    pass


class RemoteClosed(HTTPError):
    pass


class ProtocolError(HTTPError):
    pass


class ReadError(HTTPError):
    pass


class ProxyError(HTTPError):
    pass


class InvalidRequest(HTTPError):
    pass


class InvalidURL(InvalidRequest):
    pass


class _Stale(Exception):
    """A kept connection turned out closed before any byte of the answer: retry on a new one."""


async def open_streams(host: str, port: int, tls: ssl.SSLContext | None, server_name: str | None) -> Streams:
    """A TCP connection (TLS when ``tls`` is given), resolved by the system."""
    return await asyncio.open_connection(host, port, ssl=tls, server_hostname=server_name if tls else None)


class _Connection:
    __slots__ = ("answered", "expires", "h11", "key", "peer", "proxied", "read_timeout", "reader", "used", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: Key, read_timeout: float
    ) -> None:
        self.reader = reader
        self.read_timeout = read_timeout  # longest silence while sending or reading
        self.writer = writer
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        peer = writer.get_extra_info("peername")
        self.peer: tuple[str, int] | None = (str(peer[0]), int(peer[1])) if peer else None
        self.proxied = key[3] is not None
        self.expires = 0.0
        self.used = False  # answered a request before: an early failure may be a stale keep-alive
        self.answered = False  # a byte of the current response has arrived

    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        # abort, not close: nothing is left to send, and a TLS close_notify could wait on a dead peer.
        self.writer.transport.abort()

    async def send(self, request: h11.Request) -> None:
        self.answered = False
        data = self.h11.send(request)
        end = self.h11.send(h11.EndOfMessage())
        self.writer.write(data + end if end else data)
        if self.writer.transport.get_write_buffer_size():
            try:
                async with asyncio.timeout(self.read_timeout):
                    await self.writer.drain()
            except TimeoutError:
                raise WriteTimeout(f"the request could not be sent within {self.read_timeout:g} s") from None
            except OSError as exc:
                if self.used:
                    raise _Stale from exc
                raise ReadError(_text(exc)) from exc

    async def receive(self) -> object:
        """The next h11 event, reading as needed; every failure as an HTTPError (or _Stale)."""
        conn = self.h11
        while True:
            state = conn.their_state  # h11 sets ERROR when it raises
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _broken(exc, head=state is h11.SEND_RESPONSE) from None
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(self.read_timeout):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                raise ReadTimeout(f"nothing received for {self.read_timeout:g} s") from None
            except OSError as exc:
                if self.used and not self.answered:
                    raise _Stale from exc
                raise ReadError(_text(exc)) from exc
            if not self.answered:
                if not data:
                    if self.used:
                        raise _Stale
                    raise RemoteClosed("the connection was closed without a response")
                self.answered = True
            conn.receive_data(data)


class Response:
    """A response whose head has arrived; read the body with :meth:`read_chunk`, or :meth:`close` it."""

    __slots__ = ("_client", "_conn", "headers", "peer", "proxied", "status")

    def __init__(self, client: HTTPClient, conn: _Connection, head: h11.Response) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self.status = head.status_code
        self.headers = Headers((name.decode("ascii"), header_text(value)) for name, value in head.headers)
        self.peer = conn.peer  # the address really connected to (the proxy's, through one)
        self.proxied = conn.proxied

    async def read_chunk(self) -> bytes:
        """The next piece of the (still encoded) body; b"" at its end, when the connection is kept."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            while True:
                event = await conn.receive()
                if type(event) is h11.Data:
                    if event.data:
                        return bytes(event.data)
                elif type(event) is h11.EndOfMessage:
                    self._conn = None
                    self._client._release(conn, keepalive_timeout(self.headers, self._client.keepalive))
                    return b""
                else:
                    raise ProtocolError(f"unexpected {type(event).__name__} in a response body")
        except _Stale:
            raise RemoteClosed("the connection was closed without a response") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give up on the rest of the body: the connection closes (a finished response: nothing happens)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class HTTPClient:
    """GETs over kept HTTP/1.1 connections; one per process or command, closed with :meth:`aclose`."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext,
        connect_timeout: float,
        read_timeout: float,
        max_idle_per_origin: int = 4,
        max_idle: int = 64,
        keepalive: float = KEEPALIVE,
        proxies: ProxyRules | None = None,
        connect: Connector = open_streams,
    ) -> None:
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self._max_idle_per_origin = max(1, max_idle_per_origin)
        self._max_idle = max(1, max_idle)
        self._proxies = ProxyRules.from_environment() if proxies is None else proxies
        self._connect_streams = connect
        self._idle: dict[Key, list[_Connection]] = {}
        self._idle_count = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def idle_connections(self, origin: str | None = None) -> int:
        """Connections kept for reuse (to ``origin``, ``scheme://host:port``, when given)."""
        if origin is None:
            return self._idle_count
        return sum(len(v) for k, v in self._idle.items() if f"{k[0]}://{k[1]}:{k[2]}" == origin)

    async def get(self, url: str, headers: Sequence[tuple[str, str]]) -> Response:
        """Send ``GET url`` and wait for the response head; the caller reads or closes the body."""
        key, request = self._prepare(url, headers)
        conn = self._take(key)
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except _Stale:
                pass  # the server closed the kept connection: once more, on a new one
        conn = await self._connect(key)
        try:
            return await self._exchange(conn, request)
        except _Stale:  # not raised for a new connection; kept for the type checker
            raise RemoteClosed("the connection was closed without a response") from None

    async def aclose(self) -> None:
        """Close every kept connection; responses still being read close theirs when done."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle = [conn for conns in self._idle.values() for conn in conns]
        self._idle.clear()
        self._idle_count = 0
        for conn in idle:
            conn.close()
        if idle:
            await asyncio.wait([asyncio.ensure_future(c.writer.wait_closed()) for c in idle], timeout=1.0)

    # -- requests ------------------------------------------------------------------------------

    def _prepare(self, url: str, headers: Sequence[tuple[str, str]]) -> tuple[Key, h11.Request]:
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = ascii_host(parts.hostname or "")
            port = parts.port or DEFAULT_PORTS[scheme]
        except KeyError:
            raise InvalidURL("only http and https URLs are fetched") from None
        except (ValueError, UnicodeError) as exc:  # never the URL itself: it may hold a password
            raise InvalidURL(_text(exc)) from None
        if not host:
            raise InvalidURL("no host name")
        proxy = self._proxies.proxy_for(scheme, host)
        authority = f"[{host}]" if ":" in host else host
        if port != DEFAULT_PORTS[scheme]:
            authority += f":{port}"
        target = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_QUERY_SAFE)
        fields = [("Host", authority), *headers]
        if proxy is not None and scheme == "http":  # absolute-form request line to the proxy itself
            target = f"http://{authority}{target}"
            if (auth := proxy_authorization(proxy)) is not None:
                fields.append(("Proxy-Authorization", auth))
        try:
            request = h11.Request(
                method="GET", target=target, headers=[(k.encode("ascii"), header_bytes(v)) for k, v in fields]
            )
        except (h11.LocalProtocolError, UnicodeError):  # h11's text repeats the value: maybe a token
            raise InvalidRequest("a request header holds characters HTTP does not allow (a line break?)") from None
        return (scheme, host, port, proxy), request

    async def _exchange(self, conn: _Connection, request: h11.Request) -> Response:
        try:
            await conn.send(request)
            while True:
                event = await conn.receive()
                if isinstance(event, h11.Response):
                    return Response(self, conn, event)
                if not isinstance(event, h11.InformationalResponse):  # 1xx: the real answer follows
                    raise ProtocolError(f"unexpected {type(event).__name__} instead of a response")
        except BaseException:
            conn.close()
            raise

    # -- connections ---------------------------------------------------------------------------

    async def _connect(self, key: Key) -> _Connection:
        scheme, host, port, proxy = key
        try:
            async with asyncio.timeout(self.connect_timeout):
                if proxy is None:
                    reader, writer = await self._connect_streams(
                        host, port, self.tls if scheme == "https" else None, host
                    )
                else:
                    reader, writer = await self._through_proxy(proxy, scheme, host, port)
        except TimeoutError:
            raise ConnectTimeout(f"no connection within {self.connect_timeout:g} s") from None
        except (OSError, UnicodeError) as exc:  # ssl.SSLError is an OSError
            raise ConnectError(_text(exc)) from exc
        return _Connection(reader, writer, key, self.read_timeout)

    async def _through_proxy(self, proxy: str, scheme: str, host: str, port: int) -> Streams:
        parts = urlsplit(proxy)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ProxyError(f"proxy {parts.scheme}://{parts.hostname or ''} cannot be used: only http:// proxies are")
        reader, writer = await self._connect_streams(parts.hostname, parts.port or 80, None, None)
        if scheme == "http":
            return reader, writer
        try:
            await tunnel(reader, writer, host, port, proxy_authorization(proxy), max_head=MAX_HEAD)
            await writer.start_tls(self.tls, server_hostname=host)
        except TunnelRefused as exc:
            writer.transport.abort()
            raise ProxyError(str(exc)) from None
        except BaseException:
            writer.transport.abort()
            raise
        return reader, writer

    def _take(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # newest first: the likeliest to be still open
            self._idle_count -= 1
            if conn.expires > now and conn.alive():
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection, keepalive: float) -> None:
        """A response read to its end: keep its connection when HTTP/1.1 and everyone allow it."""
        state = conn.h11
        if self._closed or keepalive <= 0 or state.our_state is not h11.DONE or state.their_state is not h11.DONE:
            conn.close()
            return
        state.start_next_cycle()
        conn.used = True
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self._max_idle_per_origin:
            idle.pop(0).close()  # the oldest goes
            self._idle_count -= 1
        if self._idle_count >= self._max_idle:
            conn.close()
            return
        conn.expires = time.monotonic() + keepalive
        idle.append(conn)
        self._idle_count += 1
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections that expired or that the server closed; runs while any are kept."""
        self._sweeper = None
        now = time.monotonic()
        for key in list(self._idle):
            keep = []
            for conn in self._idle[key]:
                if conn.expires > now and conn.alive():
                    keep.append(conn)
                else:
                    conn.close()
                    self._idle_count -= 1
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self._idle_count and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._sweep)


def _broken(exc: h11.RemoteProtocolError, *, head: bool) -> HTTPError:
    """h11's complaint about a response, as an HTTPError saying which part was wrong."""
    if "closed" in str(exc):  # h11: "peer [unexpectedly] closed connection ..."
        return RemoteClosed(str(exc))
    if head and exc.error_status_hint == 431:
        return ProtocolError(f"response headers larger than {MAX_HEAD // 1024} KiB")
    return ProtocolError(f"malformed response {'head' if head else 'body'} ({exc})")


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
