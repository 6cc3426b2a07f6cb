"""Poll cycle against rss2email: many feeds served from 127.0.0.1 with ETag/Last-Modified.

feedwatch, with default settings in one process (the config holds only what the issue's comparison
names: rules_dir, log_level = "warning", the store path, interval, jitter = 0, max_concurrency and
per_host 64, parse_workers = 0, a console channel and the feeds):

* ``run --once`` as a whole process per cycle, like rss2email: a first cycle (every item new, no
  backfill so nothing alerts), then an all-304 cycle;
* the daemon (``python -m daemon run``): its first cycle from spawn, then all-304 cycles inside the
  running daemon at the poll interval, with its CPU per 304 poll.

Cycle completion is read from the daemon's store. Baseline: rss2email as users run it, one
``r2e run --no-send`` process per cycle, installed into a throwaway virtualenv under a cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from benchmarks.harness import (
    MB,
    REPO,
    Daemon,
    FeedServer,
    daemon_env,
    feed_attempts,
    row,
    timed_process,
    wait_for_cycle,
)
from benchmarks.newsgen import FEED_EPOCH, NewsGen, feed_items, rss_document
from daemon.rules.load import load_rules

SEED = 1492
ROUNDS = 2
CYCLES_304 = 2
ITEMS_PER_FEED = 50
RSS2EMAIL = "rss2email==3.14"
CACHE = Path(os.environ.get("FEEDWATCH_BENCH_CACHE", Path.home() / ".cache" / "feedwatch-bench"))


def serve_feeds(server: FeedServer, n_feeds: int, seed: int, *, start: int = 0) -> tuple[list[str], list[int]]:
    """Put ``n_feeds`` generated feeds of ITEMS_PER_FEED items on ``server``; their URLs and sizes."""
    gen = NewsGen(seed, load_rules(REPO / "rules").ruleset)
    urls = []
    sizes = []
    for f in range(n_feeds):
        items = feed_items(gen, f, ITEMS_PER_FEED, start=start, base=server.base)
        path = f"/feeds/{f:03d}.xml"
        doc = rss_document(f"Bench wire {f:03d}", f"{server.base}/news/{f:03d}/", items)
        server.put(path, doc, FEED_EPOCH + timedelta(days=1, minutes=f))
        urls.append(server.base + path)
        sizes.append(len(doc))
    return urls, sizes


# Default settings: the fast parse path on the daemon's one parse thread (FEEDWATCH_BENCH_PARSE_WORKERS=2
# tries worker processes instead).
PARSE_WORKERS = int(os.environ.get("FEEDWATCH_BENCH_PARSE_WORKERS", "0"))


def feedwatch_config(
    workdir: Path,
    urls: list[str],
    *,
    interval: float,
    retention: str = "90d",
    extra: str = "",
    log_level: str = "info",
) -> Path:
    """A config polling ``urls`` with no jitter and enough concurrency for one host; shipped rules."""
    shutil.copytree(REPO / "rules", workdir / "rules", dirs_exist_ok=True)
    feeds = "".join(f'\n[[feeds]]\nname = "feed{i:03d}"\nurl = "{u}"\n' for i, u in enumerate(urls))
    text = f"""[daemon]
rules_dir = "rules"
log_level = "{log_level}"

[store]
path = "var/feedwatch.db"
retention = "{retention}"

[polling]
interval = "{interval:g}s"
min_interval = "1s"
jitter = 0
max_concurrency = 64
per_host = 64
parse_workers = {PARSE_WORKERS}

[alerts]
default_channels = ["console"]
{extra}
[channels.console]
type = "console"
{feeds}"""
    path = workdir / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def log_events(log: Path) -> dict[str, int]:
    """How many of each event the daemon logged (JSON lines on stderr)."""
    counts: dict[str, int] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line).get("event", "?")
        except (ValueError, AttributeError):
            event = "(not json)"
        counts[event] = counts.get(event, 0) + 1
    return counts


# --- feedwatch -------------------------------------------------------------------------------------


def run_feedwatch(
    server: FeedServer, urls: list[str], workdir: Path, *, interval: float, cycles_304: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    config = feedwatch_config(workdir, urls, interval=interval, log_level="warning")
    db = workdir / "var" / "feedwatch.db"
    names = {f"feed{i:03d}" for i in range(len(urls))}
    server.reset_counts()
    daemon = Daemon(config, workdir / "daemon.service.log").start()
    try:
        start, done = wait_for_cycle(db, names, after=0.0, timeout=interval * 0.9, alive=daemon.alive)
        first = {
            "from_spawn_s": done - daemon.started_at,
            "in_daemon_s": done - start,
            "responses": server.reset_counts(),
            "peak_rss_mb": daemon.peak_rss() / MB,
            "cpu_seconds_incl_start": daemon.cpu_seconds(),
        }
        prev = max(feed_attempts(db).values())
        repeats = []
        for _ in range(cycles_304):
            cpu_before = daemon.cpu_seconds()
            start, done = wait_for_cycle(db, names, after=prev, timeout=interval * 2 + 30, alive=daemon.alive)
            time.sleep(0.2)  # the cycle's last store writes
            cpu = daemon.cpu_seconds() - cpu_before  # the daemon was idle until the cycle began
            repeats.append({"in_daemon_s": done - start, "responses": server.reset_counts(), "cpu_seconds": cpu,
                            "cpu_ms_per_poll": cpu / len(names) * 1000})  # fmt: skip
            prev = max(feed_attempts(db).values())
        peak = daemon.peak_rss()
        rss_after = daemon.rss()
    finally:
        code = daemon.stop()
    events = log_events(daemon.log)
    return {
        "first": first,
        "repeat_304": repeats,
        "peak_rss_mb": peak / MB,
        "rss_after_cycles_mb": rss_after / MB,
        "exit_code": code,
        "log_events": {
            k: v
            for k, v in events.items()
            if k in ("feed_polled", "poll_failed", "feed_failed", "poll_crashed", "stopped")
        },
    }


def run_once(server: FeedServer, urls: list[str], workdir: Path) -> dict[str, Any]:
    """``feedwatch run --once`` as a whole process per cycle: a first cycle, then an all-304 one."""
    workdir.mkdir(parents=True)
    config = feedwatch_config(workdir, urls, interval=300.0, log_level="warning")
    argv = [sys.executable, "-m", "daemon", "--config", str(config), "run", "--once"]
    env = daemon_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed feedwatch has its bytecode, like rss2email
    server.reset_counts()
    cycles = []
    for _ in range(2):
        result = timed_process(argv, cwd=workdir, env=env)
        result["responses"] = server.reset_counts()
        result["peak_rss_mb"] = result.pop("peak_rss") / MB
        if result["returncode"] not in (0, 3):
            raise RuntimeError(f"run --once exited {result['returncode']}: {result['stderr_tail']}")
        cycles.append(result)
    return {"first": cycles[0], "repeat_304": cycles[1]}


# --- rss2email -------------------------------------------------------------------------------------


def ensure_rss2email() -> tuple[Path | None, str]:
    """The ``r2e`` of a virtualenv under the cache directory, installing it when missing."""
    venv = CACHE / "rss2email-venv"
    r2e = venv / "bin" / "r2e"
    if not r2e.exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        try:
            res = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", RSS2EMAIL],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, f"pip install {RSS2EMAIL} timed out"
        if res.returncode != 0 or not r2e.exists():
            return None, f"pip install {RSS2EMAIL} failed: {res.stderr.strip()[-300:]}"
    version = subprocess.run([str(r2e), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return r2e, version


def run_rss2email(r2e: Path, server: FeedServer, urls: list[str], workdir: Path, *, cycles_304: int) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    base = [str(r2e), "-c", str(workdir / "r2e.cfg"), "-d", str(workdir / "r2e.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run([*base, "new", "desk@example.invalid"], check=True, capture_output=True, env=env, cwd=workdir)
    outlines = "".join(f'<outline type="rss" text="feed{i:03d}" xmlUrl={quoteattr(u)}/>\n' for i, u in enumerate(urls))
    opml = workdir / "feeds.opml"
    opml.write_text(f'<?xml version="1.0"?>\n<opml version="1.0"><body>\n{outlines}</body></opml>\n', encoding="utf-8")
    subprocess.run([*base, "opmlimport", str(opml)], check=True, capture_output=True, env=env, cwd=workdir)
    listed = subprocess.run([*base, "list"], check=True, capture_output=True, text=True, env=env, cwd=workdir).stdout
    if len(listed.splitlines()) != len(urls):
        raise RuntimeError(f"rss2email lists {len(listed.splitlines())} feeds, expected {len(urls)}")
    server.reset_counts()
    first = timed_process([*base, "run", "--no-send"], cwd=workdir, env=env)
    first["responses"] = server.reset_counts()
    repeats = []
    for _ in range(cycles_304):
        rep = timed_process([*base, "run", "--no-send"], cwd=workdir, env=env)
        rep["responses"] = server.reset_counts()
        repeats.append(rep)
    for rep in (first, *repeats):
        rep["peak_rss_mb"] = rep.pop("peak_rss") / MB
        if rep["returncode"] != 0:
            raise RuntimeError(f"r2e run exited {rep['returncode']}: {rep['stderr_tail']}")
    return {"first": first, "repeat_304": repeats}


# --- the benchmark ---------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    n_feeds = 50 if quick else 200
    # The daemon's second cycle starts one interval after its first, which must be over by then.
    interval = 10.0 if quick else 30.0
    server = FeedServer().start()
    rounds: list[dict[str, Any]] = []
    try:
        urls, sizes = serve_feeds(server, n_feeds, SEED)
        with tempfile.TemporaryDirectory(prefix="feedwatch-bench-") as tmp:
            r2e, r2e_note = ensure_rss2email()
            # Two rounds, alternating the programs, so a change in machine load touches all; first cycles
            # count the faster round of each. The daemon's all-304 cycles run in the first round.
            for rnd in range(ROUNDS):
                cycles = CYCLES_304 if rnd == 0 else 0
                base = None
                if r2e is not None:
                    base = run_rss2email(r2e, server, urls, Path(tmp) / f"rss2email-{rnd}", cycles_304=CYCLES_304)
                once = run_once(server, urls, Path(tmp) / f"once-{rnd}")
                fw = run_feedwatch(server, urls, Path(tmp) / f"daemon-{rnd}", interval=interval, cycles_304=cycles)
                rounds.append({"rss2email": base, "run_once": once, "daemon": fw})
    finally:
        server.stop()

    bases = [r["rss2email"] for r in rounds if r["rss2email"] is not None]
    onces = [r["run_once"] for r in rounds]
    daemons = [r["daemon"] for r in rounds]
    once_first = min(o["first"]["seconds"] for o in onces)
    once_first_cpu = min(o["first"]["cpu_seconds"] for o in onces)
    once_304 = min(o["repeat_304"]["seconds"] for o in onces)
    once_peak = max(max(o["first"]["peak_rss_mb"], o["repeat_304"]["peak_rss_mb"]) for o in onces)
    d_first = min(d["first"]["from_spawn_s"] for d in daemons)
    d_304 = statistics.median(r["in_daemon_s"] for r in daemons[0]["repeat_304"])
    d_cpu_poll = statistics.median(r["cpu_ms_per_poll"] for r in daemons[0]["repeat_304"])
    d_peak = max(d["peak_rss_mb"] for d in daemons)
    b_first = b_first_cpu = b_304 = b_peak = None
    if bases:
        b_first = min(b["first"]["seconds"] for b in bases)
        b_first_cpu = min(b["first"]["cpu_seconds"] for b in bases)
        b_304 = statistics.median(r["seconds"] for b in bases for r in b["repeat_304"])
        b_peak = max(r["peak_rss_mb"] for b in bases for r in (b["first"], *b["repeat_304"]))
    unavailable = "" if bases else f"baseline unavailable: {r2e_note}"

    def ratio(a: float, b: float | None) -> float | None:
        return a / b if b else None

    r2e = {"baseline_name": "rss2email", "note": unavailable}
    rows = [
        row(f"poll: first cycle, `run --once`, {n_feeds} feeds (s)", once_first, b_first, unit="s",
            ratio=ratio(once_first, b_first), op="<=", target=0.25, **r2e),
        row("poll: same, CPU seconds (s)", once_first_cpu, b_first_cpu, unit="s",
            ratio=ratio(once_first_cpu, b_first_cpu), op="<=", target=None, **r2e),
        row("poll: first cycle, daemon from spawn (s)", d_first, b_first, unit="s", ratio=ratio(d_first, b_first),
            op="<=", target=None, **r2e),
        row(f"poll: all-304 cycle, daemon, {n_feeds} feeds (s)", d_304, b_304, unit="s", ratio=ratio(d_304, b_304),
            op="<=", target=0.3, **r2e),
        row("poll: daemon CPU per 304 poll (ms)", d_cpu_poll, None, unit="ms", ratio=None, op="<=", target=None),
        row(f"poll: all-304 cycle, `run --once`, {n_feeds} feeds (s)", once_304, b_304, unit="s",
            ratio=ratio(once_304, b_304), op="<=", target=1.0, **r2e),
        row("poll: peak RSS, daemon (MB)", d_peak, b_peak, unit="MB", ratio=ratio(d_peak, b_peak), op="<=",
            target=1.5, **r2e),
        row("poll: peak RSS, `run --once` (MB)", once_peak, b_peak, unit="MB", ratio=ratio(once_peak, b_peak),
            op="<=", target=None, **r2e),
    ]  # fmt: skip
    return {
        "rows": rows,
        "details": {
            "feeds": n_feeds,
            "items_per_feed": ITEMS_PER_FEED,
            "avg_feed_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            "interval_s": interval,
            "parse_workers": PARSE_WORKERS,
            "rounds": [{k: (_rounded(v) if v is not None else unavailable) for k, v in r.items()} for r in rounds],
            "rss2email_version": r2e_note,
            "notes": (
                "`run --once` and rss2email are timed as whole processes (wall and CPU, peak RSS of the process "
                "tree); the daemon's first cycle counts from spawn, its all-304 cycles from the first fetch to "
                "the last feed handled, inside the running daemon, with the daemon's CPU over the cycle per poll. "
                "`responses` counts what the feed server answered and the TCP connections opened."
            ),
        },
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items() if k != "stderr_tail"}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
