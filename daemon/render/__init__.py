"""Pure rendering of an :class:`~daemon.models.Alert` into plain text, HTML, a mail subject,
a Slack Block Kit payload and the generic webhook body.

Everything that came from a feed is treated as hostile: control characters are stripped, HTML and
Slack mrkdwn are escaped, and links are emitted only for absolute http(s) URLs.
"""

from __future__ import annotations

from typing import Any

from daemon.models import Alert, alert_to_dict
from daemon.render.common import clean
from daemon.render.mail import email_subject, render_html, render_text
from daemon.render.slack import slack_escape, slack_payload
from daemon.util.urls import safe_link

WEBHOOK_SCHEMA = "feedwatch.alert/v1"


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """``{"schema": "feedwatch.alert/v1", "alert": {...}}``; links not http(s) become null."""
    return {"schema": WEBHOOK_SCHEMA, "alert": _safe_links(alert_to_dict(alert))}


def _safe_links(data: dict[str, Any]) -> dict[str, Any]:
    data["link"] = safe_link(data.get("link"))
    data["entries"] = [_safe_links(e) for e in data.get("entries", [])]
    return data


__all__ = [
    "WEBHOOK_SCHEMA",
    "clean",
    "email_subject",
    "render_html",
    "render_text",
    "safe_link",
    "slack_escape",
    "slack_payload",
    "webhook_payload",
]
