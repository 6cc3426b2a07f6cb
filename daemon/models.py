"""Domain values shared by every layer: items, hits, rule matches and alerts.

All are frozen dataclasses of plain values so the pure core (matcher, stories, alert policy,
rendering) can be tested with literal data. ``alert_to_dict``/``alert_from_dict`` give the one
JSON shape used by the outbox and the generic webhook (schema version ``SCHEMA_VERSION``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1


# Delivery states of an outbox row (the store keeps them; alert policy decides the first one).
OUTBOX_PENDING = "pending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_DEAD = "dead"
OUTBOX_HELD = "held"  # storm control: folded into one grouped message later
OUTBOX_DIGEST = "digest"  # waits for its digest channel's schedule
OUTBOX_FOLDED = "folded"  # delivered as part of a grouped or digest message
OUTBOX_SILENCED = "silenced"  # recorded, never sent: a silence matched


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's polling health: what the store keeps per feed and the poll policy updates (one shape)."""

    consecutive_failures: int = 0
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    last_new_item: datetime | None = None
    alerted_failing: bool = False
    alerted_stale: bool = False
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """What one fetched document changes on its feed, saved with its items (so a 304 never hides any)."""

    etag: str | None
    last_modified: str | None
    current_url: str | None = None  # a permanent redirect's target, to poll from now on
    problem_logged: bool = False  # its ill-formedness was reported (once per feed)


class Severity(enum.IntEnum):
    """Ordered so a rise can be compared with ``>``."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"expected one of info, warning, critical, got {text!r}") from None


class AlertKind(enum.StrEnum):
    NEW = "new"  # first alert for a (rule, story)
    UPDATE = "update"  # severity rose, or the story grew, after the first alert
    STORM = "storm"  # several alerts folded into one message by storm control
    DIGEST = "digest"  # a digest channel's periodic summary
    OPS = "ops"  # operator alert: feed failing, recovered, stale
    TEST = "test"  # `feedwatch send-test`


FIELDS = ("title", "summary", "content")


@dataclass(frozen=True, slots=True)
class Item:
    """One feed entry, already sanitised: plain text fields, ``link`` absolute http(s) or None."""

    feed: str
    key: str
    title: str
    link: str | None
    summary: str
    content: str = ""
    published: datetime | None = None
    author: str = ""
    guid: str | None = None
    # content_hash, worked out once: a poll asks for it several times per item (new? scored? stored?).
    _hash: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def content_hash(self) -> str:
        """Hash of what a reader sees; a change means the item was materially edited."""
        known = self._hash
        if known is not None:
            return known
        from hashlib import sha256  # here: OpenSSL's start-up is not for commands that never hash an item

        # The three parts, whitespace collapsed, each followed by \x1f: hashed in one piece.
        text = "\x1f".join([" ".join(part.split()) for part in (self.title, self.summary, self.content)])
        known = sha256(text.encode("utf-8", "replace") + b"\x1f").hexdigest()[:32]
        object.__setattr__(self, "_hash", known)  # a cache of a pure function of frozen fields
        return known

    def field_text(self, name: str) -> str:
        if name == "title":
            return self.title
        if name == "summary":
            return self.summary
        if name == "content":
            return self.content
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Hit:
    """One reason a rule matched: a term of a group found in a field of the item."""

    group: str
    term: str  # the term as written in the rule, e.g. "Stepanakert|Khankendi"
    alias: str  # the alternative that matched, e.g. "Khankendi"
    field: str  # "title" | "summary" | "content"
    start: int  # span in the original (unfolded) field text
    end: int
    text: str  # the original text at that span
    contribution: float  # what this hit added to the score (0.0 for a repeat of a counted term)
    fuzzy: float | None = None  # rapidfuzz similarity when matched fuzzily


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule that fired for an item."""

    rule_id: str
    score: float
    severity: Severity
    hits: tuple[Hit, ...]
    channels: tuple[str, ...] = ()  # empty: the configured default route


@dataclass(frozen=True, slots=True)
class Alert:
    """What a channel delivers. ``alert_id`` is stable and is the idempotency key everywhere."""

    alert_id: str
    kind: AlertKind
    rule_id: str
    severity: Severity
    score: float
    title: str
    link: str | None
    feed: str
    created_at: datetime
    story_id: str = ""
    published: datetime | None = None
    snippet: str = ""
    description: str = ""
    hits: tuple[Hit, ...] = ()
    thread_id: str | None = None  # alert_id of the story's first alert: email threads under it
    also_reported_by: tuple[str, ...] = ()
    entries: tuple[Alert, ...] = field(default=())  # storm/digest: the alerts folded into this one
    change: str = ""  # an update: what changed, e.g. "severity rose from info to critical"


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    return {
        "group": hit.group,
        "term": hit.term,
        "alias": hit.alias,
        "field": hit.field,
        "start": hit.start,
        "end": hit.end,
        "text": hit.text,
        "contribution": hit.contribution,
        "fuzzy": hit.fuzzy,
    }


def hit_from_dict(data: dict[str, Any]) -> Hit:
    return Hit(
        group=str(data["group"]),
        term=str(data["term"]),
        alias=str(data["alias"]),
        field=str(data["field"]),
        start=int(data["start"]),
        end=int(data["end"]),
        text=str(data["text"]),
        contribution=float(data["contribution"]),
        fuzzy=float(data["fuzzy"]) if data.get("fuzzy") is not None else None,
    )


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """The versioned JSON shape (also the generic webhook's body, under ``alert``)."""
    return {
        "alert_id": alert.alert_id,
        "kind": str(alert.kind),
        "rule_id": alert.rule_id,
        "severity": str(alert.severity),
        "score": alert.score,
        "title": alert.title,
        "link": alert.link,
        "feed": alert.feed,
        "created_at": _dt(alert.created_at),
        "story_id": alert.story_id,
        "published": _dt(alert.published),
        "snippet": alert.snippet,
        "description": alert.description,
        "hits": [hit_to_dict(h) for h in alert.hits],
        "thread_id": alert.thread_id,
        "also_reported_by": list(alert.also_reported_by),
        "entries": [alert_to_dict(e) for e in alert.entries],
        "change": alert.change,
    }


def alert_from_dict(data: dict[str, Any]) -> Alert:
    created = _parse_dt(data["created_at"])
    assert created is not None
    return Alert(
        alert_id=str(data["alert_id"]),
        kind=AlertKind(data["kind"]),
        rule_id=str(data["rule_id"]),
        severity=Severity.parse(str(data["severity"])),
        score=float(data["score"]),
        title=str(data["title"]),
        link=data.get("link"),
        feed=str(data["feed"]),
        created_at=created,
        story_id=str(data.get("story_id", "")),
        published=_parse_dt(data.get("published")),
        snippet=str(data.get("snippet", "")),
        description=str(data.get("description", "")),
        hits=tuple(hit_from_dict(h) for h in data.get("hits", [])),
        thread_id=data.get("thread_id"),
        also_reported_by=tuple(data.get("also_reported_by", [])),
        entries=tuple(alert_from_dict(e) for e in data.get("entries", [])),
        change=str(data.get("change") or ""),
    )


OPS_RULE = "@ops"  # a silence for operator alerts (feed failing, recovered, stale, gone)
ANY_RULE = "*"  # a silence for every watch rule (not operator alerts)


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence (policy in :mod:`daemon.alerting.silences`); expiring it early moves ``ends_at`` to then."""

    id: str
    rule: str
    starts_at: datetime
    ends_at: datetime
    feed: str | None = None
    match: str | None = None
    comment: str = ""
    created_by: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, *, rule_id: str, ops: bool, feed: str, title: str) -> bool:
        """Whether an alert of ``rule_id`` (an operator alert when ``ops``) from ``feed`` falls under it."""
        if self.rule == OPS_RULE:
            if not ops:
                return False
        elif ops or (self.rule != ANY_RULE and self.rule != rule_id):
            return False
        if self.feed is not None and self.feed != feed:
            return False
        return self.match is None or self.match.casefold() in title.casefold()

    def describe(self) -> str:
        """``rule karabakh-escalation, feed rferl, title contains "Grand Prix"``."""
        what = "operator alerts" if self.rule == OPS_RULE else "every rule" if self.rule == ANY_RULE else "rule "
        parts = [what + (self.rule if what == "rule " else "")]
        if self.feed is not None:
            parts.append(f"feed {self.feed}")
        if self.match is not None:
            parts.append(f"title contains {self.match!r}")
        return ", ".join(parts)
