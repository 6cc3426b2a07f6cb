"""Alert policy: whether a rule match on a story becomes a new alert, an update, or nothing.

Pure. The store supplies what happened before (the story's last alert for the rule); the clock is
passed in. Routing picks channels from the rule, the default route and each channel's severity floor.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from daemon.models import Alert, AlertKind, Severity
from daemon.util.durations import format_duration


class Action(enum.StrEnum):
    NEW = "new"
    UPDATE = "update"
    SUPPRESS = "suppress"


class Outcome(enum.StrEnum):
    """What became of one rule's match on one item (recorded for ``feedwatch explain``)."""

    ALERTED = "alerted"  # a new alert for the story
    UPDATED = "updated"  # an update: severity rose, or the story went on past the throttle
    THROTTLED = "throttled"  # the story was already alerted for this rule
    UNCHANGED = "unchanged"  # an edited item whose severity did not rise
    BACKFILL = "backfill"  # the feed's first poll: its backlog is recorded without alerting
    SILENCED = "silenced"  # recorded as an alert, never sent
    STORM = "storm"  # held by storm control, sent folded into one grouped message
    SEVERITY_FLOOR = "severity_floor"  # every routed channel wants a higher severity
    DIGEST = "digest"  # waits for its digest channel's schedule


@dataclass(frozen=True, slots=True)
class Prior:
    """The alert already sent for a (rule, story): its severity and when."""

    severity: Severity
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to alert for a match, and why."""

    action: Action
    reason: str


def decide(*, severity: Severity, prior: Prior | None, throttle: float | None, now: datetime) -> Decision:
    """One alert per (rule, story); a severity rise re-alerts at once; otherwise wait out the throttle."""
    if prior is None:
        return Decision(Action.NEW, "first match for this story")
    if severity > prior.severity:
        return Decision(Action.UPDATE, f"severity rose from {prior.severity} to {severity}")
    if throttle is not None and (now - prior.created_at).total_seconds() >= throttle:
        return Decision(Action.UPDATE, "story continues after the throttle window")
    return Decision(Action.SUPPRESS, "already alerted for this story")


def route(
    rule_channels: Sequence[str],
    default_channels: Sequence[str],
    channel_floors: Mapping[str, Severity],
    severity: Severity,
) -> list[str]:
    """Channels for an alert: the rule's own, else the default route, minus those above its severity."""
    names = list(rule_channels) or list(default_channels)
    return [n for n in dict.fromkeys(names) if severity >= channel_floors.get(n, Severity.INFO)]


def alert_id(*parts: object) -> str:
    """Stable id from what the alert is about; used as Message-ID and Idempotency-Key."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"fw-{digest[:24]}"


def storm_exceeded(recent_for_rule: int, limit: int) -> bool:
    """Storm control: past ``limit`` alerts of one rule within the window, fold the rest."""
    return recent_for_rule >= limit


def group_alert(
    kind: AlertKind, entries: Sequence[Alert], *, channel: str, rule_id: str, window: float, now: datetime
) -> Alert:
    """One message standing for ``entries``: a storm summary for a rule, or a channel's digest."""
    rules = sorted({e.rule_id for e in entries})
    if kind is AlertKind.STORM:
        title = f"{len(entries)} more items matched {rule_id} in the last {format_duration(window)}"
    else:
        title = f"Digest: {len(entries)} alert{'s' if len(entries) != 1 else ''} from {len(rules)} rule" + (
            "s" if len(rules) != 1 else ""
        )
    return Alert(
        alert_id=alert_id(kind, channel, rule_id, *(e.alert_id for e in entries)),
        kind=kind,
        rule_id=rule_id,
        severity=max((e.severity for e in entries), default=Severity.INFO),
        score=max((e.score for e in entries), default=0.0),
        title=title,
        link=None,
        feed=", ".join(sorted({e.feed for e in entries})),
        created_at=now,
        entries=tuple(entries),
    )
