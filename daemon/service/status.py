"""`feedwatch status`: one report with sections daemon, feeds, rules, outbox and recent alerts.

Collected from the store opened read-only (safe while the daemon runs), rendered for people or as
one JSON document. ``health`` is what monitoring keys on (the command maps it to its exit code).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from daemon.config.model import Config
from daemon.store.rows import from_iso
from daemon.store.sqlite import Store
from daemon.util.durations import format_duration

HEARTBEAT_INTERVALS = 3


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (the service account)
        return True
    return True


def collect(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, as plain JSON-ready values."""
    daemon = store.get_meta("daemon") or {}
    stopped = store.get_meta("daemon_stopped") or {}
    heartbeat = from_iso(daemon.get("heartbeat_at"))
    interval = float(daemon.get("interval") or config.polling.interval)
    age = (now - heartbeat).total_seconds() if heartbeat else None
    running = age is not None and age <= HEARTBEAT_INTERVALS * interval
    stopped_at = from_iso(stopped.get("at"))
    if running and stopped_at and heartbeat and stopped_at >= heartbeat:
        running = False
    if running and daemon.get("pid") and not _pid_alive(int(daemon["pid"])):
        running = False
    daemon_section = {
        "running": running,
        "pid": daemon.get("pid"),
        "version": daemon.get("version"),
        "started_at": daemon.get("started_at"),
        "heartbeat_at": daemon.get("heartbeat_at"),
        "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        "stopped_at": stopped.get("at"),
    }

    configured = {f.name: f for f in config.feeds}
    feeds = []
    for state in store.feeds():
        if state.name not in configured:
            continue
        failing_for = (now - state.failing_since).total_seconds() if state.failing_since else None
        if state.disabled:
            health = "disabled"
        elif state.consecutive_failures:
            health = "failing"
        elif state.last_success_at is None:
            health = "new"
        else:
            health = "ok"
        feeds.append(
            {
                "name": state.name,
                "url": state.fetch_url,
                "health": health,
                "last_attempt_at": _iso(state.last_attempt_at),
                "last_success_at": _iso(state.last_success_at),
                "last_status": state.last_status,
                "consecutive_failures": state.consecutive_failures,
                "failing_for_seconds": round(failing_for, 1) if failing_for is not None else None,
                "last_error": state.last_error,
                "next_poll_at": _iso(state.next_poll_at),
                "items_seen": state.items_seen,
                "past_threshold": bool(
                    state.disabled or (failing_for is not None and failing_for >= config.polling.status_fail_threshold)
                ),
            }
        )
    polled = {f["name"] for f in feeds}
    for name, feed in configured.items():
        if name not in polled:
            feeds.append({"name": name, "url": feed.url, "health": "never polled", "past_threshold": False})

    rules = store.get_meta("rules") or {}
    rules_error = store.get_meta("rules_error")
    counts = store.outbox_counts()
    dead = [
        {"alert_id": r["alert_id"], "channel": r["channel"], "rule": r["rule_id"], "error": r["last_error"]}
        for r in store.dead_letters(20)
    ]
    recent = [
        {
            "alert_id": a.alert_id,
            "kind": str(a.kind),
            "rule": a.rule_id,
            "severity": str(a.severity),
            "title": a.title,
            "feed": a.feed,
            "created_at": a.created_at.isoformat(),
        }
        for a in store.recent_alerts(10)
    ]
    return {
        "now": now.isoformat(),
        "daemon": daemon_section,
        "feeds": sorted(feeds, key=lambda f: f["name"]),
        "rules": {
            "loaded_at": rules.get("loaded_at"),
            "count": len(rules.get("rules", [])),
            "errors": rules.get("errors", []) + ([rules_error["error"]] if _newer(rules_error, rules) else []),
            "warnings": rules.get("warnings", []),
        },
        "outbox": {
            "pending": counts["pending"],
            "delivered": counts["delivered"],
            "dead": counts["dead"],
            "held_by_storm_control": counts["held"],
            "waiting_for_digest": counts["digest"],
            "silenced": counts.get("silenced", 0),
        },
        "silences": [
            {"id": x.id, "matches": x.describe(), "ends_at": x.ends_at.isoformat(), "comment": x.comment}
            for x in store.silences(now=now)
            if x.active(now)
        ],
        "dead_letters": dead,
        "recent_alerts": recent,
    }


def _newer(error: dict[str, Any] | None, rules: dict[str, Any]) -> bool:
    return bool(error) and str(error.get("at", "")) > str(rules.get("loaded_at", "")) if error else False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def health(report: dict[str, Any]) -> str:
    """``no daemon`` (no heartbeat), ``degraded`` (failing feeds, dead letters, rule errors) or ``ok``."""
    if not report["daemon"]["running"]:
        return "no daemon"
    degraded = (
        any(f.get("past_threshold") for f in report["feeds"]) or report["outbox"]["dead"] or report["rules"]["errors"]
    )
    return "degraded" if degraded else "ok"


def render(report: dict[str, Any]) -> str:
    d = report["daemon"]
    lines = ["daemon"]
    if d["running"]:
        lines.append(
            f"  running  pid {d['pid']} · version {d['version']} · started {d['started_at']} · "
            f"heartbeat {d['heartbeat_age_seconds']:.0f}s ago"
        )
    elif d["stopped_at"] and d["stopped_at"] >= (d["heartbeat_at"] or ""):
        lines.append(f"  NOT RUNNING: no daemon is running (the last one stopped at {d['stopped_at']})")
    elif d["heartbeat_at"]:
        lines.append(f"  NOT RUNNING: no daemon heartbeat since {d['heartbeat_at']} (not running, or stuck)")
    else:
        # `run --once` cycles poll and deliver but keep no heartbeat: say so, or the feeds below look odd.
        lines.append("  NOT RUNNING: no daemon has run with this database (`run --once` cycles leave no heartbeat)")
    lines.append("")
    lines.append(f"feeds ({len(report['feeds'])})")
    for f in report["feeds"]:
        mark = "!" if f.get("past_threshold") else " "
        detail = ""
        if f["health"] == "failing":
            since = format_duration(f["failing_for_seconds"] or 0)
            detail = f" · {f['consecutive_failures']} failures for {since}: {f['last_error']}"
        elif f["health"] == "disabled":
            detail = f" · {f.get('last_error') or 'disabled'}"
        elif f.get("last_success_at"):
            detail = f" · last ok {f['last_success_at']} · {f.get('items_seen', 0)} items"
        lines.append(f" {mark}{f['name']:<24} {f['health']:<12} {f['url']}{detail}")
    r = report["rules"]
    lines += ["", f"rules ({r['count']} loaded at {r['loaded_at']})"]
    lines += [f"  ERROR {e}" for e in r["errors"]]
    lines += [f"  warning {w}" for w in r["warnings"]]
    o = report["outbox"]
    lines += [
        "",
        f"outbox  pending {o['pending']} · delivered {o['delivered']} · dead letters {o['dead']}"
        f" · held (storm) {o['held_by_storm_control']} · waiting for digest {o['waiting_for_digest']}",
    ]
    lines += [f"  dead {x['alert_id']} → {x['channel']} ({x['rule']}): {x['error']}" for x in report["dead_letters"]]
    silences = report.get("silences") or []
    if silences:
        lines += ["", f"silences ({len(silences)} active)"]
        lines += [f"  {x['id']}  {x['matches']} until {x['ends_at'][:16]}  {x['comment']}".rstrip() for x in silences]
    lines += ["", "recent alerts"]
    lines += [
        f"  {a['created_at'][:19]} [{a['severity']}] {a['rule'] or a['kind']}: {a['title']} ({a['feed']})"
        for a in report["recent_alerts"]
    ] or ["  none"]
    return "\n".join(lines)
