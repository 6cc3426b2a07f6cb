"""`feedwatch status`: one report with sections daemon, feeds, rules, outbox and recent alerts.

Collected from the store opened read-only (safe while the daemon runs), rendered for people or as
one JSON document. ``health`` is what monitoring keys on (the command maps it to its exit code).
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config.model import Config, PollingConfig
from daemon.store.lock import holder_of, lock_path
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


def collect(store: Store, config: Config | None, now: datetime, *, config_error: str | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain JSON-ready values.

    ``config`` is None when the config on disk does not load (``config_error`` says why): the report
    then shows every feed the store knows, with the default thresholds.
    """
    polling = config.polling if config is not None else PollingConfig()
    daemon = store.get_meta("daemon") or {}
    stopped = store.get_meta("daemon_stopped") or {}
    heartbeat = from_iso(daemon.get("heartbeat_at"))
    interval = float(daemon.get("interval") or polling.interval)
    age = (now - heartbeat).total_seconds() if heartbeat else None
    running = age is not None and age <= HEARTBEAT_INTERVALS * interval
    stopped_at = from_iso(stopped.get("at"))
    if running and stopped_at and heartbeat and stopped_at >= heartbeat:
        running = False
    holder = holder_of(store.path)
    pid = daemon.get("pid")
    if holder is not None:
        pid = holder.pid or pid  # the lock names the daemon that runs now, whatever its heartbeat says
    elif lock_path(store.path).exists() and os.access(lock_path(store.path), os.R_OK):
        running = False  # nobody holds the lock: the daemon is gone, even if its last heartbeat is recent
    if running and pid and not _pid_alive(int(pid)):
        running = False
    daemon_section = {
        "running": running,
        "pid": pid,
        "holds_lock": holder is not None,
        "version": daemon.get("version"),
        "started_at": daemon.get("started_at"),
        "heartbeat_at": daemon.get("heartbeat_at"),
        "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        "stopped_at": stopped.get("at"),
    }

    configured = {f.name: f for f in config.feeds} if config is not None else None
    feeds = []
    for state in store.feeds():
        if configured is not None and state.name not in configured:
            continue
        failing_for = (now - state.health.failing_since).total_seconds() if state.health.failing_since else None
        if state.health.disabled:
            health = "disabled"
        elif state.health.consecutive_failures:
            health = "failing"
        elif state.health.last_success is None:
            health = "new"
        else:
            health = "ok"
        feeds.append(
            {
                "name": state.name,
                "url": state.fetch_url,
                "health": health,
                "last_attempt_at": _iso(state.health.last_attempt),
                "last_success_at": _iso(state.health.last_success),
                "last_status": state.health.last_status,
                "consecutive_failures": state.health.consecutive_failures,
                "failing_for_seconds": round(failing_for, 1) if failing_for is not None else None,
                "last_error": state.health.last_error,
                "next_poll_at": _iso(state.next_poll_at),
                "items_seen": state.items_seen,
                "past_threshold": bool(
                    state.health.disabled or (failing_for is not None and failing_for >= polling.status_fail_threshold)
                ),
            }
        )
    polled = {f["name"] for f in feeds}
    for name, feed in (configured or {}).items():
        if name not in polled:
            feeds.append({"name": name, "url": feed.url, "health": "never polled", "past_threshold": False})

    rules = store.get_meta("rules") or {}
    rules_error = store.get_meta("rules_error")
    counts = store.outbox_counts()
    dead = [
        {"alert_id": r.alert_id, "channel": r.channel, "rule": r.rule_id, "error": r.last_error}
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
        "config_error": config_error,
        "store": str(store.path),
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
    if report.get("config_error"):
        return "degraded"
    degraded = (
        any(f.get("past_threshold") for f in report["feeds"]) or report["outbox"]["dead"] or report["rules"]["errors"]
    )
    return "degraded" if degraded else "ok"


def render(report: dict[str, Any]) -> str:
    d = report["daemon"]
    lines = []
    if report.get("config_error"):
        lines += [
            f"CONFIG ERROR: {report['config_error']}",
            f"  (showing the running daemon's store {report['store']})",
            "",
        ]
    lines.append("daemon")
    if d["running"]:
        lines.append(
            f"  running  pid {d['pid']} · version {d['version']} · started {d['started_at']} · "
            f"heartbeat {d['heartbeat_age_seconds']:.0f}s ago"
        )
    elif d.get("holds_lock"):
        lines.append(
            f"  NOT RESPONDING: pid {d['pid']} holds the store but wrote no heartbeat since {d['heartbeat_at']}"
            " (stuck, or still starting)"
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


SERVER_STORE = Path("/var/lib/feedwatch/feedwatch.db")  # the unit's StateDirectory=, as `init` writes it


def running_store(config_path: Path) -> Path | None:
    """The store of the daemon that runs with ``config_path``, found through its lock file.

    For a config on disk that no longer loads: its ``[store] path`` is read leniently (the file may
    not even be TOML now), with the usual places as fallbacks; a candidate counts only when a live
    daemon holds its lock and that daemon's lock file names this very config.
    """
    config_path = config_path.absolute()
    folder = config_path.parent
    candidates = [folder / p for p in _store_paths(config_path)]
    candidates += [folder / "var" / "feedwatch.db", SERVER_STORE]
    for database in dict.fromkeys(candidates):
        holder = holder_of(database)
        if holder is not None and holder.config is not None and _same(holder.config, config_path):
            return database
    return None


def _store_paths(config_path: Path) -> list[Path]:
    try:
        text = config_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    try:
        store = tomllib.loads(text).get("store", {})
        path = store.get("path") if isinstance(store, dict) else None
        return [Path(path)] if isinstance(path, str) else []
    except tomllib.TOMLDecodeError:
        pass
    # Not TOML any more: the `path = "…"` line of the [store] section, if it survived the edit.
    section = re.search(r"(?ms)^\[store\]\s*$(.*?)(?=^\[)", text + "\n[")
    found = re.findall(r"""(?m)^\s*path\s*=\s*["']([^"'\n]+)["']""", section.group(1)) if section else []
    return [Path(p) for p in found]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b
