"""What the daemon records about itself in the store: heartbeat, loaded rules, the one-line status.

``feedwatch status`` reads these back; systemd shows the status line (``STATUS=``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from daemon import __version__
from daemon.config.model import Config
from daemon.rules.ruleset import LoadReport
from daemon.service.systemd import format_status
from daemon.store.sqlite import Store


def heartbeat_record(started: float, now: datetime, interval: float) -> dict[str, Any]:
    """The ``daemon`` meta record: who runs, since when, last seen alive ``now``."""
    return {
        "pid": os.getpid(),
        "version": __version__,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "heartbeat_at": now.isoformat(),
        "interval": interval,
    }


def rules_record(report: LoadReport, now: datetime) -> dict[str, Any]:
    """The ``rules`` meta record: what was loaded when, and what failed to load."""
    return {
        "loaded_at": now.isoformat(),
        "rules": [r.id for r in report.ruleset.rules],
        "errors": [str(e) for e in report.errors],
        "warnings": list(report.warnings),
    }


def status_line(store: Store, config: Config, last_alert: datetime | None, now: datetime) -> str:
    """The one-line status for systemd (runs on the store's thread)."""
    pending = store.outbox_counts()["pending"]
    failing = sum(1 for f in store.feeds() if f.health.consecutive_failures)
    enabled = sum(1 for f in config.feeds if f.enabled)
    return format_status(feeds=enabled, failing=failing, outbox=pending, last_alert=last_alert, now=now)
