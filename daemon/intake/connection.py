"""One HTTP/1.1 connection of the feed client (:mod:`daemon.intake.http1`): asyncio streams, h11's
state, reads bounded by the read timeout, and the errors every request may end in.

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
``PeerRefused``     the caller's ``admit`` check refused the address connected to (before sending)
==================  ============================================================================
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import SupportsIndex

import h11

READ_SIZE = 64 * 1024  # bytes asked of the socket per read
MAX_HEAD = 100 * 1024  # response line and headers; CDNs with many cookies need more than h11's 16 KiB

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


class PeerRefused(HTTPError):
    """The connection's address was refused by the caller's ``admit`` check; nothing was sent."""


class Stale(Exception):
    """A kept connection turned out closed before any byte of the answer: retry on a new one."""


class IdleAwareReader(asyncio.StreamReader):
    """A StreamReader that notices bytes arriving while its connection sits idle in the pool.

    A server says nothing on an idle HTTP/1.1 connection; anything it does send (a "408 Request
    Timeout" before hanging up, junk) would be read as the answer to our next request.
    """

    idle = False
    unsolicited = False

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        if self.idle:
            self.unsolicited = True
        super().feed_data(data)


async def open_streams(host: str, port: int, tls: ssl.SSLContext | None, server_name: str | None) -> Streams:
    """A TCP connection (TLS when ``tls`` is given), resolved by the system; with several addresses the
    next one is tried after 250 ms without waiting for the first to fail (RFC 8305 "happy eyeballs").

    :func:`asyncio.open_connection`, with an :class:`IdleAwareReader`.
    """
    loop = asyncio.get_running_loop()
    reader = IdleAwareReader(limit=2 * READ_SIZE, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(
        lambda: protocol,
        host,
        port,
        ssl=tls,
        server_hostname=server_name if tls else None,
        happy_eyeballs_delay=0.25,
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class Connection:
    """A connection and its h11 state; one request at a time."""

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
        """Still usable: not closed by either side, and nothing arrived while it was idle."""
        reader = self.reader
        if isinstance(reader, IdleAwareReader) and reader.unsolicited:
            return False
        return not self.writer.is_closing() and not reader.at_eof()

    def idle(self, idle: bool) -> None:
        if isinstance(self.reader, IdleAwareReader):
            self.reader.idle = idle

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
                    raise Stale from exc
                raise ReadError(error_text(exc)) from exc

    async def receive(self) -> object:
        """The next h11 event, reading as needed; every failure as an HTTPError (or Stale)."""
        conn = self.h11
        while True:
            state = conn.their_state  # h11 sets ERROR when it raises
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise broken(exc, head=state is h11.SEND_RESPONSE) from None
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(self.read_timeout):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                raise ReadTimeout(f"nothing received for {self.read_timeout:g} s") from None
            except OSError as exc:
                if self.used and not self.answered:
                    raise Stale from exc
                raise ReadError(error_text(exc)) from exc
            if not self.answered:
                if not data:
                    if self.used:
                        raise Stale
                    raise RemoteClosed("the connection was closed without a response")
                self.answered = True
            conn.receive_data(data)


def broken(exc: h11.RemoteProtocolError, *, head: bool) -> HTTPError:
    """h11's complaint about a response, as an HTTPError saying which part was wrong."""
    if "closed" in str(exc):  # h11: "peer [unexpectedly] closed connection ..."
        return RemoteClosed(str(exc))
    if head and exc.error_status_hint == 431:
        return ProtocolError(f"response headers larger than {MAX_HEAD // 1024} KiB")
    return ProtocolError(f"malformed response {'head' if head else 'body'} ({exc})")


def error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
