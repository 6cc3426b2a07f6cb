"""Silences: mute a rule (or a feed's operator alerts) for a while, Alertmanager-style.

Pure. The store keeps silences; callers pass the active ones in as values, with ``now``. A silence
matches an alert by rule (``*`` for every rule, ``@ops`` for operator alerts about feeds), optionally
by feed and by a piece of text in the title (case-insensitive). A silenced alert is still recorded —
it counts as the story's alert, so when the silence ends nothing that was silenced is sent: only a
later severity rise above what was silenced, or the story continuing past the rule's throttle, alerts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

OPS_RULE = "@ops"  # matches operator alerts (feed failing, recovered, stale, gone)
ANY_RULE = "*"  # matches every watch rule (not operator alerts)
MAX_COMMENT = 500


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence. ``ends_at`` is when it stops; expiring it early sets ``ends_at`` to that moment."""

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


def find(
    silences: Iterable[Silence], *, rule_id: str, ops: bool = False, feed: str, title: str, now: datetime
) -> Silence | None:
    """The silence muting this alert now (the one lasting longest when several do), or None."""
    best: Silence | None = None
    for s in silences:
        longer = best is None or s.ends_at > best.ends_at
        if longer and s.active(now) and s.matches(rule_id=rule_id, ops=ops, feed=feed, title=title):
            best = s
    return best


def new_id(rule: str, feed: str | None, match: str | None, created_at: datetime, salt: str = "") -> str:
    """A short id (``sil-`` and 10 hex digits): unique per creation time, easy to type and to prefix."""
    text = "\x1f".join((rule, feed or "", match or "", created_at.isoformat(), salt))
    return "sil-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def validate(rule: str, *, feed: str | None, match: str | None, seconds: float, comment: str) -> list[str]:
    """Problems with a silence about to be created (empty when it is fine)."""
    problems = []
    if not rule.strip():
        problems.append("--rule is empty (use a rule id, '*' for every rule, or '@ops' for feed alerts)")
    if rule == OPS_RULE and match is not None:
        problems.append("--match applies to watch rules' titles, not to operator alerts; use --feed")
    if match is not None and not match.strip():
        problems.append("--match is empty")
    if feed is not None and not feed.strip():
        problems.append("--feed is empty")
    if not seconds > 0:
        problems.append("--for must be a positive duration such as 2h")
    if len(comment) > MAX_COMMENT:
        problems.append(f"--comment is longer than {MAX_COMMENT} characters")
    return problems
