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

Every failure is an :class:`~daemon.intake.connection.HTTPError` (the table is there).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote, urlsplit

import h11

from daemon.intake.connection import (
    MAX_HEAD,
    ConnectError,
    Connection,
    Connector,
    ConnectTimeout,
    InvalidRequest,
    InvalidURL,
    Key,
    PeerRefused,
    ProtocolError,
    ProxyError,
    RemoteClosed,
    Stale,
    Streams,
    error_text,
    open_streams,
)
from daemon.intake.headers import Headers, header_bytes, header_text, keepalive_timeout
from daemon.intake.proxies import ProxyRules, TunnelRefused, proxy_authorization, tunnel
from daemon.util.urls import ascii_host

# nginx keeps an idle connection 75 s, AWS load balancers 60 s, Apache 5 s (which it announces in
# Keep-Alive: timeout=5). Under a minute keeps the connections of one poll cycle for the next feeds of
# that host without holding sockets servers have long given up on.
KEEPALIVE = 50.0
SWEEP_EVERY = 5.0  # seconds between lazy sweeps of expired idle connections
DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=~"  # kept as written: reserved characters and existing escapes
_QUERY_SAFE = _PATH_SAFE + "?"

_Target = tuple[Key, str, tuple[tuple[bytes, bytes], ...]]  # key, request target, Host & proxy fields
TARGETS_CACHED = 8192  # URLs whose parsing is remembered (a daemon polls the same ones again and again)
# (peer address or None, through a proxy?) -> why that connection may not be used, or None
Admit = Callable[[tuple[str, int] | None, bool], str | None]


class Response:
    """A response whose head has arrived; read the body with :meth:`read_chunk`, or :meth:`close` it."""

    __slots__ = ("_client", "_conn", "headers", "peer", "proxied", "status")

    def __init__(self, client: HTTPClient, conn: Connection, head: h11.Response) -> None:
        self._client = client
        self._conn: Connection | None = conn
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
        except Stale:
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
        tls: ssl.SSLContext | Callable[[], ssl.SSLContext],
        connect_timeout: float,
        read_timeout: float,
        max_idle_per_origin: int = 4,
        max_idle: int = 64,
        keepalive: float = KEEPALIVE,
        proxies: ProxyRules | None = None,
        connect: Connector = open_streams,
    ) -> None:
        self._tls = tls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self._max_idle_per_origin = max(1, max_idle_per_origin)
        self._max_idle = max(1, max_idle)
        self._proxies = ProxyRules.from_environment() if proxies is None else proxies
        self._connect_streams = connect
        self._idle: dict[Key, list[Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._idle_count = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS settings; a provider is called at the first HTTPS connection (a CA store is ~1.5 MB)."""
        if not isinstance(self._tls, ssl.SSLContext):
            self._tls = self._tls()
        return self._tls

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def idle_connections(self, origin: str | None = None) -> int:
        """Connections kept for reuse (to ``origin``, ``scheme://host:port``, when given)."""
        if origin is None:
            return self._idle_count
        return sum(len(v) for k, v in self._idle.items() if f"{k[0]}://{k[1]}:{k[2]}" == origin)

    async def get(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        *,
        admit: Admit | None = None,
        before_connect: Callable[[], Awaitable[None]] | None = None,
    ) -> Response:
        """Send ``GET url`` and wait for the response head; the caller reads or closes the body.

        ``admit`` sees the address of the connection about to carry the request (and whether it is a
        proxy's): a reason it returns refuses that connection before a byte is sent (:class:`PeerRefused`).
        ``before_connect`` is awaited before a new connection is opened for the request (and before every
        request through a proxy, which resolves the host anew each time); what it raises propagates.
        """
        key, request = self._prepare(url, headers)
        vetted = False
        if before_connect is not None and key[3] is not None:
            await before_connect()
            vetted = True
        conn = self._take(key)
        if conn is not None:
            _admit(conn, admit)
            try:
                response = await self._exchange(conn, request)
            except Stale:
                pass  # the server closed the kept connection: once more, on a new one
            else:
                if response.status != 408:
                    return response
                response.close()  # a server's "idle too long" notice, read as our answer: once more
        if before_connect is not None and not vetted:
            await before_connect()
        conn = await self._connect(key)
        _admit(conn, admit)
        try:
            return await self._exchange(conn, request)
        except Stale:  # not raised for a new connection; kept for the type checker
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
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
            if len(self._targets) >= TARGETS_CACHED:
                self._targets.clear()
            self._targets[url] = target
        key, path, fields = target
        try:
            request = h11.Request(
                method="GET",
                target=path,
                headers=[*fields, *((k.encode("ascii"), header_bytes(v)) for k, v in headers)],
            )
        except (h11.LocalProtocolError, UnicodeError):  # h11's text repeats the value: maybe a token
            raise InvalidRequest("a request header holds characters HTTP does not allow (a line break?)") from None
        return key, request

    def _target(self, url: str) -> _Target:
        """Where ``url`` goes: its pool key, request target and Host (and Proxy-Authorization) fields."""
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = ascii_host(parts.hostname or "")
            port = parts.port or DEFAULT_PORTS[scheme]
        except KeyError:
            raise InvalidURL("only http and https URLs are fetched") from None
        except (ValueError, UnicodeError) as exc:  # never the URL itself: it may hold a password
            raise InvalidURL(error_text(exc)) from None
        if not host:
            raise InvalidURL("no host name")
        proxy = self._proxies.proxy_for(scheme, host)
        authority = f"[{host}]" if ":" in host else host
        if port != DEFAULT_PORTS[scheme]:
            authority += f":{port}"
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_QUERY_SAFE)
        fields = [(b"Host", authority.encode("ascii"))]
        if proxy is not None and scheme == "http":  # absolute-form request line to the proxy itself
            path = f"http://{authority}{path}"
            if (auth := proxy_authorization(proxy)) is not None:
                fields.append((b"Proxy-Authorization", auth.encode("latin-1")))
        return (scheme, host, port, proxy), path, tuple(fields)

    async def _exchange(self, conn: Connection, request: h11.Request) -> Response:
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

    async def _connect(self, key: Key) -> Connection:
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
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; a host that cannot be encoded
            raise ConnectError(error_text(exc)) from exc
        return Connection(reader, writer, key, self.read_timeout)

    async def _through_proxy(self, proxy: str, scheme: str, host: str, port: int) -> Streams:
        parts = urlsplit(proxy)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ProxyError(f"proxy {parts.scheme}://{parts.hostname or ''} cannot be used: only http:// proxies are")
        where = f"{parts.hostname}:{parts.port or 80}"
        try:
            reader, writer = await self._connect_streams(parts.hostname, parts.port or 80, None, None)
        except (OSError, ValueError) as exc:
            raise ProxyError(f"cannot connect to the proxy {where}: {error_text(exc)}") from exc
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

    def _take(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # newest first: the likeliest to be still open
            self._idle_count -= 1
            if conn.expires > now and conn.alive():
                conn.idle(False)
                return conn
            conn.close()
        return None

    def _release(self, conn: Connection, keepalive: float) -> None:
        """A response read to its end: keep its connection when HTTP/1.1 and everyone allow it."""
        state = conn.h11
        done = state.our_state is h11.DONE and state.their_state is h11.DONE
        # Bytes past the response's end (a body on a 304, say) would be misread as the next answer.
        if self._closed or keepalive <= 0 or not done or state.trailing_data[0]:
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
        conn.idle(True)
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


def _admit(conn: Connection, admit: Admit | None) -> None:
    if admit is not None and (reason := admit(conn.peer, conn.proxied)) is not None:
        conn.close()
        raise PeerRefused(reason)
