"""Collect what ``feedwatch explain`` shows: an item, its story, every rule's verdict, alerts and deliveries.

Reads a store opened read-only and the rules as they are now; the verdicts themselves come from the
pure :mod:`daemon.alerting.explain`.
"""

from __future__ import annotations

import json
from typing import Any

from daemon.alerting.explain import Recorded, verdicts
from daemon.alerting.policy import route
from daemon.config.model import Config
from daemon.models import Item, Severity, hit_from_dict, hit_to_dict
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.store.base import ITEM_TEXT_MAX
from daemon.store.controls import ItemRow, StoredAlert
from daemon.store.sqlite import Store


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class Explainer:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._matcher: Matcher | None = None
        self.rule_errors: list[str] = []

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            report = load_rules(self.config.rules_dir, channels=list(self.config.channels))
            self.rule_errors = [str(e) for e in report.errors]
            self._matcher = Matcher(report.ruleset)
        return self._matcher

    def explain(self, ident: str) -> list[dict[str, Any]]:
        """One document per item (or per alert without an item); empty when nothing matches ``ident``."""
        ident = ident.strip()
        if ident.startswith(("http://", "https://")):
            return [self.item_doc(row) for row in self.store.items_by_link(ident)]
        if ident.isdigit():
            row = self.store.item(int(ident))
            return [self.item_doc(row)] if row else []
        alert = self.store.alert_row(ident)
        if alert is None:
            return []
        if alert.item_id is not None:
            item = self.store.item(alert.item_id)
            if item is not None:
                doc = self.item_doc(item)
                doc["query"] = {"alert_id": alert.alert.alert_id}
                return [doc]
        return [
            {
                "query": {"alert_id": alert.alert.alert_id},
                "item": None,
                "story": None,
                "rules": [],
                "alerts": [self.alert(alert)],
            }
        ]

    def item_doc(self, row: ItemRow) -> dict[str, Any]:
        feed = next((f for f in self.config.feeds if f.name == row.feed), None)
        note = None
        if row.summary is None:
            note = "this item's text was not kept (seen by an older feedwatch): rules are scored on its title only"
        elif max(len(row.summary), len(row.content or "")) >= ITEM_TEXT_MAX:
            note = f"the stored text is cut at {ITEM_TEXT_MAX} characters per field"
        item = Item(
            feed=row.feed,
            key=row.key,
            title=row.title,
            link=row.link,
            summary=row.summary or "",
            content=row.content or "",
            published=row.published,
        )
        tags = frozenset(feed.tags) if feed else frozenset()
        evaluations = self.matcher.evaluate(item, feed_tags=tags, all_rules=True)
        recorded = {
            m.rule_id: Recorded(
                score=m.score,
                severity=str(Severity(m.severity)),
                outcome=m.outcome,
                reason=m.reason,
                alert_id=m.alert_id,
                hits=tuple(hit_from_dict(h) for h in json.loads(m.hits)),
            )
            for m in self.store.matches_of(row.id)
        }
        story = self.store.story(row.story_id) if row.story_id is not None else None
        return {
            "query": {"item_id": row.id},
            "item": {
                "id": row.id,
                "feed": row.feed,
                "key": row.key,
                "title": row.title,
                "link": row.link,
                "published": _iso(row.published),
                "first_seen": row.first_seen.isoformat(),
                "note": note,
            },
            "story": None
            if story is None
            else {
                "id": story.id,
                "title": story.title,
                "canonical_url": story.canonical_url,
                "first_seen": story.first_seen.isoformat(),
                "last_seen": story.last_seen.isoformat(),
                "feeds": list(story.feeds),
            },
            "rules": verdicts(evaluations, recorded),
            "rule_errors": self.rule_errors,
            "alerts": [self.alert(a) for a in self.store.alerts_of_item(row.id)],
        }

    def alert(self, row: StoredAlert) -> dict[str, Any]:
        alert = row.alert
        deliveries = {d.channel: d for d in self.store.deliveries(alert.alert_id)}
        channels = []
        for name, d in deliveries.items():
            channels.append(
                {
                    "channel": name,
                    "state": d.state,
                    "attempts": d.attempts,
                    "error": d.last_error,
                    "delivered_at": d.delivered_at,
                    "note": None,
                }
            )
        channels += self._floored(alert.rule_id, alert.severity, set(deliveries))
        silence = self.store.silence(row.silence_id) if row.silence_id else None
        return {
            "alert_id": alert.alert_id,
            "kind": str(alert.kind),
            "rule_id": alert.rule_id,
            "severity": str(alert.severity),
            "score": alert.score,
            "title": alert.title,
            "feed": alert.feed,
            "created_at": alert.created_at.isoformat(),
            "thread_id": alert.thread_id,
            "hits": [hit_to_dict(h) for h in alert.hits],
            "silence": None
            if silence is None
            else {
                "id": silence.id,
                "matches": silence.describe(),
                "ends_at": silence.ends_at.isoformat(),
                "comment": silence.comment,
                "created_by": silence.created_by,
            },
            "channels": channels,
            "attempts": [
                {"channel": a.channel, "at": a.at.isoformat(), "outcome": a.outcome, "error": a.error}
                for a in self.store.attempts(alert.alert_id)
            ],
        }

    def _floored(self, rule_id: str, severity: Severity, queued: set[str]) -> list[dict[str, Any]]:
        """Channels the rule routes to that took no delivery because their min_severity is higher."""
        rule = self.matcher.ruleset.get(rule_id) if rule_id else None
        if rule is None:
            return []
        floors = {n: c.min_severity for n, c in self.config.channels.items()}
        wanted = list(dict.fromkeys(rule.channels or self.config.alerts.default_channels))
        kept = set(route(rule.channels, self.config.alerts.default_channels, floors, severity))
        return [
            {
                "channel": name,
                "state": "not routed",
                "attempts": 0,
                "error": None,
                "delivered_at": None,
                "note": f"severity floor: min_severity {floors.get(name, Severity.INFO)} is above {severity}",
            }
            for name in wanted
            if name not in kept and name not in queued
        ]
