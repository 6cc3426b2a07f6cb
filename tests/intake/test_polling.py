"""Polling done right, end to end: real HTTP on 127.0.0.1, the real Service and Poller, a real SQLite file."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs
from werkzeug import Request, Response

from daemon.cli.exitcodes import ExitCode
from daemon.config.load import load_config
from daemon.service import status
from daemon.service.scheduling import first_poll_at, start_spread
from daemon.store.sqlite import Store
from tests.conftest import CLI, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.polling import (
    PROXY_VARS,
    T0,
    Clock,
    Daemon,
    counting_server,
    entry,
    feed_toml,
    rss,
    trickling_server,
    write_config,
)

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


class TestConditionalGet:
    async def test_unchanged_feed_is_a_304_and_adds_nothing(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """The second poll of an unchanged feed sends its ETag, gets 304 and stores and alerts nothing."""
        server = FeedServer(httpserver, body=rss(entry("a", "Shelling near Alpha"), entry("b", "Quiet in Bravo")))
        config = write_config(tmp_path, feed_toml("news", server.url, backfill="all"))
        async with Daemon(config) as d:
            first = await d.poll("news")
            items, alerts = await d.count_items(), len(await d.alerts())
            second = await d.poll("news")
            assert (first.health.last_status, second.health.last_status) == (200, 304)
            assert (items, alerts) == (2, 1)
            assert await d.count_items() == items
            assert len(await d.alerts()) == alerts
        assert server.requests[1].headers.get("If-None-Match") == server.etag

    async def test_etag_refreshed_by_a_304_is_kept(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A 304 carrying a new ETag replaces the stored one, so the next request sends the new one."""
        seen: list[str | None] = []

        def handler(request: Request) -> Response:
            seen.append(request.headers.get("If-None-Match"))
            if request.headers.get("If-None-Match"):
                return Response(status=304, headers={"ETag": f'"v{len(seen)}"'})
            return Response(rss(entry("a", "Quiet")), headers={"ETag": '"v1"'})

        httpserver.expect_request("/feed").respond_with_handler(handler)
        config = write_config(tmp_path, feed_toml("news", httpserver.url_for("/feed")))
        async with Daemon(config) as d:
            await d.poll("news")
            state = await d.poll("news")
            assert state.etag == '"v2"'
            await d.poll("news")
        assert seen == [None, '"v1"', '"v2"']


class TestValidatorsWithItems:
    async def test_validators_are_not_saved_when_items_are_not(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """When the store cannot take a poll's items, the old ETag stays, so the next poll downloads them again."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet in Alpha")))
        normal = write_config(tmp_path, feed_toml("news", server.url))
        full = write_config(tmp_path, feed_toml("news", server.url), store={"max_size": "4KiB"}, name="full.toml")
        clock = Clock()
        async with Daemon(normal, clock) as d:
            old_etag = (await d.poll("news")).etag
        assert old_etag == server.etag

        big = [entry(f"g{i}", f"Shelling report {i} " + "x" * 900) for i in range(300)]
        server.body = rss(entry("a", "Quiet in Alpha"), *big)
        clock.advance(600)
        with capture_logs() as logs:
            async with Daemon(full, clock) as d:  # the database may not grow: the poll's transaction fails
                state = await d.poll("news")
                assert state.etag == old_etag
                assert await d.count_items() == 1
                assert await d.alerts() == []
        failures = [e for e in logs if e["event"] == "poll_failed"]
        assert failures
        assert "full" in failures[0]["error"]

        clock.advance(600)
        async with Daemon(normal, clock) as d:
            state = await d.poll("news")
            assert state.health.last_status == 200
            assert state.etag == server.etag
            assert await d.count_items() == 301
        assert server.requests[-1].headers.get("If-None-Match") == old_etag


class TestGoneAndMoved:
    async def test_410_disables_the_feed(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """410 disables the feed with a clear status, one "gone" alert, and no further requests."""
        httpserver.expect_request("/feed").respond_with_data("removed", status=410)
        config = write_config(tmp_path, feed_toml("news", httpserver.url_for("/feed")))
        async with Daemon(config) as d:
            state = await d.poll("news")
            assert state.health.disabled
            assert state.health.last_status == 410
            assert "410 Gone" in (state.health.last_error or "")
            assert state.next_poll_at is None
            await d.poll("news")
            assert await d.ops() == ["gone"]
        assert len(httpserver.log) == 1
        store = Store(tmp_path / "fw.db", readonly=True)
        try:
            report = status.collect(store, load_config(config, secrets=False), T0)
        finally:
            store.close()
        (feed,) = report["feeds"]
        assert feed["health"] == "disabled"
        assert feed["past_threshold"]
        assert "publisher removed this feed" in feed["last_error"]

    async def test_301_updates_the_stored_url_and_logs_it(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A permanent redirect becomes the feed's current URL (logged once); later polls go there directly."""
        server = FeedServer(httpserver, "/new", rss(entry("a", "Quiet")))
        httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": server.url})
        old = httpserver.url_for("/old")
        config = write_config(tmp_path, feed_toml("news", old))
        with capture_logs() as logs:
            async with Daemon(config) as d:
                state = await d.poll("news")
                assert (state.url, state.current_url) == (old, server.url)
                assert (await d.poll("news")).health.last_status == 304
        moved = [e for e in logs if e["event"] == "feed_moved"]
        assert [(e["old"], e["new"]) for e in moved] == [(old, server.url)]
        assert [req.path for req, _ in httpserver.log] == ["/old", "/new", "/new"]

    async def test_302_keeps_the_configured_url(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A temporary redirect is followed but not stored: the next poll asks the configured URL again."""
        server = FeedServer(httpserver, "/new", rss(entry("a", "Quiet")))
        httpserver.expect_request("/old").respond_with_data("", status=302, headers={"Location": server.url})
        config = write_config(tmp_path, feed_toml("news", httpserver.url_for("/old")))
        async with Daemon(config) as d:
            assert (await d.poll("news")).current_url is None
            await d.poll("news")
        assert [req.path for req, _ in httpserver.log] == ["/old", "/new", "/old", "/new"]


class TestBackoff:
    @pytest.mark.parametrize("code", [429, 503])
    async def test_retry_after_pushes_the_next_poll(self, httpserver: HTTPServer, tmp_path: Path, code: int) -> None:
        """429/503 with Retry-After: the next poll is at least that far away, whatever the backoff says."""
        server = FeedServer(httpserver)
        server.status, server.headers = code, {"Retry-After": "7200"}
        config = write_config(tmp_path, feed_toml("news", server.url), polling={"jitter": 0.1})
        async with Daemon(config) as d:
            state = await d.poll("news")
            assert d.delay(state) >= 7200
            assert "retry after 7200 s" in (state.health.last_error or "")

    async def test_a_short_retry_after_never_shortens_the_backoff(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """Retry-After only lengthens: "5" after a failure still waits the backoff (60 s here)."""
        server = FeedServer(httpserver)
        server.status, server.headers = 503, {"Retry-After": "5"}
        config = write_config(tmp_path, feed_toml("news", server.url))
        async with Daemon(config) as d:
            assert d.delay(await d.poll("news")) == 60

    async def test_failures_back_off_exponentially_and_are_never_given_up(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """500s double the wait from 60 s up to max_backoff, and after 25 failures the feed is still polled."""
        server = FeedServer(httpserver)
        server.status = 500
        config = write_config(tmp_path, feed_toml("news", server.url), polling={"max_backoff": "30m"})
        delays = []
        async with Daemon(config) as d:
            for _ in range(25):
                state = await d.poll("news")
                delays.append(d.delay(state))
                d.clock.advance(delays[-1])
        assert delays[:7] == [60, 120, 240, 480, 960, 1800, 1800]
        assert set(delays[6:]) == {1800}
        assert state.health.consecutive_failures == 25
        assert not state.health.disabled
        assert state.next_poll_at is not None
        assert len(server.requests) == 25

    async def test_publisher_hints_only_lengthen_the_interval(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """max-age and <ttl> longer than the interval are honoured; shorter ones do not speed polling up."""
        long_cache = FeedServer(httpserver, "/cached", rss(entry("a", "Quiet")))
        long_cache.headers = {"Cache-Control": "max-age=7200"}
        short_cache = FeedServer(httpserver, "/short", rss(entry("a", "Quiet")))
        short_cache.headers = {"Cache-Control": "max-age=30"}
        ttl = FeedServer(httpserver, "/ttl", rss(entry("a", "Quiet"), ttl=180))
        feeds = feed_toml("cached", long_cache.url) + feed_toml("short", short_cache.url) + feed_toml("ttl", ttl.url)
        async with Daemon(write_config(tmp_path, feeds)) as d:
            assert d.delay(await d.poll("cached")) == 7200
            assert d.delay(await d.poll("short")) == 600
            assert d.delay(await d.poll("ttl")) == 180 * 60

    async def test_restart_keeps_backoff_and_retry_after(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """After a restart a throttled feed waits out its Retry-After; a healthy one waits at most an interval."""
        throttled = FeedServer(httpserver, "/throttled")
        throttled.status, throttled.headers = 429, {"Retry-After": "7200"}
        healthy = FeedServer(httpserver, "/healthy", rss(entry("a", "Quiet")))
        feeds = feed_toml("throttled", throttled.url) + feed_toml("healthy", healthy.url, interval="1h")
        async with Daemon(write_config(tmp_path, feeds)) as d:
            hot, ok = await d.poll("throttled"), await d.poll("healthy")
            now = d.clock.now
            shorter = d.feed("healthy")
        assert hot.next_poll_at is not None
        assert first_poll_at(d.feed("throttled"), hot, now=now, interval=600, spread=3) == hot.next_poll_at
        # The interval was shortened in the config since: the healthy feed does not wait out the old one.
        assert first_poll_at(shorter, ok, now=now, interval=600, spread=3) == now + timedelta(seconds=600)
        assert first_poll_at(shorter, None, now=now, interval=600, spread=3) == now + timedelta(seconds=3)


class TestStartSpread:
    @pytest.mark.parametrize(
        ("feeds", "interval", "jitter", "spread"),
        [(1, 300, 0.1, 0.1), (20, 300, 0.1, 2.0), (200, 300, 0.1, 20.0), (5000, 300, 0.1, 30.0), (200, 60, 0.1, 6.0),
         (200, 300, 0.0, 0.0)],
    )  # fmt: skip
    def test_first_polls_are_spread_by_the_number_of_feeds(
        self, feeds: int, interval: float, jitter: float, spread: float
    ) -> None:
        """After a start one feed is polled at once, many are spread at ten a second, never over 30 s nor
        over the jitter's share of the interval."""
        assert start_spread(feeds, interval, jitter) == pytest.approx(spread)


class TestConcurrency:
    @pytest.mark.parametrize("per_host", [1, 3])
    async def test_per_host_limit_is_the_configured_one(self, tmp_path: Path, per_host: int) -> None:
        """Feeds on one host are fetched at most ``per_host`` at a time, and that many really run at once."""
        with counting_server(delay=0.3) as server:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            feeds = "".join(feed_toml(f"f{i}", f"{base}/f{i}") for i in range(5))
            async with Daemon(write_config(tmp_path, feeds, polling={"per_host": per_host})) as d:
                await asyncio.gather(*(d.service.poll(d.feed(f"f{i}")) for i in range(5)))
                assert [(await d.state(f"f{i}")).health.last_status for i in range(5)] == [200] * 5
        assert server.peak == per_host


class TestOpsAlerts:
    async def test_one_failing_alert_per_episode_and_one_recovered(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """Five failures with fail_alert_after = 3 raise exactly one "failing"; the next success one "recovered"."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet")))
        server.status = 500
        config = write_config(tmp_path, feed_toml("news", server.url), polling={"fail_alert_after": 3})
        async with Daemon(config) as d:
            kinds = []
            for _ in range(5):
                state = await d.poll("news")
                kinds.append(await d.ops())
                d.clock.advance(d.delay(state))
            assert kinds == [[], [], ["failing"], ["failing"], ["failing"]]
            server.status = 200
            await d.poll("news")
            await d.poll("news")
            assert await d.ops() == ["failing", "recovered"]
            (failing, recovered) = await d.alerts("ops")
        assert "failing for 3 polls" in failing.title
        assert "HTTP 500" in failing.title
        assert "recovered after 5 failed polls" in recovered.title

    async def test_stale_feed_alerts_once_per_episode(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """No new item for longer than expect_update: one "stale" alert, and another only after items came back."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet")))
        config = write_config(tmp_path, feed_toml("news", server.url, expect_update="1h"))
        async with Daemon(config) as d:
            await d.poll("news")
            d.clock.advance(1800)
            await d.poll("news")
            assert await d.ops() == []
            d.clock.advance(3600)
            await d.poll("news")
            d.clock.advance(3600)
            await d.poll("news")
            assert await d.ops() == ["stale"]
            server.body = rss(entry("a", "Quiet"), entry("b", "Also quiet"))
            await d.poll("news")
            d.clock.advance(7200)
            await d.poll("news")
            assert await d.ops() == ["stale", "stale"]


class TestBackfill:
    async def test_first_poll_records_the_backlog_silently(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """Without backfill the first poll stores the backlog and alerts nothing; later new items alert."""
        backlog = [entry(f"old{i}", f"Shelling near {name}") for i, name in enumerate(["Alpha", "Bravo", "Charlie"])]
        server = FeedServer(httpserver, body=rss(*backlog))
        config = write_config(tmp_path, feed_toml("news", server.url))
        async with Daemon(config) as d:
            await d.poll("news")
            assert await d.count_items() == 3
            assert await d.alerts() == []
            server.body = rss(entry("new", "Drone strike in Delta"), *backlog)
            await d.poll("news")
            assert await d.alerted_titles() == ["Drone strike in Delta"]

    async def test_changed_url_records_the_new_backlog_silently(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """Pointing a feed at another URL is a new source: its backlog is recorded, not alerted."""
        first = FeedServer(httpserver, "/a", rss(entry("a1", "Shelling near Alpha")))
        second = FeedServer(httpserver, "/b", rss(entry("b1", "Shelling near Bravo"), entry("b2", "Drones in Echo")))
        async with Daemon(write_config(tmp_path, feed_toml("news", first.url))) as d:
            await d.poll("news")
        clock = d.clock
        async with Daemon(write_config(tmp_path, feed_toml("news", second.url)), clock) as d:
            state = await d.poll("news")
            assert (state.url, state.health.last_status) == (second.url, 200)
            assert await d.alerts() == []
            second.body = rss(entry("b3", "Artillery fire in Foxtrot"), entry("b1", "Shelling near Bravo"))
            await d.poll("news")
            assert await d.alerted_titles() == ["Artillery fire in Foxtrot"]

    @pytest.mark.parametrize(
        ("backfill", "expected"),
        [
            ("24h", ["Shelling near Alpha", "Shelling near Bravo"]),
            ("all", ["Shelling near Alpha", "Shelling near Bravo", "Shelling near Charlie", "Shelling near Delta"]),
        ],
    )
    async def test_backfill_window(
        self, httpserver: HTTPServer, tmp_path: Path, backfill: str, expected: list[str]
    ) -> None:
        """backfill = "24h" alerts only items published within 24 h (undated ones not); "all" alerts every one."""
        server = FeedServer(
            httpserver,
            body=rss(
                entry("a", "Shelling near Alpha", published=T0 - timedelta(hours=1)),
                entry("b", "Shelling near Bravo", published=T0 - timedelta(hours=23)),
                entry("c", "Shelling near Charlie", published=T0 - timedelta(hours=25)),
                entry("d", "Shelling near Delta"),
            ),
        )
        config = write_config(tmp_path, feed_toml("news", server.url, backfill=backfill))
        async with Daemon(config) as d:
            await d.poll("news")
            assert sorted(await d.alerted_titles()) == expected


class TestEdits:
    LINK = "https://news.example.org/alpha"

    async def edited(self, httpserver: HTTPServer, tmp_path: Path, before: str, after: str) -> list[tuple[str, str]]:
        """(kind, severity) of the alerts after an item is polled with ``before`` and then ``after`` as title."""
        server = FeedServer(httpserver, body=rss(entry("a", before, link=self.LINK)))
        config = write_config(tmp_path, feed_toml("news", server.url, backfill="all"))
        async with Daemon(config) as d:
            await d.poll("news")
            server.body = rss(entry("a", after, "Edited by the desk", link=self.LINK))
            await d.poll("news")
            assert await d.count_items() == 1
            return [(str(a.kind), str(a.severity)) for a in await d.alerts()]

    async def test_edit_without_a_new_match_is_quiet(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A reworded item whose match did not change is re-scored but not re-alerted."""
        got = await self.edited(httpserver, tmp_path, "Shelling near Alpha", "Shelling reported near Alpha")
        assert got == [("new", "info")]

    async def test_edit_that_now_matches_alerts(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """An item that did not match and now does alerts once."""
        got = await self.edited(httpserver, tmp_path, "Quiet day in Alpha", "Shelling near Alpha")
        assert got == [("new", "info")]

    async def test_edit_with_rising_severity_alerts_an_update(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """An edit that raises the severity alerts again, as an update of the same story."""
        got = await self.edited(
            httpserver, tmp_path, "Shelling near Alpha", "Shelling and artillery near Alpha, drones overhead"
        )
        assert got == [("new", "info"), ("update", "critical")]

    async def test_edit_with_falling_severity_is_quiet(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """An edit that lowers the severity does not alert."""
        got = await self.edited(
            httpserver, tmp_path, "Shelling and artillery near Alpha, drones overhead", "Shelling near Alpha"
        )
        assert got == [("new", "critical")]


class TestAutoInterval:
    async def test_interval_follows_publication_gaps(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """interval = "auto" polls at half the median gap between publications, also after a 304."""
        items = [entry(f"g{i}", f"Item {i}", published=T0 - timedelta(hours=2 * i)) for i in range(6)]
        server = FeedServer(httpserver, body=rss(*items))
        config = write_config(tmp_path, feed_toml("news", server.url, interval="auto"))
        async with Daemon(config) as d:
            first = await d.poll("news")
            second = await d.poll("news")
            assert (first.health.last_status, second.health.last_status) == (200, 304)
            assert d.delay(first) == 3600
            assert d.delay(second) == 3600

    async def test_busy_feed_is_floored_at_min_interval(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """A feed publishing every few seconds is still polled no more often than min_interval."""
        items = [entry(f"g{i}", f"Item {i}", published=T0 - timedelta(seconds=5 * i)) for i in range(6)]
        server = FeedServer(httpserver, body=rss(*items))
        config = write_config(tmp_path, feed_toml("news", server.url, interval="auto"))
        async with Daemon(config) as d:
            assert d.delay(await d.poll("news")) == 60


BROKEN = {
    # name: (path, what `status` must say about it)
    "b-404": ("/b/404", "HTTP 404"),
    "b-500": ("/b/500", "HTTP 500"),
    "b-410": ("/b/410", "HTTP 410 Gone"),
    "b-429": ("/b/429", "retry after 120 s"),
    "b-html": ("/b/html", "HTML page"),
    "b-empty": ("/b/empty", "empty response body"),
    "b-bomb": ("/b/bomb", "exceeds 10 MiB cap"),
    "b-loop": ("/b/loop-a", "redirect loop"),
    "b-notxml": ("/b/notxml", "not a feed"),
    "b-trickle": ("", "total time limit"),
}


def serve_broken(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/b/404").respond_with_data("nope", status=404)
    httpserver.expect_request("/b/500").respond_with_data("oops", status=500)
    httpserver.expect_request("/b/410").respond_with_data("gone", status=410)
    httpserver.expect_request("/b/429").respond_with_data("slow down", status=429, headers={"Retry-After": "120"})
    httpserver.expect_request("/b/html").respond_with_data(
        "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Log in</body></html>",
        content_type="text/html",
    )
    httpserver.expect_request("/b/empty").respond_with_data("", content_type="application/rss+xml")
    bomb = gzip.compress(bytes(16 * MiB), compresslevel=1)
    httpserver.expect_request("/b/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml"
    )
    httpserver.expect_request("/b/loop-a").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/b/loop-b")}
    )
    httpserver.expect_request("/b/loop-b").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/b/loop-a")}
    )
    httpserver.expect_request("/b/notxml").respond_with_data(
        "<?xml version='1.0'?><catalog><book id='1'><name>Atlas</catalog>", content_type="application/xml"
    )


def healthy_feed(i: int) -> tuple[bytes, list[str]]:
    """Three items, two of them matching; every title names its own place so no two share a story."""
    matching = [f"Shelling near Ost{i}a", f"Drone strike reported at Ost{i}b"]
    body = rss(
        entry(f"f{i}-1", matching[0], link=f"https://news.example.org/{i}/1"),
        entry(f"f{i}-2", matching[1], link=f"https://news.example.org/{i}/2"),
        entry(f"f{i}-3", f"Harvest festival in Ost{i}c", link=f"https://news.example.org/{i}/3"),
    )
    return body, matching


class TestFiftyFeeds:
    def test_one_run_alerts_the_healthy_and_reports_the_broken(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """50 feeds, 10 broken ten ways: one `run --once` alerts every match of the 40, `status` names the 10."""
        expected: list[str] = []
        feeds = ""
        for i in range(40):
            body, matching = healthy_feed(i)
            httpserver.expect_request(f"/ok/{i}").respond_with_data(body, content_type="application/rss+xml")
            feeds += feed_toml(f"ok-{i:02d}", httpserver.url_for(f"/ok/{i}"), backfill="all")
            expected += matching
        serve_broken(httpserver)
        with trickling_server() as trickle:
            for name, (path, _) in BROKEN.items():
                feeds += feed_toml(name, httpserver.url_for(path) if path else trickle, backfill="all")
            config = write_config(
                tmp_path,
                feeds,
                polling={"total_timeout": "2s", "per_host": 8, "max_concurrency": 16},
            )
            run = subprocess.run(
                [*CLI, "--config", str(config), "run", "--once"],
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert run.returncode == 0, run.stderr
        alerted = [line.strip() for line in run.stdout.splitlines() if line.startswith("  ") and "Ost" in line]
        assert sorted(alerted) == sorted(expected)
        assert run.stdout.count("\nALERT [") == len(expected)
        assert "Feed b-410 gone" in run.stdout

        out = subprocess.run(
            [*CLI, "--config", str(config), "status", "--json"], env=cli_env(), capture_output=True, text=True
        )
        assert out.returncode == ExitCode.NO_DAEMON  # `run --once` leaves no daemon heartbeat
        report = {f["name"]: f for f in json.loads(out.stdout)["feeds"]}
        assert len(report) == 50
        for i in range(40):
            assert (report[f"ok-{i:02d}"]["health"], report[f"ok-{i:02d}"]["items_seen"]) == ("ok", 3)
        for name, (_, reason) in BROKEN.items():
            feed = report[name]
            assert feed["health"] == ("disabled" if name == "b-410" else "failing"), name
            assert reason in feed["last_error"], (name, feed["last_error"])

        human = subprocess.run([*CLI, "--config", str(config), "status"], env=cli_env(), capture_output=True, text=True)
        lines = {line.split()[0].lstrip("!"): line for line in human.stdout.splitlines() if line.startswith(" ")}
        for name, (_, reason) in BROKEN.items():
            assert reason in lines[name], lines[name]
