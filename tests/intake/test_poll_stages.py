"""Many feeds polled at once: only a few at a time parse, score and ingest, and fetched documents do not pile
up behind them — yet every item of every feed is stored and alerted as when polled one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.config.model import FeedConfig
from daemon.intake.parse import ParsedFeed
from daemon.intake.parsing import FeedParser
from daemon.intake.poller import CPU_STAGES, Poller
from daemon.util.observe import NullObserver
from tests.kit.feeds import FeedServer
from tests.kit.polling import PROXY_VARS, Daemon, feed_toml, write_config

FEEDS = 24
FETCHES_AT_ONCE = 4


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers are reached directly whatever proxy the developer's shell sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


class Stages:
    """Counts polls between entering the parse and being reported as polled (the CPU stages)."""

    def __init__(self, servers: list[FeedServer]) -> None:
        self.servers = servers
        self.inside = 0
        self.most_inside = 0
        self.parsed = 0
        self.most_waiting = 0  # documents served whose poll had not reached the parse yet

    def entered(self) -> None:
        self.inside += 1
        self.parsed += 1
        self.most_inside = max(self.most_inside, self.inside)
        served = sum(len(s.requests) for s in self.servers)
        self.most_waiting = max(self.most_waiting, served - self.parsed)

    def left(self) -> None:
        self.inside -= 1


class SlowParser(FeedParser):
    """The real parser, made slow enough that the CPU stages, not the fetches, set the pace."""

    def __init__(self, stages: Stages) -> None:
        super().__init__()
        self.stages = stages

    async def parse(self, name: str, url: str, body: bytes, content_type: str | None) -> ParsedFeed:
        self.stages.entered()
        await asyncio.sleep(0.01)
        return await super().parse(name, url, body, content_type)


class Observer(NullObserver):
    def __init__(self, stages: Stages) -> None:
        self.stages = stages

    def polled(self, feed: str, *, ok: bool, new_items: int = 0) -> None:
        self.stages.left()


WORDS = [
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lagoon",
    "meadow",
    "nickel",
]


def _title(n: int, i: int) -> str:
    """Distinct enough that no two items make one story; odd items match the test rule."""
    words = " ".join(WORDS[(n * 5 + i) * k % len(WORDS)] + str(n * 5 + i) for k in (1, 3, 5))
    return f"Shelling hits {words}" if i % 2 else f"Calm over {words}"


def _servers(httpserver: HTTPServer) -> list[FeedServer]:
    servers = []
    for n in range(FEEDS):
        server = FeedServer(httpserver, path=f"/feed{n}")
        for i in range(5):
            server.add(f"f{n}-{i}", _title(n, i))
        servers.append(server)
    return servers


async def _stored(d: Daemon) -> list[tuple[str, str]]:
    rows = await d.sql("SELECT f.name, i.title FROM items i JOIN feeds f ON f.id = i.feed_id ORDER BY 1, 2")
    return [(str(a), str(b)) for a, b in rows]


async def _poll_together(d: Daemon, stages: Stages) -> None:
    """Poll every feed at once with a Poller on the daemon's store and fetcher, watched by ``stages``."""
    service = d.service
    poller = Poller(
        service.store,
        service.fetcher,
        lambda: service.active,
        clock=d.clock,
        reschedule=lambda feed, at: None,
        on_alerts=lambda now: None,
        parser=SlowParser(stages),
        observer=Observer(stages),
    )
    configs: list[FeedConfig] = [d.feed(f"feed{n}") for n in range(FEEDS)]
    await asyncio.gather(*(poller.poll(feed) for feed in configs))


async def test_polls_at_once_enter_the_cpu_stages_a_few_at_a_time(httpserver: HTTPServer, tmp_path: Path) -> None:
    """With 24 feeds polled at once, at most CPU_STAGES polls parse/score/ingest together, at most
    max_concurrency documents wait for them, and every item and alert is the same as polling one by one."""
    servers = _servers(httpserver)
    feeds = "".join(feed_toml(f"feed{n}", s.url, backfill="all") for n, s in enumerate(servers))
    polling = {"max_concurrency": FETCHES_AT_ONCE, "per_host": FETCHES_AT_ONCE}

    alone = tmp_path / "alone"
    alone.mkdir()
    async with Daemon(write_config(alone, feeds, polling=polling)) as d:
        for n in range(FEEDS):
            await d.poll(f"feed{n}")
        expected_items, expected_alerts = await _stored(d), sorted(await d.alerted_titles())

    for s in servers:
        s.requests.clear()
    together = tmp_path / "together"
    together.mkdir()
    stages = Stages(servers)
    async with Daemon(write_config(together, feeds, polling=polling)) as d:
        await _poll_together(d, stages)
        items, alerts = await _stored(d), sorted(await d.alerted_titles())

    assert stages.parsed == FEEDS
    assert 1 < stages.most_inside <= CPU_STAGES
    assert stages.most_waiting <= FETCHES_AT_ONCE
    assert len(items) == FEEDS * 5
    assert (items, alerts) == (expected_items, expected_alerts)
    assert len(alerts) > FEEDS // 2


async def test_parse_workers_widen_the_cpu_stages(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Parse worker processes parse side by side, so each of them lets one more poll into the CPU stages."""
    servers = _servers(httpserver)
    feeds = "".join(feed_toml(f"feed{n}", s.url, backfill="all") for n, s in enumerate(servers))
    polling = {"max_concurrency": 16, "per_host": 16, "parse_workers": 2}
    stages = Stages(servers)
    async with Daemon(write_config(tmp_path, feeds, polling=polling)) as d:
        await _poll_together(d, stages)
        assert await d.count_items() == FEEDS * 5
    assert stages.most_inside == CPU_STAGES + 2
