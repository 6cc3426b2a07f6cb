"""The HTTP edge of polling: conditional GET, bounded decompression, redirects, deadlines, ``file://``.

Every failure leaves as :class:`daemon.errors.FetchError` naming the feed URL and what went wrong.
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import structlog

from daemon import __version__
from daemon.errors import ConfigError, FetchError
from daemon.intake.connection import Connector, HTTPError, PeerRefused, open_streams
from daemon.intake.decode import DecodeError, TooBig, body_decoder
from daemon.intake.fetch_errors import network_error, status_error, too_big
from daemon.intake.headers import BasicAuth, Validators, first_header, parse_expires_in, server_now
from daemon.intake.http1 import HTTPClient, Response
from daemon.intake.local import read_local
from daemon.intake.netguard import Resolver, check_url, peer_refusal, system_resolve
from daemon.util.redact import redact_url

log = structlog.get_logger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
NO_VALIDATORS = Validators()  # a first fetch: nothing to make conditional
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
    concurrency: int = 16  # fetches at once ([polling] max_concurrency): sizes the connection pools
    per_host: int = 2


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


def make_client(settings: FetchSettings, *, connect: Connector = open_streams) -> HTTPClient:
    """The one shared feed client: env proxies honoured, ``ca_bundle`` if set, connections kept per origin."""
    tls: ssl.SSLContext | Callable[[], ssl.SSLContext]
    if settings.ca_bundle or os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        tls = tls_context(settings.ca_bundle)  # a configured CA store is checked at start
    else:
        tls = functools.partial(tls_context, None)  # certifi's, loaded when the first HTTPS feed connects
    return HTTPClient(
        tls=tls,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # Enough idle connections for every fetch the poller lets run at once to one host.
        max_idle_per_origin=max(2, settings.per_host),
        max_idle=max(64, 2 * settings.concurrency),
        connect=connect,
    )


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS settings of every HTTPS connection; an unreadable bundle is a configuration error."""
    try:
        return _tls_context(ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA bundle: {exc}", path=ca_bundle) from exc


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Loading a CA store takes ~50 ms, so clients made in one process share a context per bundle."""
    if ca_bundle:
        context = ssl.create_default_context(cafile=ca_bundle)
    elif os.environ.get("SSL_CERT_FILE"):
        context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        import certifi  # the CA store httpx used: the same trust with or without a system store

        context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


class Fetcher:
    """Fetches feeds on one shared client; safe to call concurrently (the poller limits fetches per host).

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

    def __init__(self, client: HTTPClient, settings: FetchSettings, *, resolve: Resolver = system_resolve) -> None:
        self._client = client
        self._settings = settings
        self._resolve = resolve

    async def fetch(
        self,
        url: str,
        validators: Validators = NO_VALIDATORS,
        *,
        headers: Mapping[str, str] | None = None,
        auth: BasicAuth | None = None,
        allow_private: bool = False,
    ) -> FetchResult:
        """GET ``url`` (http, https, file or a plain path); raises :class:`FetchError` only.

        Every hop's host is resolved and checked (:mod:`daemon.intake.netguard`) before it is connected to.
        """
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
        try:
            async with asyncio.timeout(self._settings.total_timeout):
                result = await self._fetch_http(url, validators, headers, auth, started, allow_private)
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

    async def _fetch_http(
        self,
        url: str,
        validators: Validators,
        extra_headers: Mapping[str, str] | None,
        auth: BasicAuth | None,
        started: float,
        allow_private: bool,
    ) -> FetchResult:
        current = url
        chain = [url]
        all_permanent = True
        while True:
            # Before any connection is made for this hop, every address its host resolves to is checked.
            # A kept connection was checked when it was made (and its address is checked again below), so
            # a poll on one costs no DNS lookup.
            async def vet(hop: str = current) -> None:
                refused = await check_url(hop, allow_private=allow_private, resolve=self._resolve)
                if refused is not None:
                    where = "" if hop == url else f"redirected to {redact_url(hop)}: "
                    # The configured URL itself can never work; a redirect may change, so it is retried.
                    raise FetchError(f"{where}refused: {refused}", feed_url=redact_url(url), transient=hop != url)

            # Credentials and caller headers only go to the origin they were configured for.
            trusted = _same_origin(url, current)
            request_headers = self._headers(
                current, validators, extra_headers if trusted else None, auth if trusted else None
            )

            # The name was checked above, but connecting resolves it again: the address really connected
            # to is checked too, before a byte is sent (a DNS answer that changed meanwhile: rebinding).
            def admit(peer: tuple[str, int] | None, proxied: bool, hop: str = current) -> str | None:
                return peer_refusal(hop, peer, allow_private=allow_private, proxied=proxied)

            try:
                response = await self._client.get(current, request_headers, admit=admit, before_connect=vet)
                try:
                    status = response.status
                    if status in REDIRECT_STATUSES:
                        location = first_header(response.headers, "location")
                        await _drain(response)
                    else:
                        return await self._finish(url, current, chain, all_permanent, validators, response, started)
                finally:
                    response.close()
            except PeerRefused as exc:
                raise FetchError(f"refused: {exc}", feed_url=redact_url(url)) from None
            except HTTPError as exc:
                raise network_error(
                    url,
                    current,
                    exc,
                    connect_timeout=self._settings.connect_timeout,
                    read_timeout=self._settings.read_timeout,
                ) from exc

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

    def _headers(
        self, url: str, validators: Validators, extra: Mapping[str, str] | None, auth: BasicAuth | None
    ) -> list[tuple[str, str]]:
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
            _merge(headers, extra)  # caller headers win over ours, whatever their case
        if auth is None and "@" in url:
            auth = _url_credentials(url)
        if auth is not None:
            _merge(headers, {"Authorization": auth.header()})  # Basic auth wins over a bearer header
        return list(headers.items())

    async def _finish(
        self,
        url: str,
        final_url: str,
        chain: list[str],
        all_permanent: bool,
        old: Validators,
        response: Response,
        started: float,
    ) -> FetchResult:
        status = response.status
        headers = response.headers
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
            raise status_error(url, status, headers, server_now(headers))
        return FetchResult(
            url=url,
            final_url=final_url,
            permanent_url=final_url if len(chain) > 1 and all_permanent else None,
            status=status,
            body=body,
            content_type=headers.get("content-type"),
            validators=new,
            expires_in=parse_expires_in(headers),
            elapsed=time.monotonic() - started,
        )

    async def _read_body(self, url: str, response: Response) -> bytes:
        cap = self._settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big(url, cap, f"server announced {int(declared)} bytes")
        try:
            decoder = body_decoder(response.headers.get("content-encoding", ""))
        except DecodeError as exc:
            raise FetchError(str(exc), feed_url=redact_url(url)) from None
        body = bytearray()
        raw_total = 0
        try:
            while raw := await response.read_chunk():
                raw_total += len(raw)
                if raw_total > cap:
                    raise too_big(url, cap, "before decompression")
                for piece in decoder.feed(raw):
                    if len(body) + len(piece) > cap:
                        raise too_big(url, cap, "after decompression")
                    body += piece
            for piece in decoder.flush():
                if len(body) + len(piece) > cap:
                    raise too_big(url, cap, "after decompression")
                body += piece
        except DecodeError as exc:
            encoding = response.headers.get("content-encoding", "")
            raise FetchError(f"could not decode {encoding} body: {exc}", feed_url=redact_url(url)) from exc
        return bytes(body)

    async def _fetch_file(self, url: str, path: str, validators: Validators) -> tuple[int, bytes | None, Validators]:
        try:
            return await asyncio.to_thread(read_local, path, validators, self._settings.max_bytes)
        except TooBig:
            raise too_big(url, self._settings.max_bytes, "file size") from None
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
    if first == other:
        return True
    a, b = urlsplit(first), urlsplit(other)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    if a.scheme == "https" and b.scheme != "https":
        return False
    return a.port == b.port or (a.scheme, b.scheme) == ("http", "https")


def _merge(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """``headers.update(extra)`` with header names compared without regard to case."""
    names = {name.lower(): name for name in headers}
    for name, value in extra.items():
        headers.pop(names.get(name.lower(), name), None)
        headers[name] = value


def _url_credentials(url: str) -> BasicAuth | None:
    """User and password written in the URL (``https://user:pass@host/``) are sent as Basic auth."""
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return None
    return BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))


async def _drain(response: Response) -> None:
    """Read to the end of a small response we do not use, so its connection can be reused.

    An unread 304 would otherwise close its connection, and every conditional GET answered "not
    modified" would pay a new TCP (and TLS) handshake. A large or broken remainder is left unread;
    that connection simply closes.
    """
    seen = 0
    try:
        while chunk := await response.read_chunk():
            seen += len(chunk)
            if seen > DRAIN_MAX:
                response.close()
                return
    except HTTPError:
        return
