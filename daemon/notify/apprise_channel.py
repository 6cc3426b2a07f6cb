"""Apprise channel: one alert to every URL of ``urls`` (Telegram, Matrix, Discord, Teams, ntfy, Pushover…).

Apprise (imported only when such a channel is built) does the talking; it reports failures in its log,
not as values, so each send runs on a worker thread of ours whose Apprise log records are collected
and read for the receiver's status (``error=503``), a timeout or a refused connection. Those decide
transient or permanent like the other HTTP channels. The URLs hold tokens: errors and logs show
Apprise's privacy form of them only, and Apprise's own log lines are kept out of the journal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import warnings
from collections import OrderedDict
from typing import Any

import httpx
import msgspec
import structlog

from daemon.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from daemon.models import Alert, Severity
from daemon.notify.base import Channel, ChannelType, log_delivered
from daemon.render import email_subject, render_text
from daemon.render.common import truncate
from daemon.util.fields import Duration
from daemon.util.redact import redact_url
from daemon.util.secret import Secret

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_LENGTH = 4000
_SPLIT = re.compile(r"[\s,]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_STATUS = re.compile(r"(?:error=|HTTP Error |status(?: code)?[=: ]+)(\d{3})\b")
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_MENTION = re.compile(r"@(?=\w)")
REMEMBERED = 1000  # alerts whose per-URL successes are kept, so a retry skips URLs that already have it


def split_urls(text: str) -> list[str]:
    return [u for u in _SPLIT.split(text) if u]


class AppriseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``urls``: one or more Apprise URLs separated by spaces, commas or newlines (a secret: they hold tokens)."""

    urls: Secret
    timeout: Duration = DEFAULT_TIMEOUT
    max_length: int = DEFAULT_MAX_LENGTH  # message characters; less when the service allows less

    def __post_init__(self) -> None:
        if not isinstance(self.urls, Secret) or not self.urls:
            raise ValueError("urls must name at least one Apprise URL")
        for n, url in enumerate(split_urls(self.urls.reveal()), 1):
            if not _SCHEME.match(url):
                raise ValueError(f"urls: entry {n} is not an Apprise URL (expected SCHEME://…)")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if self.max_length < 200:
            raise ValueError(f"max_length must be at least 200 characters, got {self.max_length}")


class _Collector(logging.Handler):
    """Hands each Apprise log record to the send running on the thread that emitted it."""

    local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            try:
                lines.append(record.getMessage())
            except Exception:  # a malformed record must not break the send
                lines.append(str(record.msg))


_COLLECTOR = _Collector(level=logging.DEBUG)


def _capture_apprise_logs() -> None:
    """Once per process: Apprise's records go to the collector only, never to the journal raw."""
    logger = logging.getLogger("apprise")
    if _COLLECTOR not in logger.handlers:
        logger.addHandler(_COLLECTOR)
        logger.setLevel(logging.DEBUG)  # its connection errors (timeouts, refusals) are debug records
        logger.propagate = False


def mention_safe(text: str) -> str:
    """A word joiner after every ``@`` so ``@everyone``/``@here``/``@user`` read the same but ping no one."""
    return _MENTION.sub("@\u2060", text)


class AppriseChannel:
    """Delivers through Apprise to each configured URL, in order; a retry skips the URLs that succeeded."""

    def __init__(self, name: str, settings: AppriseSettings) -> None:
        try:
            with warnings.catch_warnings():
                # Apprise imports modules that Python 3.11+ deprecates (imghdr): not ours to fix, not news.
                warnings.simplefilter("ignore", DeprecationWarning)
                import apprise
        except ImportError as exc:
            raise ConfigError(
                "type 'apprise' needs the Apprise library: pip install 'feedwatch[apprise]'", key=f"channels.{name}"
            ) from exc
        _capture_apprise_logs()
        self.name = name
        self._settings = settings
        self._plugins: list[Any] = []
        for n, url in enumerate(split_urls(settings.urls.reveal()), 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # its plugins load on first use
                plugin = apprise.Apprise.instantiate(url)
            if plugin is None:
                scheme = url.split("://", 1)[0]
                raise ConfigError(
                    f"urls: entry {n} ({scheme}://…) is not a URL Apprise supports", key=f"channels.{name}.urls"
                )
            plugin.socket_connect_timeout = settings.timeout
            plugin.socket_read_timeout = settings.timeout
            self._plugins.append(plugin)
        self._types = {
            Severity.INFO: apprise.NotifyType.INFO,
            Severity.WARNING: apprise.NotifyType.WARNING,
            Severity.CRITICAL: apprise.NotifyType.FAILURE,
        }
        self._text = apprise.NotifyFormat.TEXT
        self._shown = [self._show(p) for p in self._plugins]
        self.target = ", ".join(self._shown)
        self._done: OrderedDict[str, set[int]] = OrderedDict()

    @staticmethod
    def _show(plugin: Any) -> str:
        """Apprise's privacy form of the URL (tokens masked by the plugin), without its options."""
        try:
            return redact_url(str(plugin.url(privacy=True)).split("?", 1)[0])
        except Exception:  # a plugin without a privacy form: its service name only
            return str(getattr(plugin, "service_name", "apprise"))

    def __repr__(self) -> str:
        return f"AppriseChannel(name={self.name!r}, target={self.target!r})"

    def message(self, alert: Alert, plugin: Any) -> tuple[str, str]:
        """(title, body): the mail subject and plain text, mention-safe, cut to the service's limits."""
        limit = min(self._settings.max_length, int(getattr(plugin, "body_maxlen", 0) or self._settings.max_length))
        title_max = int(getattr(plugin, "title_maxlen", 250) or 0)
        title = mention_safe(email_subject(alert))
        body = mention_safe(render_text(alert))
        if title_max <= 0:  # the service has no title: it leads the body
            body, title = f"{title}\n\n{body}", ""
        else:
            title = truncate(title, title_max)
        return title, truncate(body, limit)

    def _send_sync(self, plugin: Any, title: str, body: str, notify_type: Any) -> tuple[bool, list[str]]:
        lines: list[str] = []
        _Collector.local.lines = lines
        try:
            ok = bool(plugin.notify(body=body, title=title, notify_type=notify_type, body_format=self._text))
        except Exception as exc:  # a plugin bug: reported as a failure, with its type only
            lines.append(f"plugin raised {type(exc).__name__}")
            ok = False
        finally:
            _Collector.local.lines = None
        return ok, lines

    async def send(self, alert: Alert) -> None:
        """Send to every URL not yet served for this alert; transient/permanent as the receivers answered."""
        done = self._done.setdefault(alert.alert_id, set())
        self._done.move_to_end(alert.alert_id)
        while len(self._done) > REMEMBERED:
            self._done.popitem(last=False)
        errors: list[DeliveryError] = []
        started = time.monotonic()
        for index, plugin in enumerate(self._plugins):
            if index in done:
                continue
            title, body = self.message(alert, plugin)
            error = await self._one(plugin, index, title, body, self._types[alert.severity], alert.alert_id)
            if error is None:
                done.add(index)
            else:
                errors.append(error)
        if errors:
            # Permanent only when every failing URL refused for good; else the outbox retries the rest.
            permanent = all(isinstance(e, PermanentDeliveryError) for e in errors)
            reason = "; ".join(e.reason for e in errors)
            kind = PermanentDeliveryError if permanent else TransientDeliveryError
            raise kind(reason, channel=self.name, alert_id=alert.alert_id)
        self._done.pop(alert.alert_id, None)
        log_delivered(self.name, alert.alert_id, target=self.target, started=started)

    async def aclose(self) -> None:
        """Nothing to release: Apprise opens a connection per send."""

    async def _one(
        self, plugin: Any, index: int, title: str, body: str, notify_type: Any, alert_id: str
    ) -> DeliveryError | None:
        shown = self._shown[index]
        deadline = 2 * self._settings.timeout + 5.0  # connect + read, plus Apprise's own work
        try:
            ok, lines = await asyncio.wait_for(
                asyncio.to_thread(self._send_sync, plugin, title, body, notify_type), deadline
            )
        except TimeoutError:
            return TransientDeliveryError(f"timed out after {deadline:g}s sending to {shown}", channel=self.name)
        if ok:
            return None
        return classify(lines, shown, self._settings.timeout, self.name, alert_id)


def classify(lines: list[str], shown: str, timeout: float, channel: str, alert_id: str) -> DeliveryError:
    """Transient or permanent, from what Apprise logged about one failed send."""
    text = " ".join(lines)
    match = _STATUS.search(text)
    if match:
        status = int(match.group(1))
        message = f"HTTP {status} from {shown}"
        if status in _TRANSIENT_STATUS or status >= 500:
            return TransientDeliveryError(message, channel=channel, alert_id=alert_id)
        return PermanentDeliveryError(message, channel=channel, alert_id=alert_id)
    lowered = text.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return TransientDeliveryError(
            f"timed out after {timeout:g}s sending to {shown}", channel=channel, alert_id=alert_id
        )
    if "refused" in lowered or "connection" in lowered:
        return TransientDeliveryError(f"connection failed to {shown}", channel=channel, alert_id=alert_id)
    # Apprise said no without a reason we recognise: retry, and let max_attempts dead-letter it.
    return TransientDeliveryError(f"{shown} did not accept the message", channel=channel, alert_id=alert_id)


def _build(name: str, settings: AppriseSettings, http: httpx.AsyncClient) -> Channel:
    return AppriseChannel(name, settings)


CHANNEL = ChannelType("apprise", AppriseSettings, _build)
