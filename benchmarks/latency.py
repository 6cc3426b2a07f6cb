"""Alert latency: an item appears in a feed on 127.0.0.1 → the alert arrives at a local SMTP sink
(aiosmtpd) AND a local webhook receiver. The daemon polls the feed every 2 s; the baseline is that
interval, so the ratio is latency / interval.

Items are added one at a time, each after a random pause, so they land at every phase of the poll cycle.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

from aiosmtpd.controller import Controller

from benchmarks.harness import LOOPBACK, MB, Daemon, FeedServer, WebhookSink, feed_attempts, free_port, row
from benchmarks.newsgen import FeedItem, NewsGen, made_up_name, rss_document
from benchmarks.poll import feedwatch_config, log_events
from daemon.rules.ruleset import RuleSet

SEED = 1988
INTERVAL = 2.0
WAIT_EACH = 20.0  # longest wait for one alert before the sample counts as lost
_SEQ = re.compile(r"Dispatch (\d+):")


class _Arrivals:
    """Arrival times per item number and channel, filled from the receivers' threads."""

    def __init__(self) -> None:
        self.times: dict[int, dict[str, float]] = {}
        self.unexpected = 0
        self._cond = threading.Condition()

    def record(self, channel: str, text: str, at: float) -> None:
        m = _SEQ.search(text)
        with self._cond:
            if m is None:
                self.unexpected += 1
            else:
                self.times.setdefault(int(m.group(1)), {}).setdefault(channel, at)
            self._cond.notify_all()

    def wait_both(self, seq: int, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.times.get(seq, {})) < 2:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return dict(self.times.get(seq, {}))


class _SmtpSink:
    def __init__(self, arrivals: _Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.arrivals.record("email", str(msg["Subject"]), at)
        return "250 OK"


def _percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _ingest_times(log: Path) -> list[float]:
    """Epoch times of the daemon's feed_polled events that stored a new item, in order."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "feed_polled" and event.get("new"):
            out.append(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp())
    return sorted(out)


def run(quick: bool) -> dict[str, Any]:
    samples = 10 if quick else 50
    rng = Random(SEED)
    gen = NewsGen(SEED, RuleSet(), relevant=0.0, partial=0.0)
    arrivals = _Arrivals()
    server = FeedServer().start()
    hook = WebhookSink(lambda at, body: arrivals.record("webhook", str(body.get("alert", {}).get("title")), at))
    hook.start()
    smtp = Controller(_SmtpSink(arrivals), hostname=LOOPBACK, port=free_port())
    smtp.start()
    items: list[FeedItem] = []

    def publish() -> None:
        doc = rss_document("Bench wire", f"{server.base}/news/", list(reversed(items[-20:])))
        server.put("/latency.xml", doc, datetime.now(UTC))

    for n in range(5):  # what the feed already holds: recorded silently at the first poll
        title, summary, _ = gen.text()
        items.append(FeedItem(f"urn:bench:old:{n}", title, f"{server.base}/news/old/{n}", summary, datetime.now(UTC)))
    publish()
    extra = f"""storm_limit = 1000

[channels.mail]
type = "email"
host = "{LOOPBACK}"
port = {smtp.port}
security = "none"
helo_name = "localhost"
from = "feedwatch@example.invalid"
to = "desk@example.invalid"

[channels.hook]
type = "webhook"
url = "{hook.url}"
"""
    latencies: list[dict[str, float]] = []
    lost = 0
    with tempfile.TemporaryDirectory(prefix="feedwatch-bench-") as tmp:
        workdir = Path(tmp)
        config = feedwatch_config(workdir, [server.base + "/latency.xml"], interval=INTERVAL, extra=extra)
        text = config.read_text(encoding="utf-8")
        text = text.replace('default_channels = ["console"]', 'default_channels = ["mail", "hook"]')
        text = text.replace(
            'url = "' + server.base + '/latency.xml"\n', 'url = "' + server.base + '/latency.xml"\ninterval = "2s"\n'
        )
        config.write_text(text, encoding="utf-8")
        daemon = Daemon(config, workdir / "daemon.service.log").start()
        try:
            db = workdir / "var" / "feedwatch.db"
            deadline = time.time() + 30
            while not feed_attempts(db) and time.time() < deadline and daemon.alive():
                time.sleep(0.05)
            if not feed_attempts(db):
                raise RuntimeError(f"the daemon never polled the feed: {daemon.log_tail()}")
            for seq in range(samples):
                time.sleep(rng.uniform(0, INTERVAL))  # land anywhere in the poll cycle
                village = made_up_name(rng)
                title = f"Dispatch {seq}: shelling hits Martuni near {village}, killing two"
                summary = f"Artillery fire struck {village} overnight, officials in Stepanakert said."
                link = f"{server.base}/news/latency/{seq}"
                items.append(FeedItem(f"urn:bench:latency:{seq}", title, link, summary, datetime.now(UTC)))
                publish()
                published = time.time()
                got = arrivals.wait_both(seq, WAIT_EACH)
                if len(got) < 2:
                    lost += 1
                    continue
                latencies.append({**{ch: at - published for ch, at in got.items()}, "published_at": published})
            peak = daemon.peak_rss()
        finally:
            daemon.stop()
            smtp.stop()
            hook.stop()
            server.stop()
        events = log_events(daemon.log)
        ingested = _ingest_times(daemon.log)

    both = sorted(max(s["email"], s["webhook"]) for s in latencies)
    if not both:
        raise RuntimeError(f"no alert arrived on both channels ({lost} lost)")
    p50, p95, worst = _percentile(both, 50), _percentile(both, 95), both[-1]
    # How much of each latency came after the poll that found the item had stored it (delivery), and so
    # how much was the wait for that poll: the ingest is logged as feed_polled with new=1.
    after_ingest = []
    for s in latencies:
        arrived = s["published_at"] + max(s["email"], s["webhook"])
        before = [t for t in ingested if t <= arrived]
        if before:
            after_ingest.append(arrived - before[-1])
    email_p95 = _percentile(sorted(s["email"] for s in latencies), 95)
    hook_p95 = _percentile(sorted(s["webhook"] for s in latencies), 95)
    target = (INTERVAL + 1.0) / INTERVAL
    note = f"{lost} of {samples} alerts lost" if lost else ""
    return {
        "rows": [
            row(
                "latency: p50, item → email AND webhook (s)",
                p50,
                INTERVAL,
                unit="s",
                ratio=p50 / INTERVAL,
                op="<=",
                target=None,
                baseline_name="poll interval",
            ),
            row(
                "latency: p95, item → email AND webhook (s)",
                p95,
                INTERVAL,
                unit="s",
                ratio=p95 / INTERVAL,
                op="<=",
                target=target,
                baseline_name="poll interval",
                note=note,
            ),
            row(
                "latency: max, item → email AND webhook (s)",
                worst,
                INTERVAL,
                unit="s",
                ratio=worst / INTERVAL,
                op="<=",
                target=None,
                baseline_name="poll interval",
            ),
        ],
        "details": {
            "samples": samples,
            "received_on_both": len(latencies),
            "lost": lost,
            "unexpected_messages": arrivals.unexpected,
            "interval_s": INTERVAL,
            "p50_s": round(p50, 3),
            "p95_s": round(p95, 3),
            "max_s": round(worst, 3),
            "min_s": round(both[0], 3),
            "email_p95_s": round(email_p95, 3),
            "webhook_p95_s": round(hook_p95, 3),
            "delivery_after_ingest_p50_s": round(statistics.median(after_ingest), 3) if after_ingest else None,
            "delivery_after_ingest_max_s": round(max(after_ingest), 3) if after_ingest else None,
            "daemon_peak_rss_mb": round(peak / MB, 1),
            "log_events": {k: v for k, v in events.items() if k in ("feed_polled", "delivered", "delivery_failed")},
        },
    }
