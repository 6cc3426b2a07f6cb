"""Soak: tens of thousands of polls through a real Service; memory, descriptors, threads and tasks stay flat."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env
from tests.kit.reliability import Daemon, FeedItem, FeedServer, Setup, WebhookReceiver, place

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

FEEDS = 20
MAX_POLLS = 20_000
SECONDS = 40.0  # the soak stops at MAX_POLLS or after this long, whichever comes first
MIN_POLLS = 5_000  # a loaded CI machine gets fewer done in the time; the bounds still hold
KEEP = 30  # items per feed document: old ones drop off, as on a real feed
MAX_RSS_GROWTH = 4 * 1024 * 1024  # catches a leak of ~500 bytes per poll


class TestSoak:
    def test_many_polls_leak_nothing(self, tmp_path: Path) -> None:
        """Polling 20 feeds over and over (mostly 304s, a new matching item every few cycles, each alert
        delivered) keeps RSS within a few MiB and open descriptors, threads and tasks constant after warm-up.
        """
        feeds = FeedServer().start()
        hook = WebhookReceiver().start()
        names = [f"s{i:02d}" for i in range(FEEDS)]
        urls = {n: feeds.add_feed(n) for n in names}
        for n in names:
            for k in range(KEEP):
                feeds.add_item(
                    n, FeedItem(f"{n}-old-{k}", f"Weather in {place(k)}", f"https://news.example.org/{n}/{k}")
                )
        daemon = Daemon(tmp_path, Setup(urls, webhook_url=hook.url))  # only its config, rules and folder
        stop = threading.Event()
        published: list[str] = []

        def publish() -> None:
            # A matching item on one feed or another every 0.25 s: ingest, alert and delivery keep running.
            n = 0
            while not stop.wait(0.25):
                feed = names[n % FEEDS]
                feeds.add_item(
                    feed, FeedItem(f"new-{n}", f"Shelling near {place(5000 + n)}", f"https://news.example.org/new/{n}")
                )
                with feeds.lock:
                    del feeds.items[feed][KEEP:]
                published.append(place(5000 + n))
                n += 1

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.reliability.soak_driver",
                    str(daemon.config),
                    str(MAX_POLLS),
                    str(SECONDS),
                ],
                cwd=REPO,
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=SECONDS + 60,
                check=False,
            )
        finally:
            stop.set()
            publisher.join(5)
            feeds.stop()
            hook.stop()
        assert proc.returncode == 0, proc.stderr[-3000:]
        requests = sum(feeds.hits.values())
        samples = [json.loads(line) for line in proc.stdout.splitlines()]
        warm = next(s for s in samples if s["cycle"] >= 100)
        end = samples[-1]
        growth = end["rss"] - warm["rss"]
        print(
            f"{end['polls']} polls in {end['elapsed']} s; "
            f"RSS {warm['rss'] / 2**20:.1f} -> {end['rss'] / 2**20:.1f} MiB "
            f"(cycle {warm['cycle']} -> {end['cycle']}); fds {warm['fds']} -> {end['fds']}; "
            f"threads {warm['threads']} -> {end['threads']}; tasks {warm['tasks']} -> {end['tasks']}; "
            f"{len(hook.deliveries)} alerts delivered; {feeds.connections} connections for {requests} requests"
        )
        assert end["polls"] >= MIN_POLLS
        assert growth <= MAX_RSS_GROWTH
        assert end["fds"] <= warm["fds"] + 2
        # Parsing runs on the loop's default executor, which may add a thread or two when polls overlap,
        # up to its fixed cap (min(32, cores + 4)); anything beyond that would be a leak.
        assert end["threads"] <= warm["threads"] + 6
        assert end["tasks"] == warm["tasks"]
        # Conditional GETs reuse their connections rather than opening one per poll.
        assert feeds.connections < requests // 20
        # The soak also did real work: matching items became alerts and reached the receiver.
        assert len(hook.deliveries) >= len(published) // 2 > 10
        assert "poll_failed" not in proc.stderr
        assert "poll_crashed" not in proc.stderr
