"""Operator alerts: a feed's health changed, or a rule's regex overran its budget.

Routed like every alert: to ``[alerts] ops_channels`` (else the default channels), minus channels whose
``min_severity`` is above the alert's, waiting for the digest on digest channels, and recorded as
silenced when a silence for the feed's operator alerts holds.
"""

from __future__ import annotations

from datetime import datetime

from daemon.alerting import policy as alerts
from daemon.alerting import silences as muting
from daemon.alerting.ingest import Routing
from daemon.alerting.ports import IngestStore
from daemon.models import OUTBOX_DIGEST, OUTBOX_PENDING, OUTBOX_SILENCED, Alert, AlertKind, Severity, Silence
from daemon.util.redact import link_url, redact_text
from daemon.util.urls import safe_link

OPS_SEVERITY = {
    "failing": Severity.WARNING,
    "gone": Severity.CRITICAL,
    "stale": Severity.WARNING,
    "recovered": Severity.INFO,
}


def ops_alert(feed: str, url: str, kind: str, message: str, now: datetime) -> Alert:
    """A feed's health event (``kind``: failing, gone, stale, recovered) as an operator alert."""
    return Alert(
        alert_id=alerts.alert_id("ops", feed, kind, now.isoformat()),
        kind=AlertKind.OPS,
        rule_id="",
        severity=OPS_SEVERITY[kind],
        score=0.0,
        title=redact_text(f"Feed {feed} {message}"),
        link=safe_link(link_url(url)),  # sent to every ops channel: never with the feed's credentials
        feed=feed,
        created_at=now,
        description=f"feed {kind}",
    )


def regex_overrun_alert(rule_id: str, feed: str, title: str, budget: float, now: datetime) -> Alert:
    return Alert(
        alert_id=alerts.alert_id("ops", "regex-overrun", rule_id, now.isoformat()),
        kind=AlertKind.OPS,
        rule_id="",
        severity=Severity.WARNING,
        score=0.0,
        title=f"Rule {rule_id} skipped an item: its regex ran past the {budget * 1000:g} ms time budget",
        link=None,
        feed=feed,
        created_at=now,
        snippet=f"First item (feed {feed}): {title[:200]}",
        description=(
            f"rule {rule_id} regex overrun: the rule was skipped for such items, which were recorded as seen; "
            "`feedwatch check` names patterns that backtrack"
        ),
    )


def enqueue_ops(store: IngestStore, alert: Alert, routing: Routing, now: datetime) -> tuple[list[str], Silence | None]:
    """Queue an operator alert where routing sends it; (its channels, the silence that held it or None)."""
    cfg = routing.alerts
    channels = alerts.route(cfg.ops_channels, cfg.default_channels, routing.channel_floors, alert.severity)
    with store.transaction():
        silence = muting.find(
            store.silences(now=now), rule_id="", ops=True, feed=alert.feed, title=alert.title, now=now
        )
        states = {
            c: OUTBOX_SILENCED if silence else OUTBOX_DIGEST if c in routing.digest_channels else OUTBOX_PENDING
            for c in channels
        }
        store.add_alert(alert, channels, story_id=None, item_id=None, now=now, states=states)
        if silence is not None:
            store.mark_silenced(alert.alert_id, silence.id)
    return channels, silence
