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

from daemon.models import Severity


class Action(enum.StrEnum):
    NEW = "new"
    UPDATE = "update"
    SUPPRESS = "suppress"


@dataclass(frozen=True, slots=True)
class Prior:
    severity: Severity
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
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
