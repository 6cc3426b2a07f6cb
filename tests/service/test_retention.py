"""Retention: items unseen in their feed for `[store] retention` are pruned; nothing current or pending is."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs

from daemon.config.load import load_config
from daemon.service.app import Service
from daemon.service.scheduling import PRUNE_BATCH, PRUNE_FIRST
from daemon.service.systemd import Notifier
from daemon.store.schema import MIGRATIONS
from daemon.store.sqlite import Store
from tests.kit.feeds import FeedServer
from tests.kit.polling import PROXY_VARS, T0, Clock, Daemon, entry, feed_toml, rss, write_config

DAY = 86400.0


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def keys(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return sorted(k for (k,) in conn.execute("SELECT key FROM items"))
    finally:
        conn.close()


class TestPrune:
    async def test_item_still_in_its_feed_is_kept_and_not_realerted(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """An item past retention that its feed still carries (behind months of 304s) stays and never re-alerts."""
        server = FeedServer(httpserver, body=rss(entry("a", "Shelling near Alpha")))
        config = write_config(tmp_path, feed_toml("news", server.url, backfill="all"), store={"retention": "30d"})
        async with Daemon(config) as d:
            await d.poll("news")
            for _ in range(6):  # two months of "nothing changed"
                d.clock.advance(10 * DAY)
                assert (await d.poll("news")).health.last_status == 304
            assert await d.service.prune() == 0
            server.body = rss(entry("b", "Drone strike in Bravo"), entry("a", "Shelling near Alpha"))
            await d.poll("news")
            assert await d.alerted_titles() == ["Shelling near Alpha", "Drone strike in Bravo"]
        assert keys(tmp_path / "fw.db") == ["id:a", "id:b"]

    async def test_item_gone_from_its_feed_is_pruned_after_retention(
        self, httpserver: HTTPServer, tmp_path: Path
    ) -> None:
        """An item the feed dropped is pruned once unseen for longer than retention, with its matches."""
        server = FeedServer(httpserver, body=rss(entry("a", "Shelling near Alpha"), entry("b", "Quiet in Bravo")))
        config = write_config(tmp_path, feed_toml("news", server.url), store={"retention": "30d"})
        async with Daemon(config) as d:
            await d.poll("news")
            d.clock.advance(DAY)
            server.body = rss(entry("b", "Quiet in Bravo"), entry("c", "Quiet in Charlie"))
            await d.poll("news")
            d.clock.advance(29 * DAY)
            assert await d.service.prune() == 0  # a was last seen 30 days ago: not yet longer than retention
            d.clock.advance(2 * DAY)
            with capture_logs() as logs:
                assert await d.service.prune() == 1
            assert await d.sql("SELECT COUNT(*) FROM matches") == [(0,)]
        assert keys(tmp_path / "fw.db") == ["id:b", "id:c"]
        assert [e["items"] for e in logs if e["event"] == "pruned"] == [1]

    async def test_pending_delivery_keeps_its_item(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """An item whose alert is still queued is not pruned; once delivered it is, and the alert stays intact."""
        server = FeedServer(httpserver, body=rss(entry("a", "Shelling near Alpha", link="https://n.example/a")))
        config = write_config(tmp_path, feed_toml("news", server.url, backfill="all"), store={"retention": "30d"})
        async with Daemon(config) as d:
            await d.poll("news")
            server.body = rss(entry("b", "Quiet in Bravo"))
            d.clock.advance(DAY)
            await d.poll("news")
            d.clock.advance(60 * DAY)
            assert await d.service.prune() == 0
            assert await d.sql("SELECT state FROM outbox") == [("pending",)]
            assert d.service.worker is not None
            assert await d.service.worker.drain(5) == 0  # the console channel delivers it
            assert await d.service.prune() == 1
            assert await d.sql("SELECT state FROM outbox") == [("delivered",)]
            assert await d.sql("SELECT item_id FROM alerts") == [(None,)]
            (alert,) = await d.alerts()
            assert (alert.title, alert.link) == ("Shelling near Alpha", "https://n.example/a")
        assert keys(tmp_path / "fw.db") == ["id:b"]

    async def test_prunes_everything_due_in_batches(
        self, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """More items than one batch are all pruned by one pass, one store call (transaction) per batch."""
        count = PRUNE_BATCH * 2 + 17
        server = FeedServer(httpserver, body=rss(*(entry(f"g{i}", f"Item {i}") for i in range(count))))
        config = write_config(tmp_path, feed_toml("news", server.url), store={"retention": "30d"})
        batches: list[int] = []
        real = Store.prune

        def recorded(store: Store, before: datetime, batch: int = 1000) -> int:
            batches.append(real(store, before, batch))
            return batches[-1]

        monkeypatch.setattr(Store, "prune", recorded)
        async with Daemon(config) as d:
            await d.poll("news")
            server.body = rss(entry("new", "Fresh"))
            d.clock.advance(40 * DAY)
            await d.poll("news")
            assert await d.service.prune() == count
            assert await d.count_items() == 1
        assert batches == [PRUNE_BATCH, PRUNE_BATCH, 17]

    async def test_forever_keeps_everything(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """retention = "forever" never prunes."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet")))
        config = write_config(tmp_path, feed_toml("news", server.url), store={"retention": "forever"})
        async with Daemon(config) as d:
            await d.poll("news")
            server.body = rss(entry("b", "Also quiet"))
            await d.poll("news")
            d.clock.advance(3650 * DAY)
            assert await d.service.prune() == 0
            assert await d.count_items() == 2

    async def test_run_once_prunes(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """`run --once` (cron-style use) prunes too, after polling."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet")))
        config = write_config(tmp_path, feed_toml("news", server.url), store={"retention": "30d"})
        clock = Clock()
        assert await Service(load_config(config), clock=clock, notifier=Notifier(None)).run_once() == 0
        server.body = rss(entry("b", "Also quiet"))
        clock.advance(DAY)
        assert await Service(load_config(config), clock=clock, notifier=Notifier(None)).run_once() == 0
        clock.advance(40 * DAY)
        assert await Service(load_config(config), clock=clock, notifier=Notifier(None)).run_once() == 0
        assert keys(tmp_path / "fw.db") == ["id:b"]

    async def test_pruning_is_scheduled_and_survives_reload(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        """The daemon schedules pruning shortly after start and hourly; a config reload does not unschedule it."""
        server = FeedServer(httpserver, body=rss(entry("a", "Quiet")))
        config = write_config(tmp_path, feed_toml("news", server.url))
        async with Daemon(config) as d:
            service = d.service
            service._scheduler = AsyncIOScheduler(timezone=UTC)
            service._schedule_all(initial=True, states=[])
            service._schedule_maintenance()
            job = service._scheduler.get_job("maint:prune")
            assert job is not None
            assert job.next_run_time == d.clock.now + timedelta(seconds=PRUNE_FIRST)
            assert job.trigger.interval == timedelta(hours=1)
            service._schedule_all()
            assert service._scheduler.get_job("maint:prune") is not None
            assert service._scheduler.get_job("news") is not None


class TestMigration:
    def test_existing_database_gets_last_seen_and_prunes_nothing_until_polled(self, tmp_path: Path) -> None:
        """A version 1 database gains last_seen_at; its items are not pruned before their feed's next document."""
        db = tmp_path / "fw.db"
        conn = sqlite3.connect(db)
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO feeds(id, name, url) VALUES (1, 'news', 'https://n.example/')")
        conn.execute(
            "INSERT INTO items(feed_id, key, content_hash, title, first_seen) VALUES (1, 'id:a', 'h', 't', ?)",
            ((T0 - timedelta(days=400)).isoformat(),),
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
        conn.close()
        store = Store(db)
        try:
            assert store.schema_version() == len(MIGRATIONS)
            row = store.conn.execute("SELECT first_seen, last_seen_at FROM items").fetchone()
            assert row[0] == row[1]
            assert store.prune(T0) == 0
        finally:
            store.close()
