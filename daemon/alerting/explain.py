"""Why an item did or did not alert: one verdict per rule, from its scoring and the alert policy's record.

Pure: the caller passes each rule's evaluation (scored now, on the stored text, with the rules as they
are) and what the alert policy recorded when the item came in; out comes one JSON-ready verdict per rule
and a text rendering of a whole explanation document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.alerting.policy import Outcome
from daemon.models import Hit, hit_to_dict
from daemon.rules.matcher import Evaluation

# Why a rule did not fire, as the matcher words it (ordered: the first that applies names the verdict).
NOT_APPLICABLE = "not_applicable"
DISABLED = "disabled"
EXCLUDED = "excluded"
MISSING_GROUP = "missing_group"
NOT_NEAR = "not_near"
NO_MATCH = "no_match"
BELOW_THRESHOLD = "below_threshold"
CHANGED_RULES = "fires_now"  # fires with today's rules, but did not when the item came in


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the alert policy did when the item came in (a row of ``matches``)."""

    score: float
    severity: str
    outcome: str | None
    reason: str | None
    alert_id: str | None
    hits: tuple[Hit, ...] = ()


def not_fired_outcome(ev: Evaluation) -> str:
    """The category of a rule that did not fire, from the matcher's reasons."""
    reasons = " ".join(ev.reasons)
    if ev.vetoes or "excluded by" in reasons:
        return EXCLUDED
    if "rule is disabled" in reasons:
        return DISABLED
    if reasons.startswith(("feed ", "feed has")):
        return NOT_APPLICABLE
    if "no term matched" in reasons:
        return NO_MATCH
    if "required group" in reasons:
        return MISSING_GROUP
    if "within" in reasons and "words" in reasons:
        return NOT_NEAR
    return BELOW_THRESHOLD


def verdicts(evaluations: Sequence[Evaluation], recorded: Mapping[str, Recorded]) -> list[dict[str, Any]]:
    """One verdict per rule: fired and what became of it, or why not. Rules only in ``recorded`` (since
    removed) come last."""
    out = []
    for ev in evaluations:
        rec = recorded.get(ev.rule_id)
        if rec is not None:
            entry = {
                "rule": ev.rule_id,
                "fired": True,
                "score": rec.score,
                "severity": rec.severity,
                "outcome": rec.outcome or "recorded",
                "reason": rec.reason or "matched (recorded before decisions were kept)",
                "alert_id": rec.alert_id,
                "hits": [hit_to_dict(h) for h in rec.hits or ev.hits],
                "now": None if ev.fired else "with the current rules it would not fire: " + "; ".join(ev.reasons),
            }
        elif ev.fired:
            entry = {
                "rule": ev.rule_id,
                "fired": True,
                "score": ev.score,
                "severity": str(ev.severity),
                "outcome": CHANGED_RULES,
                "reason": "fires with the current rules, but did not when the item came in (the rules changed since)",
                "alert_id": None,
                "hits": [hit_to_dict(h) for h in ev.hits],
                "now": None,
            }
        else:
            entry = {
                "rule": ev.rule_id,
                "fired": False,
                "score": ev.score,
                "severity": None,
                "outcome": not_fired_outcome(ev),
                "reason": "; ".join(ev.reasons),
                "alert_id": None,
                "hits": [hit_to_dict(h) for h in ev.hits],
                "now": None,
            }
        out.append(entry)
    known = {ev.rule_id for ev in evaluations}
    for rule_id, rec in sorted(recorded.items()):
        if rule_id not in known:
            out.append(
                {
                    "rule": rule_id,
                    "fired": True,
                    "score": rec.score,
                    "severity": rec.severity,
                    "outcome": rec.outcome or "recorded",
                    "reason": rec.reason or "matched",
                    "alert_id": rec.alert_id,
                    "hits": [hit_to_dict(h) for h in rec.hits],
                    "now": "this rule is no longer loaded",
                }
            )
    return out


SENT = {Outcome.ALERTED, Outcome.UPDATED, Outcome.STORM, Outcome.DIGEST}


def summary(doc: Mapping[str, Any]) -> str:
    """One line: alerted (how), or the reason it did not."""
    rules = doc.get("rules") or []
    fired = [r for r in rules if r["fired"]]
    if not rules and doc.get("alerts"):
        a = doc["alerts"][0]
        return f"{a['kind']} alert {a['alert_id']}" + (" (silenced)" if a.get("silence") else "")
    if not fired:
        return "did not alert: no rule fired"
    parts = [f"{r['rule']}: {r['outcome']}" for r in fired]
    alerted = any(r["outcome"] in SENT for r in fired)
    return ("alerted — " if alerted else "did not alert — ") + ", ".join(parts)


def _hit_text(hits: Sequence[Mapping[str, Any]]) -> str:
    counted = [h for h in hits if h["contribution"]]
    return " · ".join(f"{h['text']} ({h['group']}, {h['field']}, {h['contribution']:+g})" for h in counted)


def render(doc: Mapping[str, Any]) -> str:
    """The explanation for people: item, story, each rule's verdict, then each alert's deliveries."""
    lines: list[str] = []
    item = doc.get("item")
    if item:
        lines.append(f"item {item['id']}  feed {item['feed']}  first seen {item['first_seen'][:19]}")
        lines.append(f"  {item['title']}")
        if item.get("link"):
            lines.append(f"  {item['link']}")
        if item.get("note"):
            lines.append(f"  note: {item['note']}")
    story = doc.get("story")
    if story:
        feeds = ", ".join(story["feeds"])
        lines.append(f"story {story['id']}: {story['title']!r} (feeds: {feeds}; since {story['first_seen'][:19]})")
    lines.append(f"verdict: {summary(doc)}")
    if doc.get("rules"):
        lines.append("rules")
    for r in doc.get("rules") or []:
        head = f"  {r['rule']}: score {r['score']:g}"
        head += f", FIRED {r['severity']} → {r['outcome']}" if r["fired"] else f" → {r['outcome']}"
        lines.append(head)
        lines.append(f"    {r['reason']}")
        if r.get("now"):
            lines.append(f"    ({r['now']})")
        hits = _hit_text(r["hits"])
        if hits:
            lines.append(f"    counted: {hits}")
    for a in doc.get("alerts") or []:
        lines.append(
            f"alert {a['alert_id']}  {a['kind']} [{a['severity']}] rule {a['rule_id'] or '-'}  {a['created_at'][:19]}"
        )
        if a.get("silence"):
            s = a["silence"]
            lines.append(f"  silenced by {s['id']} ({s['matches']}) until {s['ends_at'][:16]}: {s['comment']}")
        for c in a.get("channels") or []:
            lines.append(f"  channel {c['channel']}: {c['state']}" + (f" ({c['note']})" if c.get("note") else ""))
        for d in a.get("attempts") or []:
            error = f": {d['error']}" if d.get("error") else ""
            lines.append(f"    {d['at'][:19]} {d['channel']} {d['outcome']}{error}")
    return "\n".join(lines)
