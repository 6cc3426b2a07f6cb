"""Operator alerts raised while polling: a feed's health changed, or a rule's regex overran its budget.

They are built here and queued like every operator alert: to ``[alerts] ops_channels`` (else the default
channels), unless a silence for the feed's operator alerts holds.
"""

from __future__ import annotations

from datetime import datetime

from daemon.alerting import policy as alerts
from daemon.alerting import silences as muting
from daemon.alerting.silences import Silence
from daemon.config.model import FeedConfig
from daemon.intake import policy as health
from daemon.models import Alert, AlertKind, Severity
from daemon.store.rows import OUTBOX_SILENCED
from daemon.store.sqlite import Store
from daemon.util.redact import link_url, redact_text
from daemon.util.urls import safe_link

OPS_SEVERITY = {
    "failing": Severity.WARNING,
    "gone": Severity.CRITICAL,
    "stale": Severity.WARNING,
    "recovered": Severity.INFO,
}


def ops_alert(feed: FeedConfig, url: str, event: health.OpsEvent, now: datetime) -> Alert:
    return Alert(
        alert_id=alerts.alert_id("ops", feed.name, event.kind, now.isoformat()),
        kind=AlertKind.OPS,
        rule_id="",
        severity=OPS_SEVERITY[event.kind],
        score=0.0,
        title=redact_text(f"Feed {feed.name} {event.message}"),
        link=safe_link(link_url(url)),  # sent to every ops channel: never with the feed's credentials
        feed=feed.name,
        created_at=now,
        description=f"feed {event.kind}",
    )


def regex_overrun_alert(rule_id: str, feed: FeedConfig, title: str, budget: float, now: datetime) -> Alert:
    return Alert(
        alert_id=alerts.alert_id("ops", "regex-overrun", rule_id, now.isoformat()),
        kind=AlertKind.OPS,
        rule_id="",
        severity=Severity.WARNING,
        score=0.0,
        title=f"Rule {rule_id} skipped an item: its regex ran past the {budget * 1000:g} ms time budget",
        link=None,
        feed=feed.name,
        created_at=now,
        snippet=f"First item (feed {feed.name}): {title[:200]}",
        description=(
            f"rule {rule_id} regex overrun: the rule was skipped for such items, which were recorded as seen; "
            "`feedwatch check` names patterns that backtrack"
        ),
    )


def enqueue_ops(store: Store, alert: Alert, channels: list[str], now: datetime) -> Silence | None:
    """Queue an operator alert, or record it as silenced when a silence for the feed's ops alerts holds."""
    with store.transaction():
        silence = muting.find(
            store.silences(now=now), rule_id="", ops=True, feed=alert.feed, title=alert.title, now=now
        )
        states = {c: OUTBOX_SILENCED for c in channels} if silence else None
        store.add_alert(alert, channels, story_id=None, item_id=None, now=now, states=states)
        if silence is not None:
            store.mark_silenced(alert.alert_id, silence.id)
    return silence
