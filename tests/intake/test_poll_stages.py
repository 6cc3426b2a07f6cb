"""Many feeds polled at once: only a few at a time parse, score and ingest, and fetched documents do not pile
up behind them — yet every item of every feed is stored and alerted as when polled one by one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config.model import FeedConfig
from daemon.intake import poller
from daemon.intake.parse import ParsedFeed
from daemon.intake.parsing import Aside, FeedParser
from daemon.intake.poller import CPU_STAGES, QUICK_FETCH, QUICK_FETCHES, Poller
from daemon.util.observe import NullObserver
from tests.intake.test_parse_paths import HOSTILE
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
        self.done: list[str] = []  # feeds in the order their polls ended
        self._entries = asyncio.Condition()

    async def all_in(self, n: int) -> None:
        """Wait until ``n`` polls have entered the parse."""
        async with self._entries:
            await self._entries.wait_for(lambda: self.parsed >= n)

    async def entered(self) -> None:
        self.inside += 1
        self.parsed += 1
        self.most_inside = max(self.most_inside, self.inside)
        served = sum(len(s.requests) for s in self.servers)
        self.most_waiting = max(self.most_waiting, served - self.parsed)
        async with self._entries:
            self._entries.notify_all()

    def left(self) -> None:
        self.inside -= 1


class SlowParser(FeedParser):
    """The real parser, made slow enough that the CPU stages, not the fetches, set the pace."""

    def __init__(self, stages: Stages) -> None:
        super().__init__()
        self.stages = stages

    async def parse(
        self, name: str, url: str, body: bytes, content_type: str | None, *, aside: Aside | None = None
    ) -> ParsedFeed:
        await self.stages.entered()
        await asyncio.sleep(0.01)
        return await super().parse(name, url, body, content_type, aside=aside)


class Observer(NullObserver):
    def __init__(self, stages: Stages) -> None:
        self.stages = stages

    def polled(self, feed: str, *, ok: bool, new_items: int = 0) -> None:
        self.stages.left()
        self.stages.done.append(feed)


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


def _poller(d: Daemon, stages: Stages) -> Poller:
    """A Poller on the daemon's store and fetcher, watched by ``stages``."""
    service = d.service
    return Poller(
        service.store,
        service.fetcher,
        lambda: service.active,
        clock=d.clock,
        reschedule=lambda feed, at: None,
        on_alerts=lambda now: None,
        parser=SlowParser(stages),
        observer=Observer(stages),
    )


async def _poll_together(d: Daemon, stages: Stages) -> None:
    """Poll every feed at once, watched by ``stages``."""
    poller = _poller(d, stages)
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


async def test_feeds_parsed_in_a_child_process_leave_the_cpu_stages_to_others(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Two feeds sent to the feedparser fallback (a child process) do not hold up the healthy feeds polled
    after them: every healthy poll ends before either of theirs."""
    servers = _servers(httpserver)[:6]
    bad = HOSTILE["namespace-heavy 1 MiB, ill-formed"]
    hostile = [FeedServer(httpserver, f"/hostile{n}", bad) for n in range(CPU_STAGES)]
    feeds = "".join(feed_toml(f"feed{n}", s.url) for n, s in enumerate(servers))
    feeds += "".join(feed_toml(f"hostile{n}", s.url) for n, s in enumerate(hostile))
    polling = {"parse_timeout": "1500ms", "total_timeout": "20s"}
    stages = Stages(servers)
    async with Daemon(write_config(tmp_path, feeds, polling=polling)) as d:
        poller = _poller(d, stages)
        slow = [asyncio.create_task(poller.poll(d.feed(f"hostile{n}"))) for n in range(CPU_STAGES)]
        await stages.all_in(CPU_STAGES)  # both hold their place in the stages before the others come
        await asyncio.gather(*(poller.poll(d.feed(f"feed{n}")) for n in range(len(servers))))
        healthy_done = list(stages.done)
        await asyncio.gather(*slow)
        stored = [feed for feed, _ in await _stored(d) if feed.startswith("feed")]
    assert len(stored) == len(servers) * 5
    assert sorted(healthy_done) == sorted(f"feed{n}" for n in range(len(servers)))
    assert sorted(stages.done[len(servers) :]) == [f"hostile{n}" for n in range(CPU_STAGES)]


async def test_quick_fetches_do_not_pile_up_documents(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_concurrency above QUICK_FETCHES and a server that answers at once, at most QUICK_FETCHES
    documents are fetched and waiting for the CPU stages together; every item is still stored."""
    # No fetch counts as slow here, however busy the machine running the test is.
    monkeypatch.setattr(poller, "QUICK_FETCH", 60.0)
    servers = _servers(httpserver)
    assert FEEDS > QUICK_FETCHES + CPU_STAGES  # enough feeds for a burst the limit can cut
    feeds = "".join(feed_toml(f"feed{n}", s.url) for n, s in enumerate(servers))
    polling = {"max_concurrency": FEEDS, "per_host": FEEDS}
    stages = Stages(servers)
    async with Daemon(write_config(tmp_path, feeds, polling=polling)) as d:
        await _poll_together(d, stages)
        assert await d.count_items() == FEEDS * 5
    assert stages.parsed == FEEDS
    assert stages.most_waiting <= QUICK_FETCHES


class SlowFeedServer(FeedServer):
    """A feed that answers after a pause longer than a quick fetch, counting requests in progress at once."""

    def __init__(self, httpserver: HTTPServer, path: str, tally: dict[str, int], lock: threading.Lock) -> None:
        self.tally = tally
        self.lock = lock
        super().__init__(httpserver, path)

    def _handle(self, request: Request) -> Response:
        with self.lock:
            self.tally["now"] += 1
            self.tally["most"] = max(self.tally["most"], self.tally["now"])
        time.sleep(6 * QUICK_FETCH)
        with self.lock:
            self.tally["now"] -= 1
        return super()._handle(request)


@pytest.fixture
def threaded_httpserver() -> Iterator[HTTPServer]:
    """A feed server on 127.0.0.1 that answers requests side by side."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


async def test_slow_fetches_still_run_max_concurrency_at_once(threaded_httpserver: HTTPServer, tmp_path: Path) -> None:
    """Fetches that wait on the network give their quick place up: all max_concurrency run side by side."""
    tally, lock = {"now": 0, "most": 0}, threading.Lock()
    servers: list[FeedServer] = []
    for n in range(FEEDS):
        server = SlowFeedServer(threaded_httpserver, f"/slow{n}", tally, lock)
        server.add(f"s{n}", _title(n, 0))
        servers.append(server)
    feeds = "".join(feed_toml(f"feed{n}", s.url) for n, s in enumerate(servers))
    polling = {"max_concurrency": FEEDS, "per_host": FEEDS}
    stages = Stages(servers)
    async with Daemon(write_config(tmp_path, feeds, polling=polling)) as d:
        await _poll_together(d, stages)
        assert await d.count_items() == FEEDS
    assert tally["most"] > QUICK_FETCHES
