"""Slack incoming-webhook channel: posts the Block Kit rendering of an alert.

The webhook URL is the credential; only its redacted form (``https://hooks.slack.com/***``)
ever reaches a log line or an error message.
"""

from __future__ import annotations

import json
import time

import httpx
import structlog

from daemon.models import Alert
from daemon.notify._http import post, settle
from daemon.notify.base import Channel, ChannelType
from daemon.notify.slack_settings import SlackSettings, payload_for
from daemon.util.redact import redact_url

log = structlog.get_logger(__name__)


class SlackChannel:
    """Delivers to one Slack incoming webhook through a shared ``httpx.AsyncClient`` (not closed here)."""

    def __init__(self, name: str, settings: SlackSettings, client: httpx.AsyncClient) -> None:
        assert settings.webhook_url is not None
        self.name = name
        self._settings = settings
        self._webhook_url = settings.webhook_url
        self._client = client
        self.target = redact_url(settings.webhook_url)

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r}, target={self.target!r})"

    def payload(self, alert: Alert) -> dict[str, object]:
        return payload_for(alert, self._settings)

    async def send(self, alert: Alert) -> None:
        """Post the alert; 2xx is delivered, 429/5xx/timeout transient, other 4xx permanent."""
        body = json.dumps(self.payload(alert), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        started = time.monotonic()
        outcome = await post(
            self._client,
            self._webhook_url,
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
    if settings.bot_token is not None:
        from daemon.notify.slack_bot import SlackBotChannel

        return SlackBotChannel(name, settings, http)
    return SlackChannel(name, settings, http)


CHANNEL = ChannelType("slack", SlackSettings, _build, http=True)
