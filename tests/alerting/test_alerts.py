"""Alert policy and routing, with literal values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.alerting.policy import Action, Prior, alert_id, decide, route
from daemon.models import Severity

NOW = datetime(2020, 9, 28, 12, 0, tzinfo=UTC)


class TestDecide:
    @pytest.mark.parametrize(
        ("severity", "prior", "throttle", "action"),
        [
            (Severity.WARNING, None, None, Action.NEW),
            (Severity.WARNING, Prior(Severity.WARNING, NOW - timedelta(minutes=5)), None, Action.SUPPRESS),
            (Severity.CRITICAL, Prior(Severity.WARNING, NOW - timedelta(minutes=5)), 3600.0, Action.UPDATE),
            (Severity.WARNING, Prior(Severity.CRITICAL, NOW - timedelta(minutes=5)), None, Action.SUPPRESS),
            (Severity.WARNING, Prior(Severity.WARNING, NOW - timedelta(minutes=5)), 3600.0, Action.SUPPRESS),
            (Severity.WARNING, Prior(Severity.WARNING, NOW - timedelta(hours=2)), 3600.0, Action.UPDATE),
        ],
    )
    def test_table(self, severity: Severity, prior: Prior | None, throttle: float | None, action: Action) -> None:
        """First match alerts; repeats are suppressed; a severity rise or an expired throttle updates."""
        assert decide(severity=severity, prior=prior, throttle=throttle, now=NOW).action is action


class TestRoute:
    def test_rule_channels_else_default_and_severity_floor(self) -> None:
        """A rule's channels replace the default route; a channel's floor filters low severities."""
        floors = {"email": Severity.CRITICAL, "console": Severity.INFO}
        assert route(["email", "console"], ["console"], floors, Severity.WARNING) == ["console"]
        assert route(["email", "console"], ["console"], floors, Severity.CRITICAL) == ["email", "console"]
        assert route([], ["console"], floors, Severity.INFO) == ["console"]


def test_alert_id_is_stable() -> None:
    """The same inputs give the same id (an idempotency key must survive a restart)."""
    assert alert_id("r", 1, "x") == alert_id("r", 1, "x")
    assert alert_id("r", 1, "x") != alert_id("r", 2, "x")
