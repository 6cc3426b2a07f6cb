"""Storm and digest grouping: alerts held back are folded into one grouped alert, in one transaction.

Storm control holds a rule's alerts past ``storm_limit`` per window (``held``); a digest channel keeps
everything routed to it (``digest``). The outbox worker only asks when: it calls :func:`flush_storms`
as windows pass and :func:`flush_digest` on each channel's schedule, and delivers what they queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from daemon.alerting import policy as alerts
from daemon.alerting.ports import AlertWriter
from daemon.models import OUTBOX_DIGEST, OUTBOX_HELD, Alert, AlertKind


class GroupingStore(AlertWriter, Protocol):
    """The store calls grouping makes (on the store's thread)."""

    def transaction(self) -> AbstractContextManager[Any]: ...
    def held_groups(self, state: str) -> Sequence[tuple[str, str, datetime]]: ...
    def take_held(self, state: str, channel: str, rule_id: str | None = None) -> Sequence[Alert]: ...


def fold(
    store: GroupingStore,
    state: str,
    channel: str,
    rule_id: str | None,
    kind: AlertKind,
    window: float,
    now: datetime,
) -> Alert | None:
    """Replace waiting alerts with one grouped alert, queued for ``channel`` — one transaction."""
    with store.transaction():
        entries = store.take_held(state, channel, rule_id)
        if not entries:
            return None
        grouped = alerts.group_alert(
            kind, list(entries), channel=channel, rule_id=rule_id or "", window=window, now=now
        )
        store.add_alert(grouped, [channel], story_id=None, item_id=None, now=now)
        return grouped


def flush_storms(store: GroupingStore, *, window: float, now: datetime, force: bool = False) -> list[tuple[str, Alert]]:
    """One grouped alert per (channel, rule) whose storm window has passed (every one with ``force``)."""
    grouped: list[tuple[str, Alert]] = []
    for channel, rule_id, oldest in store.held_groups(OUTBOX_HELD):
        if force or (now - oldest).total_seconds() >= window:
            alert = fold(store, OUTBOX_HELD, channel, rule_id, AlertKind.STORM, window, now)
            if alert is not None:
                grouped.append((channel, alert))
    return grouped


def flush_digest(store: GroupingStore, channel: str, *, period: float, now: datetime) -> Alert | None:
    """The digest of everything waiting for ``channel`` (None when nothing waits)."""
    return fold(store, OUTBOX_DIGEST, channel, None, AlertKind.DIGEST, period, now)
