"""Slack through a bot token: ``chat.postMessage``, updates as replies in the story's thread.

The first message of a story is posted to ``channel``; its ``ts`` is kept (in the database, through a
:class:`ThreadStore`), and every later alert of the story — an update — is posted as a reply in that
thread. An alert whose ``ts`` is already kept was posted before (a re-send after a crash): it is not
posted twice. Slack's rate limits are honoured: an HTTP 429 (or ``ratelimited``) holds every post of
this channel for its ``Retry-After``, and posts are paced ``min_interval`` apart. The token travels only
in the ``Authorization`` header and never appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import structlog

from daemon.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from daemon.models import Alert
from daemon.notify.slack_settings import SlackSettings, payload_for
from daemon.util.httpdates import parse_retry_after
from daemon.util.redact import redact_text

log = structlog.get_logger(__name__)

RESPONSE_MAX = 256 * 1024  # bytes of a Web API answer read at most (it echoes the whole message)
# Web API errors worth retrying; every other one (invalid_auth, channel_not_found, not_in_channel,
# is_archived, msg_too_long, invalid_blocks, token_revoked…) needs the operator and is permanent.
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
RATELIMIT_DEFAULT = 30.0  # seconds to hold back after "ratelimited" without a Retry-After


class ThreadStore(Protocol):
    """Where the ``ts`` of posted messages is kept, by (feedwatch channel, alert or thread id)."""

    async def get(self, channel: str, key: str) -> tuple[str, str] | None: ...

    async def put(self, channel: str, key: str, slack_channel: str, ts: str) -> None: ...


class MemoryThreads:
    """A ThreadStore for one process (``send-test``); the daemon keeps them in its database."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, str]] = {}

    async def get(self, channel: str, key: str) -> tuple[str, str] | None:
        return self._rows.get((channel, key))

    async def put(self, channel: str, key: str, slack_channel: str, ts: str) -> None:
        self._rows.setdefault((channel, key), (slack_channel, ts))


class SlackBotChannel:
    """Posts through ``chat.postMessage`` with a shared ``httpx.AsyncClient`` (not closed here)."""

    def __init__(self, name: str, settings: SlackSettings, client: httpx.AsyncClient) -> None:
        assert settings.bot_token is not None
        assert settings.channel is not None
        self.name = name
        self._settings = settings
        self._token = settings.bot_token
        self._client = client
        self._url = settings.api_url.rstrip("/") + "/chat.postMessage"
        self.target = f"{settings.api_url.rstrip('/')} {settings.channel}"
        self.threads: ThreadStore = MemoryThreads()
        self._pace = asyncio.Lock()
        self._last_post = 0.0
        self._blocked_until = 0.0  # monotonic time before which Slack asked us not to post

    def __repr__(self) -> str:
        return f"SlackBotChannel(name={self.name!r}, target={self.target!r})"

    def use_threads(self, threads: ThreadStore) -> None:
        """Keep message ts in ``threads`` (the daemon's database) instead of this process's memory."""
        self.threads = threads

    async def send(self, alert: Alert) -> None:
        """Post the alert (in its story's thread when there is one); classified like the other channels."""
        if await self.threads.get(self.name, alert.alert_id) is not None:
            log.info("slack_already_posted", channel=self.name, alert_id=alert.alert_id)
            return
        payload: dict[str, Any] = payload_for(alert, self._settings)
        payload["channel"] = self._settings.channel
        thread = await self.threads.get(self.name, alert.thread_id) if alert.thread_id else None
        if thread is not None:
            payload["channel"], payload["thread_ts"] = thread
        started = time.monotonic()
        answer = await self._post(payload, alert.alert_id)
        slack_channel, ts = str(answer.get("channel") or payload["channel"]), str(answer.get("ts") or "")
        if ts:
            await self.threads.put(self.name, alert.alert_id, slack_channel, ts)
            if thread is None and alert.thread_id and alert.thread_id != alert.alert_id:
                # The story's first message was never posted here (silenced, or before this channel):
                # this one starts the thread its later updates reply in.
                await self.threads.put(self.name, alert.thread_id, slack_channel, ts)
        log.debug(
            "channel_delivered",
            channel=self.name,
            alert_id=alert.alert_id,
            target=self.target,
            thread=thread is not None,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )

    async def _post(self, payload: dict[str, Any], alert_id: str) -> dict[str, Any]:
        async with self._pace:
            wait = self._blocked_until - time.monotonic()
            if wait > 0:
                raise TransientDeliveryError(
                    f"Slack rate limit: holding posts for {wait:.0f}s more", channel=self.name, alert_id=alert_id,
                    retry_after=wait,
                )  # fmt: skip
            gap = self._settings.min_interval - (time.monotonic() - self._last_post)
            if gap > 0:
                await asyncio.sleep(gap)
            try:
                return await self._call(payload, alert_id)
            finally:
                self._last_post = time.monotonic()

    async def _call(self, payload: dict[str, Any], alert_id: str) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {self._token.reveal()}"}
        error: DeliveryError
        try:
            async with self._client.stream(
                "POST", self._url, content=body, headers=headers, timeout=self._settings.timeout
            ) as resp:
                data = await _read(resp)
                error_or_doc = self._answer(resp, data, alert_id)
        except httpx.TimeoutException:
            error = TransientDeliveryError(
                f"timed out after {self._settings.timeout:g}s posting to {self.target}", channel=self.name,
                alert_id=alert_id,
            )  # fmt: skip
        except httpx.TransportError as exc:
            reason = redact_text(str(exc), [self._token]) or type(exc).__name__
            error = TransientDeliveryError(
                f"{type(exc).__name__} posting to {self.target}: {reason}", channel=self.name, alert_id=alert_id
            )
        else:
            if isinstance(error_or_doc, DeliveryError):
                error = error_or_doc
            else:
                return error_or_doc
        raise error  # built outside the except blocks: no httpx traceback (with its request) attached

    def _answer(self, resp: httpx.Response, data: bytes, alert_id: str) -> dict[str, Any] | DeliveryError:
        status = resp.status_code
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {}
        detail = str(doc.get("error") or data[:200].decode("utf-8", "replace")) if isinstance(doc, dict) else ""
        detail = redact_text(detail, [self._token])
        if status == 429 or (status == 200 and isinstance(doc, dict) and doc.get("error") == "ratelimited"):
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), now=datetime.now(UTC)) or RATELIMIT_DEFAULT
            self._blocked_until = time.monotonic() + retry_after
            log.warning("slack_rate_limited", channel=self.name, retry_after=retry_after)
            return TransientDeliveryError(
                f"rate limited by Slack ({self.target}); retry after {retry_after:g}s", channel=self.name,
                alert_id=alert_id, retry_after=retry_after,
            )  # fmt: skip
        if status >= 500 or status in (408, 425):
            retry = parse_retry_after(resp.headers.get("Retry-After"), now=datetime.now(UTC))
            return TransientDeliveryError(
                f"HTTP {status} from {self.target}: {detail}", channel=self.name, alert_id=alert_id, retry_after=retry
            )
        if not 200 <= status < 300:
            return PermanentDeliveryError(
                f"HTTP {status} from {self.target}: {detail}", channel=self.name, alert_id=alert_id
            )
        if not isinstance(doc, dict) or doc.get("ok") is not True:
            kind = TransientDeliveryError if detail in TRANSIENT_ERRORS else PermanentDeliveryError
            return kind(f"Slack refused the message ({self.target}): {detail or 'no reason given'}", channel=self.name,
                        alert_id=alert_id)  # fmt: skip
        return doc

    async def aclose(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the service."""


async def _read(resp: httpx.Response) -> bytes:
    data = bytearray()
    async for chunk in resp.aiter_raw():
        data += chunk
        if len(data) >= RESPONSE_MAX:
            break
    return bytes(data[:RESPONSE_MAX])
