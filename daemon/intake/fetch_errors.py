"""Fetch failures in words an operator can act on: HTTP statuses, caps, network and TLS errors."""

from __future__ import annotations

import http
import socket
import ssl
from datetime import datetime
from urllib.parse import urlsplit

from daemon.errors import FetchError
from daemon.intake import connection as http1
from daemon.intake.headers import Headers, first_header
from daemon.util.durations import format_size
from daemon.util.httpdates import parse_retry_after
from daemon.util.redact import redact_url


def status_error(url: str, status: int, headers: Headers, now: datetime) -> FetchError:
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
    retry_after = parse_retry_after(first_header(headers, "retry-after"), now=now) if status in (429, 503) else None
    if retry_after is not None:
        text += f" (retry after {retry_after:g} s)"
    return FetchError(text, feed_url=redact_url(url), status=status, retry_after=retry_after)


def too_big(url: str, cap: int, detail: str) -> FetchError:
    return FetchError(f"body exceeds {format_size(cap)} cap ({detail})", feed_url=redact_url(url))


def network_error(
    url: str, current: str, exc: http1.HTTPError, *, connect_timeout: float, read_timeout: float
) -> FetchError:
    """Name what happened in words an operator can act on; the feed URL is prefixed by FetchError."""
    parts = urlsplit(current)
    host = parts.hostname or "?"
    where = f"{host}:{parts.port}" if parts.port else host
    causes = _causes(exc)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, http1.ConnectTimeout):
        msg = f"connect timeout: no connection to {where} within {connect_timeout:g} s"
    elif isinstance(exc, http1.ReadTimeout):
        msg = f"read timeout: {where} sent nothing for {read_timeout:g} s"
    elif isinstance(exc, http1.WriteTimeout):
        msg = f"timeout talking to {where}: {detail}"
    elif isinstance(exc, http1.ProxyError):
        msg = f"proxy error reaching {where}: {detail}"
    elif isinstance(exc, http1.ConnectError) and _is_dns_failure(detail, causes):
        msg = f"name resolution failed for host {host}"
    elif isinstance(exc, http1.ConnectError) and (
        any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in detail.lower()
    ):
        msg = f"connection refused by {where}"
    elif any(isinstance(c, ssl.SSLCertVerificationError) for c in causes) or "CERTIFICATE_VERIFY" in detail:
        msg = f"TLS certificate verification failed for {host}: {detail}"
    elif any(isinstance(c, ssl.SSLError) for c in causes):
        msg = f"TLS handshake with {host} failed: {detail}"
    elif isinstance(exc, http1.ConnectError):
        msg = f"could not connect to {where}: {detail}"
    elif isinstance(exc, http1.RemoteClosed):
        msg = f"{where} broke the HTTP protocol (connection closed early?): {detail}"
    elif isinstance(exc, http1.ProtocolError):
        msg = f"{where} broke the HTTP protocol: {detail}"
    elif isinstance(exc, http1.ReadError):
        msg = f"connection to {where} failed while reading: {detail}"
    elif isinstance(exc, http1.InvalidURL):
        return FetchError(f"invalid URL: {detail}", feed_url=redact_url(url), transient=False)
    elif isinstance(exc, http1.InvalidRequest):
        return FetchError(f"cannot send the request: {detail}", feed_url=redact_url(url), transient=False)
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
