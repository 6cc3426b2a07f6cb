"""Operator alerts are routed like every alert: ops channels, severity floors, digests, silences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.alerting.ingest import Routing
from daemon.alerting.ops import enqueue_ops, ops_alert
from daemon.config.model import AlertConfig
from daemon.models import OUTBOX_DIGEST, OUTBOX_PENDING, Severity
from daemon.store.sqlite import Store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "fw.db")
    yield s
    s.close()


def routing(**floors: Severity) -> Routing:
    alerts = AlertConfig(default_channels=("console",), ops_channels=("pager", "desk", "daily"))
    channel_floors = {"console": Severity.INFO, "pager": Severity.INFO, "desk": Severity.INFO, "daily": Severity.INFO}
    return Routing(alerts, {**channel_floors, **floors}, frozenset({"daily"}))


def states(store: Store, alert_id: str) -> dict[str, str]:
    return {d.channel: d.state for d in store.deliveries(alert_id)}


def test_ops_channels_with_floors_and_digests(store: Store) -> None:
    """A failing feed's warning goes to the ops channels; the digest channel keeps it for its digest."""
    alert = ops_alert("wire", "https://wire.example/rss", "failing", "failing for 5 polls", NOW)
    channels, silence = enqueue_ops(store, alert, routing(), NOW)
    assert (channels, silence) == (["pager", "desk", "daily"], None)
    assert states(store, alert.alert_id) == {"pager": OUTBOX_PENDING, "desk": OUTBOX_PENDING, "daily": OUTBOX_DIGEST}


def test_a_channel_above_the_alerts_severity_is_skipped(store: Store) -> None:
    """A 'recovered' notice (info) skips a channel whose min_severity is warning, like any info alert."""
    alert = ops_alert("wire", "https://wire.example/rss", "recovered", "recovered after 5 failed polls", NOW)
    channels, _ = enqueue_ops(store, alert, routing(pager=Severity.WARNING), NOW)
    assert channels == ["desk", "daily"]
    assert "pager" not in states(store, alert.alert_id)


def test_without_ops_channels_the_default_route_applies(store: Store) -> None:
    """With no ops_channels configured, operator alerts take the default channels."""
    plain = Routing(AlertConfig(default_channels=("console",)), {"console": Severity.INFO})
    alert = ops_alert("wire", "https://wire.example/rss", "gone", "gone, polling stopped: HTTP 410", NOW)
    channels, _ = enqueue_ops(store, alert, plain, NOW)
    assert channels == ["console"]
