"""One HTTP POST for the Slack and webhook channels: failures classified, secrets kept out of errors.

Third-party exceptions are translated, not chained: an httpx error holds the request (whose URL may
be the secret) and a traceback renderer showing locals would print it. For the same reason
:func:`post` *returns* its error for the caller to raise, so no frame holding headers or a revealed
URL is ever part of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import httpx

from daemon.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from daemon.notify.base import log_delivered
from daemon.util.httpdates import parse_retry_after
from daemon.util.redact import redact_text, redact_url, sensitive_parts
from daemon.util.secret import Secret

DRAIN_MAX = 1.0  # seconds spent reading a response body at most (a 2xx has already been accepted)
READ_MARGIN = 0.05  # the body read ends this long before the deadline, so the deadline never fires after a 2xx
EXCERPT_MAX = 300  # characters of a receiver's error body kept in the error message
READ_MAX = 4096  # bytes of a response body read at most; a receiver cannot make us buffer more
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_TRANSIENT_STATUS = frozenset({408, 425, 429})


def reveal(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _scrub(text: str, secrets: Iterable[Secret | str]) -> str:
    return _CONTROL.sub(" ", redact_text(text, secrets)).strip()


async def _excerpt(response: httpx.Response, until: float) -> str:
    """At most READ_MAX bytes of the body, read until the loop time ``until``; what came by then counts."""
    data = bytearray()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(until):
            async for chunk in response.aiter_raw():
                data += chunk
                if len(data) >= READ_MAX:
                    break
    text = data[:READ_MAX].decode(response.encoding or "utf-8", "replace")
    return text[:EXCERPT_MAX]


async def post(
    client: httpx.AsyncClient,
    url: Secret | str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    request_timeout: float,
    channel: str,
    alert_id: str,
    secrets: Iterable[Secret | str] = (),
) -> int | DeliveryError:
    """POST ``body``; return the 2xx status, or the transient/permanent error for the caller to raise."""
    shown = redact_url(url)
    # A secret URL is hidden in every piece; a plain one only in its userinfo and secret parameters.
    hidden = [url, *secrets] if isinstance(url, Secret) else [*sensitive_parts(url), *secrets]
    error: DeliveryError
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request_timeout
    try:
        # httpx's timeout is per read: a receiver sending a byte at a time never trips it. The deadline
        # bounds the whole exchange: connecting, sending, the status line and headers, the excerpt.
        async with (
            asyncio.timeout_at(deadline),
            client.stream("POST", reveal(url), content=body, headers=headers, timeout=request_timeout) as resp,
        ):
            # The body is read only for a moment, and never up to the deadline: a receiver that keeps
            # sending cannot turn an answer already given into a timeout.
            read_until = min(loop.time() + DRAIN_MAX, deadline - READ_MARGIN)
            if 200 <= resp.status_code < 300:
                await _excerpt(resp, read_until)  # drain what little there is so the connection can be reused
                return resp.status_code
            detail = _scrub(await _excerpt(resp, read_until), hidden)
            error = _status_error(resp, detail, shown, channel, alert_id)
    except (TimeoutError, httpx.TimeoutException):
        error = TransientDeliveryError(
            f"timed out: no complete answer within {request_timeout:g}s from {shown}",
            channel=channel,
            alert_id=alert_id,
        )
    except httpx.UnsupportedProtocol:
        error = PermanentDeliveryError(f"unsupported URL scheme for {shown}", channel=channel, alert_id=alert_id)
    except httpx.TransportError as exc:
        reason = _scrub(str(exc), hidden) or "connection failed"
        error = TransientDeliveryError(
            f"{type(exc).__name__} posting to {shown}: {reason}", channel=channel, alert_id=alert_id
        )
    except httpx.InvalidURL:
        error = PermanentDeliveryError(f"invalid URL {shown}", channel=channel, alert_id=alert_id)
    return error


def _status_error(resp: httpx.Response, detail: str, shown: str, channel: str, alert_id: str) -> DeliveryError:
    status = resp.status_code
    message = f"HTTP {status} from {shown}" + (f": {detail}" if detail else "")
    if status in _TRANSIENT_STATUS or status >= 500:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), now=datetime.now(UTC))
        return TransientDeliveryError(message, channel=channel, alert_id=alert_id, retry_after=retry_after)
    if 300 <= status < 400:
        message += " (redirects are not followed: configure the final URL)"
    return PermanentDeliveryError(message, channel=channel, alert_id=alert_id)


def settle(outcome: int | DeliveryError, *, channel: str, alert_id: str, target: str, started: float) -> None:
    """Raise the delivery error a post returned, or log the delivery (with the redacted target)."""
    if isinstance(outcome, DeliveryError):
        raise outcome  # built outside any except block: no third-party traceback attached
    log_delivered(channel, alert_id, target=target, started=started, status=outcome)
