"""Many feeds in one daemon: 5,000 feeds on a 5-minute interval (16.7 polls/s), most answering 304 and
5 % of them changing each cycle, all served from 127.0.0.1.

The store is seeded as a daemon that has run for a while leaves it: every feed known, with its validators
and items, and its next poll spread over the interval. Then the real daemon (``python -m daemon run``,
the issue's config: one process, parse_workers = 0) runs for a window of steady state — a slice of the
5-minute cycle at the real poll rate, which is how time is compressed here — while feeds change at 5 % per
interval. Measured: the daemon's average CPU over the window, poll lag (when a poll started minus when it
was due, from the store's ``next_poll_at`` before and ``last_attempt_at`` after each poll), CPU per
poll, and peak RSS beside the same daemon's with 200 feeds.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from random import Random
from typing import Any
from xml.sax.saxutils import escape

from benchmarks.harness import MB, REPO, Daemon, FeedServer, row
from daemon.intake.parse import parse_feed
from daemon.store.rows import iso
from daemon.store.sqlite import Store

SEED = 5000
ITEMS = 10
INTERVAL = 300.0  # for 5,000 feeds: 16.7 polls/s; --quick keeps the rate with 1,000 feeds every 60 s
CHANGE_PER_CYCLE = 0.05
WARMUP = 15.0  # seconds from the daemon's spawn to the window: 5,000 feeds to configure and schedule
WORDS = (
    "council", "budget", "vote", "harbour", "storm", "rail", "strike", "court", "ruling", "festival", "market",
    "bridge", "school", "water", "energy", "grid", "league", "final", "border", "talks", "summit", "drought",
)  # fmt: skip


def document(feed: int, version: int, base: str) -> bytes:
    """A small RSS feed: ITEMS items, the newest first; each version adds one item."""
    rng = Random(feed * 7919 + version)
    items = []
    for n in range(version + ITEMS - 1, version - 1, -1):
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
        items.append(
            f"<item><title>{escape(words.capitalize())}</title>"
            f"<link>{base}/news/{feed}/{n}</link><guid isPermaLink='false'>f{feed}-i{n}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate><description>{escape(words)} again.</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Fleet {feed}</title>'
        f"<link>{base}/news/{feed}/</link>{''.join(items)}</channel></rss>"
    ).encode()


class Fleet:
    """The feeds on a FeedServer, each at a version; ``bump`` publishes a new item in one of them."""

    def __init__(self, server: FeedServer, n: int) -> None:
        self.server = server
        self.n = n
        self.versions = [0] * n
        self.changes = 0
        for f in range(n):
            self._put(f)

    def _put(self, f: int) -> None:
        stamp = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.versions[f])
        self.server.put(f"/f/{f}.xml", document(f, self.versions[f], self.server.base), stamp)

    def url(self, f: int) -> str:
        return f"{self.server.base}/f/{f}.xml"

    def bump(self, f: int) -> None:
        self.versions[f] += 1
        self.changes += 1
        self._put(f)


def config_text(fleet: Fleet, interval: float) -> str:
    feeds = "".join(f'\n[[feeds]]\nname = "f{f:05d}"\nurl = "{fleet.url(f)}"\n' for f in range(fleet.n))
    return f"""[daemon]
rules_dir = "rules"
log_level = "warning"

[store]
path = "var/feedwatch.db"

[polling]
interval = "{interval:g}s"
min_interval = "1s"
jitter = 0
max_concurrency = 64
per_host = 64
parse_workers = 0

[alerts]
default_channels = ["console"]

[channels.console]
type = "console"
{feeds}"""


def seed_store(db: Path, fleet: Fleet, rng: Random, interval: float) -> None:
    """Every feed known: validators of its current document, its items stored, its next poll spread.

    The documents are parsed first; the due times are taken after, so that none of them is already
    overdue when the daemon starts (the first fall due after its start-up, inside the window).
    """
    store = Store(db)
    store.close()
    parsed = [parse_feed(fleet.server._docs[f"/f/{f}.xml"].body, feed=f"f{f:05d}", url=fleet.url(f)) for f in
              range(fleet.n)]  # fmt: skip
    now = datetime.now(UTC)
    conn = sqlite3.connect(db)
    try:
        with conn:
            for f in range(fleet.n):
                doc = fleet.server._docs[f"/f/{f}.xml"]
                due = now + timedelta(seconds=rng.uniform(WARMUP + 2.0, interval + WARMUP + 2.0))
                conn.execute(
                    "INSERT INTO feeds(name, url, etag, last_modified, first_polled_at, last_attempt_at, "
                    "last_success_at, last_status, next_poll_at, items_seen) VALUES (?, ?, ?, ?, ?, ?, ?, 200, ?, ?)",
                    (f"f{f:05d}", fleet.url(f), doc.etag, doc.last_modified, iso(now - timedelta(days=1)),
                     iso(due - timedelta(seconds=interval)), iso(due - timedelta(seconds=interval)), iso(due), ITEMS),
                )  # fmt: skip
                feed_id = conn.execute("SELECT id FROM feeds WHERE name = ?", (f"f{f:05d}",)).fetchone()[0]
                conn.executemany(
                    "INSERT INTO items(feed_id, key, content_hash, title, link, published, first_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (feed_id, i.key, i.content_hash, i.title, i.link, i.published and iso(i.published), iso(now))
                        for i in parsed[f].items
                    ],
                )
    finally:
        conn.close()


class LagWatch:
    """Reads the feeds table from outside every ``every`` s; a poll's lag is its start minus when it was due."""

    def __init__(self, db: Path, every: float = 0.5) -> None:
        self.db = db
        self.every = every
        self.lags: list[float] = []
        self.polls = 0
        self._seen: dict[int, tuple[str | None, str | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-watch", daemon=True)
        self.counting = False

    def start(self) -> LagWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            while not self._stop.is_set():
                try:
                    rows = conn.execute("SELECT id, last_attempt_at, next_poll_at FROM feeds").fetchall()
                except sqlite3.Error:
                    rows = []
                for fid, attempt, due in rows:
                    before = self._seen.get(fid)
                    self._seen[fid] = (attempt, due)
                    if before is None or attempt == before[0] or attempt is None or before[1] is None:
                        continue
                    if self.counting:
                        self.polls += 1
                        lag = (datetime.fromisoformat(attempt) - datetime.fromisoformat(before[1])).total_seconds()
                        self.lags.append(lag)
                self._stop.wait(self.every)
        finally:
            conn.close()


def one_run(n: int, window: float, workdir: Path, *, interval: float, changes: bool) -> dict[str, Any]:
    """Seed a store for ``n`` feeds, run the daemon, measure ``window`` seconds of steady state."""
    server = FeedServer().start()
    rng = Random(SEED + n)
    try:
        fleet = Fleet(server, n)
        workdir.mkdir(parents=True)
        (workdir / "rules").symlink_to(REPO / "rules", target_is_directory=True)
        config = workdir / "config.toml"
        config.write_text(config_text(fleet, interval), encoding="utf-8")
        db = workdir / "var" / "feedwatch.db"
        db.parent.mkdir()
        seed_store(db, fleet, rng, interval)
        server.reset_counts()
        daemon = Daemon(config, workdir / "daemon.log").start()
        watch = LagWatch(db).start()
        try:
            time.sleep(WARMUP)  # start-up: config, rules, store, schedule; the first polls fall due after it
            if not daemon.alive():
                raise RuntimeError(f"the daemon exited: {daemon.log_tail()}")
            server.reset_counts()
            cpu0, t0 = daemon.cpu_seconds(), time.perf_counter()
            watch.counting = True
            rate = n * CHANGE_PER_CYCLE / interval  # changes per second
            due = 0.0
            while (elapsed := time.perf_counter() - t0) < window:
                if changes:
                    while due < elapsed * rate:
                        fleet.bump(rng.randrange(n))
                        due += 1
                time.sleep(0.1)
            watch.counting = False
            cpu = daemon.cpu_seconds() - cpu0
            spent = time.perf_counter() - t0
            rss = daemon.rss()
            peak = daemon.peak_rss()
            responses = server.reset_counts()
        finally:
            watch.stop()
            daemon.stop()
    finally:
        server.stop()
    lags = sorted(watch.lags)

    def pct(p: float) -> float | None:
        return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else None

    return {
        "feeds": n,
        "window_s": round(spent, 1),
        "polls": watch.polls,
        "polls_per_s": round(watch.polls / spent, 2),
        "responses": responses,
        "changes_published": fleet.changes,
        "cpu_seconds": round(cpu, 3),
        "cpu_share": round(cpu / spent, 4),
        "cpu_ms_per_poll": round(cpu / watch.polls * 1000, 3) if watch.polls else None,
        "lag_p50_s": pct(0.50),
        "lag_p99_s": pct(0.99),
        "lag_max_s": lags[-1] if lags else None,
        "lag_mean_s": round(statistics.fmean(lags), 4) if lags else None,
        "rss_mb": round(rss / MB, 1),
        "peak_rss_mb": round(peak / MB, 1),
    }


def run(quick: bool) -> dict[str, Any]:
    n = 1000 if quick else 5000
    interval = INTERVAL * n / 5000  # the same poll rate: 16.7 polls/s
    window = 30.0 if quick else 90.0
    with tempfile.TemporaryDirectory(prefix="feedwatch-fleet-") as tmp:
        big = one_run(n, window, Path(tmp) / "big", interval=interval, changes=True)
        small = one_run(200, min(window, 45.0), Path(tmp) / "small", interval=interval, changes=True)
    cpu_pct = big["cpu_share"] * 100
    rows = [
        row(f"fleet: {n} feeds, daemon CPU (% of one core)", cpu_pct, 20.0, unit="%", ratio=cpu_pct / 20.0,
            op="<=", target=1.0, baseline_name="budget"),
        row(f"fleet: {n} feeds, poll lag p50 (s)", big["lag_p50_s"], 5.0, unit="s", ratio=None, op="<=",
            target=None, baseline_name="p99 budget"),
        row(f"fleet: {n} feeds, poll lag p99 (s)", big["lag_p99_s"], 5.0, unit="s",
            ratio=None if big["lag_p99_s"] is None else big["lag_p99_s"] / 5.0, op="<=", target=1.0,
            baseline_name="budget"),
        row(f"fleet: {n} feeds, CPU per poll (ms)", big["cpu_ms_per_poll"], None, unit="ms", ratio=None, op="<=",
            target=None),
        row(f"fleet: peak RSS, {n} feeds vs 200 (MB)", big["peak_rss_mb"], small["peak_rss_mb"], unit="MB",
            ratio=big["peak_rss_mb"] / small["peak_rss_mb"], op="<=", target=1.5, baseline_name="200 feeds"),
    ]  # fmt: skip
    return {
        "rows": rows,
        "details": {
            "interval_s": interval,
            "items_per_feed": ITEMS,
            "change_per_cycle": CHANGE_PER_CYCLE,
            "big": big,
            "small": small,
            "notes": (
                "Time is compressed by measuring a window of the 5-minute cycle at its real poll rate; the store "
                "is seeded so every feed starts with its validators, items and a next poll spread over the interval."
            ),
        },
    }
