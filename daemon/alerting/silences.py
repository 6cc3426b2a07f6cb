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
from datetime import datetime

from daemon.models import ANY_RULE, OPS_RULE, Silence

MAX_COMMENT = 500

__all__ = ["ANY_RULE", "MAX_COMMENT", "OPS_RULE", "Silence", "find", "new_id", "validate"]


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
