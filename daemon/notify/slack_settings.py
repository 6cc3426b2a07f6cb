"""Settings of the Slack channel (incoming webhook or bot token) and the message both forms post."""

from __future__ import annotations

import msgspec

from daemon.models import Alert
from daemon.render import slack_payload
from daemon.util.fields import Duration
from daemon.util.redact import redact_url
from daemon.util.secret import Secret
from daemon.util.urls import http_url_problem

DEFAULT_SLACK_TIMEOUT = 10.0
DEFAULT_API_URL = "https://slack.com/api"


class SlackSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incoming webhook (``webhook_url``) or a bot token with a ``channel`` (the Web API, threads).

    ``icon`` is an emoji code (``:satellite:``) or an http(s) image URL. ``api_url`` is where the Web API
    is, for tests and proxies; ``min_interval`` paces posts (Slack allows about one a second per channel).
    """

    webhook_url: Secret | None = None
    bot_token: Secret | None = None
    channel: str | None = None
    api_url: str = DEFAULT_API_URL
    min_interval: Duration = 1.0
    timeout: Duration = DEFAULT_SLACK_TIMEOUT
    username: str | None = None
    icon: str | None = None

    def __post_init__(self) -> None:
        if (self.webhook_url is None) == (self.bot_token is None):
            raise ValueError(
                "give webhook_url (an incoming webhook) or bot_token with channel (the Web API), exactly one"
            )
        if self.webhook_url is not None:
            if not isinstance(self.webhook_url, Secret) or not self.webhook_url:
                raise ValueError("webhook_url must be a non-empty Secret")
            if (problem := http_url_problem(self.webhook_url.reveal())) is not None:
                raise ValueError(f"webhook_url {redact_url(self.webhook_url)!r}: {problem}")
            if self.channel is not None:
                raise ValueError("channel goes with bot_token; an incoming webhook posts where it was created")
        elif not isinstance(self.bot_token, Secret) or not self.bot_token:
            raise ValueError("bot_token must be a non-empty Secret")
        elif not self.channel:
            raise ValueError('a bot token needs channel = "#name" or a channel id such as "C0123456789"')
        if (problem := http_url_problem(self.api_url)) is not None:
            raise ValueError(f"api_url {self.api_url!r}: {problem}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if self.min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {self.min_interval!r}")


def payload_for(alert: Alert, settings: SlackSettings) -> dict[str, object]:
    """The Block Kit message with the configured name and icon (webhook and Web API alike)."""
    payload: dict[str, object] = dict(slack_payload(alert))
    if settings.username:
        payload["username"] = settings.username
    if settings.icon:
        payload["icon_emoji" if settings.icon.startswith(":") else "icon_url"] = settings.icon
    return payload
