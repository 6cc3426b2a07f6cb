"""Typed rows the store returns: nothing outside daemon/store/ sees a ``sqlite3.Row``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.models import OUTBOX_DEAD as OUTBOX_DEAD
from daemon.models import OUTBOX_DELIVERED as OUTBOX_DELIVERED
from daemon.models import OUTBOX_DIGEST as OUTBOX_DIGEST
from daemon.models import OUTBOX_FOLDED as OUTBOX_FOLDED
from daemon.models import OUTBOX_HELD as OUTBOX_HELD
from daemon.models import OUTBOX_PENDING as OUTBOX_PENDING
from daemon.models import OUTBOX_SILENCED as OUTBOX_SILENCED
from daemon.models import Alert, FeedHealth, Severity

_last_iso: tuple[datetime | None, str] = (None, "")


def iso(dt: datetime) -> str:
    """A datetime as stored: UTC ISO text with microseconds (sorts as text)."""
    global _last_iso
    last, text = _last_iso
    if dt is last:  # one ingest writes its ``now`` on every row: the same object again
        return text
    text = dt.astimezone(UTC).isoformat(timespec="microseconds")
    _last_iso = (dt, text)
    return text


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed's stored state: validators, health and schedule."""

    id: int
    name: str
    url: str
    current_url: str | None
    etag: str | None
    last_modified: str | None
    first_polled_at: datetime | None
    next_poll_at: datetime | None
    items_seen: int
    problem_logged: bool
    health: FeedHealth

    @property
    def fetch_url(self) -> str:
        return self.current_url or self.url


@dataclass(frozen=True, slots=True)
class KnownItem:
    """An item already stored for a feed: enough to tell new, edited and seen."""

    id: int
    content_hash: str
    story_id: int | None


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A stored story: the items of several feeds about one event."""

    id: int
    canonical_url: str | None
    title: str
    first_seen: datetime
    last_seen: datetime
    feeds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A delivery waiting in the outbox."""

    id: int
    alert: Alert
    channel: str
    attempts: int
    story_key: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One channel's delivery of an alert (times as stored ISO text, for display)."""

    channel: str
    state: str
    attempts: int
    last_error: str | None
    delivered_at: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that failed for good."""

    id: int
    alert_id: str
    channel: str
    attempts: int
    last_error: str | None
    rule_id: str


@dataclass(frozen=True, slots=True)
class PriorAlert:
    """The last alert sent for a (rule, story)."""

    alert_id: str
    severity: Severity
    created_at: datetime
    thread_id: str
