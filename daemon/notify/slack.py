"""Slack incoming-webhook channel: posts the Block Kit rendering of an alert.

The webhook URL is the credential; only its redacted form (``https://hooks.slack.com/***``)
ever reaches a log line or an error message.
"""

from __future__ import annotations

import json
import time

import httpx
import msgspec
import structlog

from daemon.models import Alert
from daemon.notify._http import post, settle
from daemon.notify.base import Channel, ChannelType
from daemon.render import slack_payload
from daemon.util.fields import Duration
from daemon.util.redact import redact_url
from daemon.util.secret import Secret
from daemon.util.urls import http_url_problem

log = structlog.get_logger(__name__)

DEFAULT_SLACK_TIMEOUT = 10.0


class SlackSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``icon`` is an emoji code (``:satellite:``) or an http(s) image URL."""

    webhook_url: Secret
    timeout: Duration = DEFAULT_SLACK_TIMEOUT
    username: str | None = None
    icon: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.webhook_url, Secret) or not self.webhook_url:
            raise ValueError("webhook_url must be a non-empty Secret")
        if (problem := http_url_problem(self.webhook_url.reveal())) is not None:
            raise ValueError(f"webhook_url {redact_url(self.webhook_url)!r}: {problem}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")


class SlackChannel:
    """Delivers to one Slack incoming webhook through a shared ``httpx.AsyncClient`` (not closed here)."""

    def __init__(self, name: str, settings: SlackSettings, client: httpx.AsyncClient) -> None:
        self.name = name
        self._settings = settings
        self._client = client
        self.target = redact_url(settings.webhook_url)

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r}, target={self.target!r})"

    def payload(self, alert: Alert) -> dict[str, object]:
        payload: dict[str, object] = dict(slack_payload(alert))
        if self._settings.username:
            payload["username"] = self._settings.username
        icon = self._settings.icon
        if icon:
            payload["icon_emoji" if icon.startswith(":") else "icon_url"] = icon
        return payload

    async def send(self, alert: Alert) -> None:
        """Post the alert; 2xx is delivered, 429/5xx/timeout transient, other 4xx permanent."""
        body = json.dumps(self.payload(alert), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        started = time.monotonic()
        outcome = await post(
            self._client,
            self._settings.webhook_url,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            request_timeout=self._settings.timeout,
            channel=self.name,
            alert_id=alert.alert_id,
        )
        settle(outcome, channel=self.name, alert_id=alert.alert_id, target=self.target, started=started)

    async def aclose(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the service."""


def _build(name: str, settings: SlackSettings, http: httpx.AsyncClient) -> Channel:
    return SlackChannel(name, settings, http)


CHANNEL = ChannelType("slack", SlackSettings, _build)
