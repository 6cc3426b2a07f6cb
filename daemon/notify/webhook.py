"""Generic JSON webhook channel: ``feedwatch.alert/v1`` bodies, idempotency key, HMAC signature.

The signature is ``sha256=HEX(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``; the timestamp
is inside the MAC so a captured request cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated

import httpx
import msgspec
import structlog

from daemon import __version__
from daemon.models import Alert
from daemon.notify._http import post, reveal, settle
from daemon.notify.base import Channel, ChannelType
from daemon.render import webhook_payload
from daemon.util.fields import Duration, Parse, string_table
from daemon.util.redact import redact_url
from daemon.util.secret import Secret
from daemon.util.urls import http_url_problem

log = structlog.get_logger(__name__)

DEFAULT_WEBHOOK_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Feedwatch-Signature"
TIMESTAMP_HEADER = "X-Feedwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Headers feedwatch owns; configured headers may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Content-Type",
        "Content-Length",
        "Host",
        "Transfer-Encoding",
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
    )
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 header field name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _headers(value: object) -> Mapping[str, str | Secret]:
    return string_table(value)


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``url`` may itself be a :class:`Secret` (tokens in the path); ``secret`` keys the HMAC.

    Header values may be Secrets too (``Authorization``); plain values are never printed either.
    """

    url: Secret | str
    secret: Secret | None = None
    headers: Annotated[Mapping[str, str | Secret], Parse(_headers)] = msgspec.field(default_factory=dict)
    timeout: Duration = DEFAULT_WEBHOOK_TIMEOUT

    def __repr__(self) -> str:
        names = {name: "***" for name in self.headers}
        return (
            f"WebhookSettings(url={redact_url(self.url)!r}, secret={self.secret!r}, "
            f"headers={names!r}, timeout={self.timeout!r})"
        )

    def __post_init__(self) -> None:
        if (problem := http_url_problem(reveal(self.url))) is not None:
            raise ValueError(f"url {redact_url(self.url)!r}: {problem}")
        for name, value in self.headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP field name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by feedwatch and cannot be configured")
            if not isinstance(value, str | Secret) or _BAD_VALUE.search(reveal(value)):
                raise ValueError(f"header {name!r}: value must be text without control characters")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        msgspec.structs.force_setattr(self, "headers", MappingProxyType(dict(self.headers)))


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Feedwatch-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode_body(alert: Alert) -> bytes:
    """The exact bytes posted (and signed): compact, sorted keys, UTF-8."""
    return json.dumps(webhook_payload(alert), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


class WebhookChannel:
    """POSTs alerts to one URL through a shared ``httpx.AsyncClient`` (not closed here)."""

    def __init__(
        self,
        name: str,
        settings: WebhookSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._client = client
        self._clock = clock
        self.target = redact_url(settings.url)

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, target={self.target!r})"

    def headers(self, alert: Alert, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {"User-Agent": f"feedwatch/{__version__}"}
        headers.update((name, reveal(value)) for name, value in self._settings.headers.items())
        headers.update(
            {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: alert.alert_id,
                TIMESTAMP_HEADER: str(timestamp),
            }
        )
        if self._settings.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._settings.secret.reveal().encode("utf-8"), timestamp, body)
        return headers

    async def send(self, alert: Alert) -> None:
        """Post the alert; 2xx is delivered, 429/5xx/timeout transient, other 4xx permanent."""
        body = encode_body(alert)
        started = time.monotonic()
        outcome = await post(
            self._client,
            self._settings.url,
            body=body,
            headers=self.headers(alert, body, int(self._clock())),
            request_timeout=self._settings.timeout,
            channel=self.name,
            alert_id=alert.alert_id,
            secrets=[s for s in (self._settings.secret, *self._settings.headers.values()) if s is not None],
        )
        settle(outcome, channel=self.name, alert_id=alert.alert_id, target=self.target, started=started)

    async def aclose(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the service."""


def _build(name: str, settings: WebhookSettings, http: httpx.AsyncClient) -> Channel:
    return WebhookChannel(name, settings, http)


CHANNEL = ChannelType("webhook", WebhookSettings, _build, http=True)
