"""Scale of state: one poll cycle of the real daemon (every item new) with a million items already
stored, against the same cycle on an empty store; the daemon's memory in both; then retention pruning.

The stored items are written straight into a store created by ``daemon.store.Store`` (executemany),
spread over the same feeds, with keys, titles and links shaped like the ones the daemon writes.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from benchmarks.harness import MB, Daemon, FeedServer, row, wait_for_cycle
from benchmarks.newsgen import NEWS_NAMES, NEWS_WORDS
from benchmarks.poll import ITEMS_PER_FEED, feedwatch_config, log_events, serve_feeds
from daemon.store.rows import iso
from daemon.store.sqlite import Store

SEED = 2718
RETENTION_DAYS = 90
REPEATS = 2
PRUNE_BATCH = 1000  # what Store.prune deletes per call by default
_SITES = ("www.example-news.com", "wire.example.org", "daily.example.net", "example.co.uk")


def _stored_rows(n: int, feed_ids: list[int], now: datetime, rng: Random) -> Iterator[tuple[Any, ...]]:
    """Item rows as the daemon writes them, in the order it would have: first seen over the last 80 days
    (inside the retention window, so nothing is due for pruning during the cycles), oldest first. Keys
    are guids that are permalinks, urn:uuid guids, or content hashes, as feeds.item_key makes them.
    """
    titles = []
    for _ in range(5000):
        words = [rng.choice(NEWS_WORDS) for _ in range(rng.randint(6, 11))]
        words.insert(rng.randrange(len(words)), rng.choice(NEWS_NAMES))
        titles.append((" ".join(words).capitalize(), "-".join(words[:6]).lower()))
    span = 80 * 86400.0
    oldest = now.timestamp() - span
    for i in range(n):
        feed_id = feed_ids[rng.randrange(len(feed_ids))]
        title, slug = titles[rng.randrange(len(titles))]
        seen = datetime.fromtimestamp(oldest + span * i / n, UTC)
        seen_iso = seen.isoformat(timespec="microseconds")
        site = _SITES[feed_id % len(_SITES)]
        link = f"https://{site}/{seen_iso[:10].replace('-', '/')}/{slug}-{i}"
        kind = i % 10
        bits = f"{rng.getrandbits(128):032x}"
        if kind < 6:
            key = f"id:{link}"
        elif kind < 9:
            key = f"id:urn:uuid:{bits[:8]}-{bits[8:12]}-4{bits[13:16]}-{bits[16:20]}-{bits[20:]}"
        else:
            key = f"hash:{bits}"
        yield (feed_id, key, bits[::-1], title, link, seen_iso, seen_iso)


def prepare_store(db: Path, names: list[str], urls: list[str], n_items: int, now: datetime) -> dict[str, Any]:
    """A store with every feed polled before (so new matching items alert) and ``n_items`` items."""
    store = Store(db)
    try:
        with store.transaction() as conn:
            for name, url in zip(names, urls, strict=True):
                conn.execute(
                    "INSERT INTO feeds(name, url, first_polled_at, last_success_at, items_seen) VALUES (?, ?, ?, ?, ?)",
                    (name, url, iso(now - timedelta(days=80)), iso(now - timedelta(hours=1)), n_items // len(names)),
                )
        feed_ids = [r[0] for r in store.conn.execute("SELECT id FROM feeds ORDER BY id")]
    finally:
        store.close()
    # The bulk load is set-up, not what is measured: a big page cache and no fsync make it quick.
    started = time.perf_counter()
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        with conn:
            conn.executemany(
                "INSERT INTO items(feed_id, key, content_hash, title, link, published, first_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                _stored_rows(n_items, feed_ids, now, Random(SEED)),
            )
            # Old items have left their feeds: last seen when first seen (retention prunes by last sight).
            conn.execute("UPDATE items SET last_seen_at = first_seen")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return {"items": count, "insert_seconds": round(seconds, 1), "db_mb": round(db.stat().st_size / MB, 1)}


def one_cycle(server: FeedServer, urls: list[str], workdir: Path, template: Path) -> dict[str, Any]:
    """Start the daemon on a fresh copy of ``template``; time its first cycle; stop it."""
    workdir.mkdir(parents=True)
    config = feedwatch_config(workdir, urls, interval=3600.0, retention=f"{RETENTION_DAYS}d")
    db = workdir / "var" / "feedwatch.db"
    db.parent.mkdir()
    shutil.copyfile(template, db)
    stored = _count(db)
    names = {f"feed{i:03d}" for i in range(len(urls))}
    server.reset_counts()
    daemon = Daemon(config, workdir / "daemon.service.log").start()
    try:
        start, done = wait_for_cycle(db, names, after=0.0, timeout=600, alive=daemon.alive)
        peak = daemon.peak_rss()
        rss = daemon.rss()
        cpu = daemon.cpu_seconds()
    finally:
        daemon.stop()
    conn = sqlite3.connect(db)
    try:
        alerts = int(conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
    finally:
        conn.close()
    after = _count(db)
    events = log_events(daemon.log)
    result = {
        "cycle_in_daemon_s": done - start,
        "cycle_from_spawn_s": done - daemon.started_at,
        "cpu_seconds_incl_start": cpu,
        "new_items": after - stored,
        "alerts": alerts,
        "responses": server.reset_counts(),
        "peak_rss_mb": peak / MB,
        "rss_after_cycle_mb": rss / MB,
        "log_events": {k: v for k, v in events.items() if k in ("feed_polled", "poll_failed", "poll_crashed")},
    }
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    finally:
        conn.close()


def prune(db: Path, *, budget: float) -> dict[str, Any]:
    """``Store.prune`` in batches, as a retention job would call it, with the clock moved 100 days on
    (so every stored item is past the 90-day retention); stops when done or when ``budget`` is spent.
    """
    store = Store(db)
    try:
        # As after the feeds' next polls: each feed's latest document is known (and holds none of these).
        with store.transaction():
            store.conn.execute("UPDATE feeds SET last_content_at = ?", (datetime.now(UTC).isoformat(),))
        before = store.count_items()
        cutoff = datetime.now(UTC) + timedelta(days=100) - timedelta(days=RETENTION_DAYS)
        batches: list[tuple[int, float]] = []
        started = time.perf_counter()
        while time.perf_counter() - started < budget:
            t = time.perf_counter()
            deleted = store.prune(cutoff, PRUNE_BATCH)
            batches.append((deleted, time.perf_counter() - t))
            if deleted == 0:
                break
        spent = time.perf_counter() - started
        after = store.count_items()
        freelist = int(store.conn.execute("PRAGMA freelist_count").fetchone()[0])
        page = int(store.conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        store.close()
    full = [s for d, s in batches if d == PRUNE_BATCH]
    removed = before - after
    return {
        "items_before": before,
        "items_after": after,
        "pruned": removed,
        "batches": len(batches),
        "items_per_batch_first": [d for d, _ in batches[:5]],
        "batch_ms_median": round(statistics.median(full) * 1000, 1) if full else None,
        "batch_ms_max": round(max(full) * 1000, 1) if full else None,
        "seconds": round(spent, 1),
        "items_per_s": round(removed / spent) if spent else None,
        "finished": after == 0 or (batches and batches[-1][0] == 0),
        "db_mb_after": round(db.stat().st_size / MB, 1),
        "free_pages_mb": round(freelist * page / MB, 1),
    }


def run(quick: bool) -> dict[str, Any]:
    n_stored = 100_000 if quick else 1_000_000
    n_feeds = 50 if quick else 200
    server = FeedServer().start()
    try:
        # Item numbers far past anything stored: every served item is new to both stores.
        urls, _ = serve_feeds(server, n_feeds, SEED, start=100_000)
        names = [f"feed{i:03d}" for i in range(n_feeds)]
        with tempfile.TemporaryDirectory(prefix="feedwatch-bench-") as tmp:
            root = Path(tmp)
            now = datetime.now(UTC)
            empty_db, full_db = root / "empty.db", root / "full.db"
            empty_prep = prepare_store(empty_db, names, urls, 0, now)
            full_prep = prepare_store(full_db, names, urls, n_stored, now)
            # Alternate the two cases so a change in machine load touches both; the faster run of each counts.
            empty_runs, full_runs = [], []
            for rep in range(REPEATS):
                empty_runs.append(one_cycle(server, urls, root / f"empty-{rep}", empty_db))
                full_runs.append(one_cycle(server, urls, root / f"full-{rep}", full_db))
            pruned = prune(full_db, budget=30.0)
    finally:
        server.stop()

    empty = min(empty_runs, key=lambda r: r["cycle_in_daemon_s"])
    full = min(full_runs, key=lambda r: r["cycle_in_daemon_s"])
    empty_cpu = min(r["cpu_seconds_incl_start"] for r in empty_runs)
    full_cpu = min(r["cpu_seconds_incl_start"] for r in full_runs)
    empty_peak = max(r["peak_rss_mb"] for r in empty_runs)
    full_peak = max(r["peak_rss_mb"] for r in full_runs)
    expected_new = n_feeds * ITEMS_PER_FEED
    counts = [r["new_items"] for r in (*empty_runs, *full_runs)]
    note = f"new items per run {counts}, expected {expected_new}" if any(c != expected_new for c in counts) else ""
    label = f"{n_stored // 1000}k" if n_stored < 1_000_000 else f"{n_stored // 1_000_000}M"
    rows = [
        row(f"scale: cycle of {n_feeds} feeds, {label} items stored (s)", full["cycle_in_daemon_s"],
            empty["cycle_in_daemon_s"], unit="s", ratio=full["cycle_in_daemon_s"] / empty["cycle_in_daemon_s"],
            op="<=", target=1.5, baseline_name="empty store", note=note),
        row("scale: same, daemon CPU seconds incl. start (s)", full_cpu, empty_cpu, unit="s",
            ratio=full_cpu / empty_cpu, op="<=", target=None, baseline_name="empty store"),
        row(f"scale: daemon peak RSS, {label} items stored (MB)", full_peak, empty_peak,
            unit="MB", ratio=full_peak / empty_peak, op="<=", target=1.1, baseline_name="empty store"),
    ]  # fmt: skip
    if pruned["pruned"] and pruned["seconds"]:
        rows.append(
            row("retention: Store.prune (items/s)", pruned["items_per_s"], None, unit="items/s", ratio=None, op=">=",
                target=None, note=f"{pruned['pruned']:,} of {pruned['items_before']:,} pruned in {pruned['seconds']} s")
        )  # fmt: skip
    return {
        "rows": rows,
        "details": {
            "stored_items": n_stored,
            "feeds": n_feeds,
            "store_before": {"empty": empty_prep, "full": full_prep},
            "empty_store_runs": empty_runs,
            "full_store_runs": full_runs,
            "retention": pruned,
            "retention_note": (
                "the daemon prunes hourly with Store.prune; measured here by calling it directly "
                f"in batches of {PRUNE_BATCH} with a cutoff as if 100 days had passed"
            ),
        },
    }
