"""The HTTP edge of polling: conditional GET, bounded decompression, redirects, deadlines, ``file://``.

Every failure leaves as :class:`daemon.errors.FetchError` naming the feed URL and what went wrong.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import http
import mimetypes
import os
import re
import socket
import ssl
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx
import structlog

from daemon import __version__
from daemon.errors import ConfigError, FetchError
from daemon.intake.decode import DecodeError, TooBig, body_decoder

log = structlog.get_logger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
DRAIN_MAX = 64 * 1024  # bytes read from a response we do not use, so its connection can be reused


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Limits for every fetch; one instance shared by the client and the fetcher."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # longest silence between two reads
    total_timeout: float = 60.0  # whole fetch incl. redirects: catches trickling servers
    max_bytes: int = 10 * 1024 * 1024  # cap on the decompressed body, enforced while streaming
    max_redirects: int = 5
    user_agent: str = f"feedwatch/{__version__} (+https://github.com/feedwatch/feedwatch)"
    ca_bundle: str | None = None
    per_host_limit: int = 2  # concurrent fetches per host:port, to stay polite to shared hosts


@dataclass(frozen=True, slots=True)
class Validators:
    """What to send on the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful fetch: a body (2xx) or confirmation that nothing changed (304)."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    permanent_url: str | None  # set when every hop to final_url was 301/308: store it as the feed's URL
    status: int  # 2xx or 304
    body: bytes | None  # None on 304
    content_type: str | None
    validators: Validators  # store these (with the items) for the next conditional GET
    expires_in: float | None  # seconds the publisher asked us not to re-poll (max-age / Expires)
    elapsed: float


def redact_url(url: str) -> str:
    """``url`` with any password in its userinfo replaced, for logs and error text."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparseable (e.g. a broken IPv6 literal): redact by pattern instead
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def make_client(settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one shared client: env proxies honoured, our redirect handling, ``ca_bundle`` if set."""
    try:
        verify = _tls_context(settings.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA bundle: {exc}", path=settings.ca_bundle) from exc
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.total_timeout,
        ),
        follow_redirects=False,
        trust_env=True,
        verify=verify,
        transport=transport,
        headers={"User-Agent": settings.user_agent},
    )


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Loading a CA store takes ~50 ms, so clients made in one process share a context per bundle."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context(trust_env=True)  # certifi, or SSL_CERT_FILE / SSL_CERT_DIR


class Fetcher:
    """Fetches feeds on one shared client; safe to call concurrently (``per_host_limit`` per host).

    Every failure is a :class:`FetchError` whose text starts with the feed URL (password redacted):

    ==================  ==========================================================================
    ``gone``            HTTP 410: disable the feed (``health.record_failure(gone=True)``)
    ``retry_after``     seconds from Retry-After on 429/503: pass to ``health.next_poll_delay``
    ``status``          the HTTP status, or None (network, timeout, decode, cap, file errors)
    ``transient``       False only for URLs that can never work (bad scheme, no host) and for 410;
                        everything else, 4xx included, is retried on the backoff ladder
    ``reason``          the message without the URL, for ``health.record_failure(error=...)``
    ==================  ==========================================================================
    """

    def __init__(self, client: httpx.AsyncClient, settings: FetchSettings) -> None:
        self._client = client
        self._settings = settings
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def fetch(
        self,
        url: str,
        validators: Validators = Validators(),
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> FetchResult:
        """GET ``url`` (http, https, file or a plain path); raises :class:`FetchError` only."""
        started = time.monotonic()
        kind, target = _classify(url)
        if kind == "file":
            status, body, new_validators = await self._fetch_file(url, target, validators)
            return FetchResult(
                url=url,
                final_url=url,
                permanent_url=None,
                status=status,
                body=body,
                content_type=mimetypes.guess_type(target)[0],
                validators=new_validators,
                expires_in=None,
                elapsed=time.monotonic() - started,
            )
        # The deadline starts once we hold a slot: queueing behind our own fetches is not the server's fault.
        async with self._slot(target):
            try:
                async with asyncio.timeout(self._settings.total_timeout):
                    result = await self._fetch_http(url, validators, headers, auth, started)
            except TimeoutError:
                raise FetchError(
                    f"no complete response within the {self._settings.total_timeout:g} s total time limit "
                    "(server too slow or trickling data)",
                    feed_url=redact_url(url),
                ) from None
        log.debug(
            "feed_fetched",
            url=redact_url(url),
            status=result.status,
            bytes=len(result.body) if result.body is not None else 0,
            elapsed=round(result.elapsed, 3),
        )
        return result

    def _slot(self, url: str) -> asyncio.Semaphore:
        parts = urlsplit(url)
        key = f"{(parts.hostname or '').lower()}:{parts.port or parts.scheme}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(max(1, self._settings.per_host_limit))
        return slot

    async def _fetch_http(
        self,
        url: str,
        validators: Validators,
        extra_headers: Mapping[str, str] | None,
        auth: httpx.Auth | None,
        started: float,
    ) -> FetchResult:
        current = url
        chain = [url]
        all_permanent = True
        while True:
            # Credentials and caller headers only go to the origin they were configured for.
            trusted = _same_origin(url, current)
            request_headers = self._headers(validators, extra_headers if trusted else None)
            try:
                async with self._client.stream(
                    "GET",
                    current,
                    headers=request_headers,
                    auth=auth if trusted else None,
                    follow_redirects=False,
                ) as response:
                    status = response.status_code
                    if status in REDIRECT_STATUSES:
                        location = _first(response.headers, "location")
                        await _drain(response)
                    else:
                        return await self._finish(url, current, chain, all_permanent, validators, response, started)
            except httpx.HTTPError as exc:
                raise _network_error(url, current, exc, self._settings) from exc

            if not location:
                raise FetchError(
                    f"HTTP {status} redirect without a Location header",
                    feed_url=redact_url(url),
                    status=status,
                )
            nxt = urljoin(current, location.strip())
            if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                raise FetchError(f"redirected to an unsupported URL {redact_url(nxt)!r}", feed_url=redact_url(url))
            if nxt in chain:
                loop = " -> ".join(redact_url(u) for u in [*chain[chain.index(nxt) :], nxt])
                raise FetchError(f"redirect loop: {loop}", feed_url=redact_url(url), status=status)
            if len(chain) > self._settings.max_redirects:
                raise FetchError(
                    f"too many redirects (more than {self._settings.max_redirects})",
                    feed_url=redact_url(url),
                    status=status,
                )
            all_permanent = all_permanent and status in PERMANENT_REDIRECTS
            log.debug("feed_redirect", url=redact_url(url), status=status, location=redact_url(nxt))
            chain.append(nxt)
            current = nxt

    def _headers(self, validators: Validators, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "User-Agent": self._settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        if extra:
            headers.update(extra)
        return headers

    async def _finish(
        self,
        url: str,
        final_url: str,
        chain: list[str],
        all_permanent: bool,
        old: Validators,
        response: httpx.Response,
        started: float,
    ) -> FetchResult:
        status = response.status_code
        headers = response.headers
        now = _server_now(headers)
        body: bytes | None = None
        if status == 304:
            # A 304 may refresh validators; anything it omits stays as it was.
            new = Validators(headers.get("etag") or old.etag, headers.get("last-modified") or old.last_modified)
            await _drain(response)
        elif 200 <= status < 300:
            body = await self._read_body(url, response)
            new = Validators(headers.get("etag"), headers.get("last-modified"))
        else:
            await _drain(response)
            raise _status_error(url, status, headers, now)
        return FetchResult(
            url=url,
            final_url=final_url,
            permanent_url=final_url if len(chain) > 1 and all_permanent else None,
            status=status,
            body=body,
            content_type=headers.get("content-type"),
            validators=new,
            expires_in=parse_expires_in(headers, now=now),
            elapsed=time.monotonic() - started,
        )

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        cap = self._settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_big(url, cap, f"server announced {int(declared)} bytes")
        try:
            decoder = body_decoder(response.headers.get("content-encoding", ""))
        except DecodeError as exc:
            raise FetchError(str(exc), feed_url=redact_url(url)) from None
        body = bytearray()
        raw_total = 0
        try:
            async for raw in response.aiter_raw():
                raw_total += len(raw)
                if raw_total > cap:
                    raise _too_big(url, cap, "before decompression")
                for piece in decoder.feed(raw):
                    if len(body) + len(piece) > cap:
                        raise _too_big(url, cap, "after decompression")
                    body += piece
            for piece in decoder.flush():
                if len(body) + len(piece) > cap:
                    raise _too_big(url, cap, "after decompression")
                body += piece
        except DecodeError as exc:
            encoding = response.headers.get("content-encoding", "")
            raise FetchError(f"could not decode {encoding} body: {exc}", feed_url=redact_url(url)) from exc
        return bytes(body)

    async def _fetch_file(self, url: str, path: str, validators: Validators) -> tuple[int, bytes | None, Validators]:
        try:
            return await asyncio.to_thread(_read_local, path, validators, self._settings.max_bytes)
        except TooBig:
            raise _too_big(url, self._settings.max_bytes, "file size") from None
        except FileNotFoundError:
            hint = "" if "/" in path else " (for a web feed write the URL with https://)"
            raise FetchError(f"file not found: {path}{hint}", feed_url=url) from None
        except PermissionError:
            raise FetchError(f"permission denied reading {path}", feed_url=url) from None
        except OSError as exc:
            raise FetchError(f"could not read {path}: {exc.strerror or exc}", feed_url=url) from exc


# --- URLs -----------------------------------------------------------------------------------------


def _classify(url: str) -> tuple[str, str]:
    """("http", url) or ("file", path); anything else is a configuration error."""
    text = url.strip()
    if not text:
        raise FetchError("empty feed URL", feed_url=url, transient=False)
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise FetchError(f"invalid URL: {exc}", feed_url=redact_url(url), transient=False) from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise FetchError("invalid URL: no host name", feed_url=redact_url(url), transient=False)
        return "http", text
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError("file URL names a remote host", feed_url=url, transient=False)
        return "file", unquote(parts.path)
    if not scheme and not parts.netloc:
        return "file", text  # a plain filesystem path
    if not scheme:
        raise FetchError("URL has no scheme: write it with https://", feed_url=redact_url(url), transient=False)
    raise FetchError(
        f"unsupported URL scheme {scheme + ':'!r}: only http, https and file URLs are fetched",
        feed_url=redact_url(url),
        transient=False,
    )


def _same_origin(first: str, other: str) -> bool:
    """Same host, and no downgrade from https: where configured credentials may still be sent."""
    a, b = urlsplit(first), urlsplit(other)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    if a.scheme == "https" and b.scheme != "https":
        return False
    return a.port == b.port or (a.scheme, b.scheme) == ("http", "https")


# --- Responses ------------------------------------------------------------------------------------


def _server_now(headers: httpx.Headers) -> datetime:
    """The server's clock (Date header) so relative dates survive clock skew; else ours."""
    return _parse_http_date(_first(headers, "date")) or datetime.now(UTC)


def _first(headers: httpx.Headers, name: str) -> str | None:
    """A single-valued header; httpx joins repeats with commas, which would spoil a date."""
    values = headers.get_list(name)
    return values[0] if values else None


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    when = _parse_http_date(text)
    return None if when is None else max(0.0, (when - now).total_seconds())


def parse_expires_in(headers: httpx.Headers, *, now: datetime) -> float | None:
    """Freshness lifetime from Cache-Control max-age (minus Age) or Expires; None when absent or zero."""
    cache_control = headers.get("cache-control")
    if cache_control:
        directives = {}
        for part in cache_control.split(","):
            name, _, arg = part.strip().partition("=")
            directives[name.strip().lower()] = arg.strip().strip('"')
        if "no-store" in directives or "no-cache" in directives:
            return None
        max_age = directives.get("max-age", "")
        if max_age.isdigit():
            age = headers.get("age", "").strip()
            left = int(max_age) - (int(age) if age.isdigit() else 0)
            return float(left) if left > 0 else None
    expires = _parse_http_date(_first(headers, "expires"))
    if expires is None:
        return None
    left_s = (expires - now).total_seconds()
    return left_s if left_s > 0 else None


async def _drain(response: httpx.Response) -> None:
    """Read to the end of a small response we do not use.

    httpcore closes a connection whose response was not read to its end, and an unread 304 counts:
    every conditional GET answered "not modified" then paid a new TCP (and TLS) handshake. A large
    or broken remainder is left unread; that connection simply closes.
    """
    seen = 0
    try:
        async for chunk in response.aiter_raw():
            seen += len(chunk)
            if seen > DRAIN_MAX:
                return
    except httpx.HTTPError:
        return


def _status_error(url: str, status: int, headers: httpx.Headers, now: datetime) -> FetchError:
    try:
        text = f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"  # the server's own reason phrase is not ours to repeat
    if status == 410:
        return FetchError(
            f"{text}: the publisher removed this feed",
            feed_url=redact_url(url),
            status=status,
            transient=False,
            gone=True,
        )
    retry_after = parse_retry_after(_first(headers, "retry-after"), now=now) if status in (429, 503) else None
    if retry_after is not None:
        text += f" (retry after {retry_after:g} s)"
    return FetchError(text, feed_url=redact_url(url), status=status, retry_after=retry_after)


def _too_big(url: str, cap: int, detail: str) -> FetchError:
    return FetchError(f"body exceeds {_size(cap)} cap ({detail})", feed_url=redact_url(url))


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _network_error(url: str, current: str, exc: httpx.HTTPError, settings: FetchSettings) -> FetchError:
    """Name what happened in words an operator can act on; the feed URL is prefixed by FetchError."""
    parts = urlsplit(current)
    host = parts.hostname or "?"
    where = f"{host}:{parts.port}" if parts.port else host
    causes = _causes(exc)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        msg = f"connect timeout: no connection to {where} within {settings.connect_timeout:g} s"
    elif isinstance(exc, httpx.ReadTimeout):
        msg = f"read timeout: {where} sent nothing for {settings.read_timeout:g} s"
    elif isinstance(exc, httpx.TimeoutException):
        msg = f"timeout talking to {where}: {detail}"
    elif isinstance(exc, httpx.ProxyError):
        msg = f"proxy error reaching {where}: {detail}"
    elif isinstance(exc, httpx.ConnectError) and _is_dns_failure(detail, causes):
        msg = f"name resolution failed for host {host}"
    elif isinstance(exc, httpx.ConnectError) and (
        any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in detail.lower()
    ):
        msg = f"connection refused by {where}"
    elif any(isinstance(c, ssl.SSLCertVerificationError) for c in causes) or "CERTIFICATE_VERIFY" in detail:
        msg = f"TLS certificate verification failed for {host}: {detail}"
    elif any(isinstance(c, ssl.SSLError) for c in causes):
        msg = f"TLS handshake with {host} failed: {detail}"
    elif isinstance(exc, httpx.ConnectError):
        msg = f"could not connect to {where}: {detail}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        msg = f"{where} broke the HTTP protocol (connection closed early?): {detail}"
    elif isinstance(exc, httpx.ReadError):
        msg = f"connection to {where} failed while reading: {detail}"
    elif isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FetchError(f"invalid URL: {detail}", feed_url=redact_url(url), transient=False)
    else:
        msg = f"HTTP transport error with {where}: {detail}"
    return FetchError(msg, feed_url=redact_url(url))


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


_DNS_MARKERS = (
    "name or service not known",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "nodename nor servname",
    "getaddrinfo failed",
    "[errno -2]",
    "[errno -3]",
    "[errno -5]",
)


def _is_dns_failure(detail: str, causes: list[BaseException]) -> bool:
    lowered = detail.lower()
    return any(isinstance(c, socket.gaierror) for c in causes) or any(m in lowered for m in _DNS_MARKERS)


# --- Local files -----------------------------------------------------------------------------------


def _read_local(path: str, validators: Validators, max_bytes: int) -> tuple[int, bytes | None, Validators]:
    """Runs in a worker thread. The mtime plays Last-Modified so an unchanged file answers 304."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file")
        # The ETag (nanosecond mtime, size, inode) also catches two writes within the same second.
        current = Validators(
            etag=f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"',
            last_modified=email.utils.formatdate(st.st_mtime, usegmt=True),
        )
        if validators.etag is not None:
            unchanged = validators.etag == current.etag
        else:
            since = _parse_http_date(validators.last_modified)
            unchanged = since is not None and int(st.st_mtime) <= since.timestamp()
        if unchanged:
            return 304, None, current
        if st.st_size > max_bytes:
            raise TooBig
        data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooBig
        return 200, data, current
