"""Storm and digest grouping fold held alerts into one grouped alert, against a real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.alerting import grouping
from daemon.models import OUTBOX_DIGEST, OUTBOX_FOLDED, OUTBOX_HELD, OUTBOX_PENDING, Alert, AlertKind, Severity
from daemon.store.sqlite import Store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "fw.db")
    yield s
    s.close()


def held(store: Store, n: int, state: str, channel: str = "desk", rule: str = "quake") -> None:
    for i in range(n):
        alert = Alert(
            alert_id=f"a{i}",
            kind=AlertKind.NEW,
            rule_id=rule,
            severity=Severity.WARNING,
            score=2.0,
            title=f"item {i}",
            link=None,
            feed="wire",
            created_at=NOW,
        )
        store.add_alert(alert, [channel], story_id=None, item_id=None, now=NOW, state=state)


def test_storm_waits_for_its_window_then_folds_into_one(store: Store) -> None:
    """Held alerts stay held inside the window; after it, one grouped alert is queued and they are folded."""
    held(store, 3, OUTBOX_HELD)
    assert grouping.flush_storms(store, window=WINDOW, now=NOW + timedelta(seconds=10)) == []
    [(channel, grouped)] = grouping.flush_storms(store, window=WINDOW, now=NOW + timedelta(seconds=WINDOW))
    assert (channel, grouped.kind, len(grouped.entries)) == ("desk", AlertKind.STORM, 3)
    assert grouped.title == "3 more items matched quake in the last 10 min"
    counts = store.outbox_counts()
    assert (counts[OUTBOX_HELD], counts[OUTBOX_FOLDED], counts[OUTBOX_PENDING]) == (0, 3, 1)


def test_force_folds_at_once(store: Store) -> None:
    """A run --once cycle has no later window: force folds whatever is held now."""
    held(store, 2, OUTBOX_HELD)
    assert len(grouping.flush_storms(store, window=WINDOW, now=NOW, force=True)) == 1


def test_digest_takes_everything_waiting_for_its_channel(store: Store) -> None:
    """A digest gathers the channel's waiting alerts; with nothing waiting there is no digest."""
    held(store, 2, OUTBOX_DIGEST, channel="daily")
    digest = grouping.flush_digest(store, "daily", period=86400.0, now=NOW)
    assert digest is not None
    assert (digest.kind, len(digest.entries)) == (AlertKind.DIGEST, 2)
    assert grouping.flush_digest(store, "daily", period=86400.0, now=NOW) is None
