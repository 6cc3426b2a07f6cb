"""Shared kit for polling tests: feeds served on 127.0.0.1, a config on disk, the real Service driven by hand."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from daemon.config.load import load_config
from daemon.config.model import FeedConfig
from daemon.models import Alert, alert_from_dict
from daemon.service.app import Service
from daemon.service.systemd import Notifier
from daemon.store.rows import FeedState
from daemon.store.sqlite import Store

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

# One rule: "shelling" in a title scores 2 (info), two terms 4 (warning), three 6 (critical).
RULES = """
[rule.watch]
description = "Shelling, artillery or drones"
threshold = 1.0
severity = { warning = 3.0, critical = 6.0 }

[rule.watch.groups.words]
weight = 1.0
terms = ["shelling", "artillery", "drone*"]
"""


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def entry(
    guid: str, title: str, summary: str = "", *, published: datetime | None = None, link: str | None = None
) -> str:
    parts = [f"<guid isPermaLink='false'>{escape(guid)}</guid>", f"<title>{escape(title)}</title>"]
    if link:
        parts.append(f"<link>{escape(link)}</link>")
    if summary:
        parts.append(f"<description>{escape(summary)}</description>")
    if published:
        parts.append(f"<pubDate>{email.utils.format_datetime(published)}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


def rss(*entries: str, ttl: int | None = None) -> bytes:
    extra = f"<ttl>{ttl}</ttl>" if ttl is not None else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>'
        f"<link>https://news.example.org/</link>{extra}{''.join(entries)}</channel></rss>"
    ).encode()


def feed_toml(name: str, url: str, **options: str) -> str:
    lines = ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
    lines += [f'{key} = "{value}"' for key, value in options.items()]
    return "\n".join(lines) + "\n"


POLLING = {
    "interval": "10m",
    "min_interval": "1m",
    "jitter": 0.0,  # exact delays, so tests can compare them
    "connect_timeout": "2s",
    "read_timeout": "2s",
    "total_timeout": "5s",
}
ALERTS = {"default_channels": ["console"], "storm_limit": 1000}


def _table(name: str, values: Mapping[str, object]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def write_config(
    folder: Path,
    feeds: str,
    *,
    polling: Mapping[str, object] | None = None,
    store: Mapping[str, object] | None = None,
    alerts: Mapping[str, object] | None = None,
    name: str = "config.toml",
) -> Path:
    """A config with the test rule, console alerts, no jitter and storm control out of the way."""
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "watch.toml").write_text(RULES)
    path = folder / name
    path.write_text(
        _table("daemon", {"rules_dir": "rules"})
        + _table("store", {"path": "fw.db", **(store or {})})
        + _table("polling", {**POLLING, **(polling or {})})
        + _table("alerts", {**ALERTS, **(alerts or {})})
        + feeds
    )
    return path


class Daemon:
    """The real Service on a config file, started in-process without scheduler or outbox worker."""

    def __init__(self, config: Path, clock: Clock | None = None) -> None:
        self.config_path = config
        self.clock = clock or Clock()
        self.service = Service(load_config(config), clock=self.clock, notifier=Notifier(None))

    async def __aenter__(self) -> Daemon:
        await self.service._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.service.aclose()

    def feed(self, name: str) -> FeedConfig:
        return next(f for f in self.service.active.config.feeds if f.name == name)

    async def poll(self, name: str) -> FeedState:
        await self.service.poll(self.feed(name))
        return await self.state(name)

    async def state(self, name: str) -> FeedState:
        state = await self.service.store.call(Store.feed, name)
        assert state is not None
        return state

    async def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        def run(store: Store) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in store.conn.execute(query, params)]

        return await self.service.store.call(run)

    async def count_items(self) -> int:
        return await self.service.store.call(Store.count_items)

    async def alerts(self, kind: str | None = None) -> list[Alert]:
        rows = await self.sql("SELECT kind, payload FROM alerts ORDER BY created_at, rowid")
        return [alert_from_dict(json.loads(p)) for k, p in rows if kind is None or k == kind]

    async def ops(self) -> list[str]:
        """Operator alert kinds raised so far, in order ("failing", "recovered", "stale", "gone")."""
        return [a.description.removeprefix("feed ") for a in await self.alerts("ops")]

    async def alerted_titles(self) -> list[str]:
        return [a.title for a in await self.alerts() if a.kind in ("new", "update")]

    def delay(self, state: FeedState) -> float:
        """Seconds from now until the feed's stored next poll."""
        assert state.next_poll_at is not None
        return (state.next_poll_at - self.clock.now).total_seconds()


class _Trickle(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        try:
            for _ in range(200):  # 60 s at most, far past any deadline a test sets
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def trickling_server() -> Iterator[str]:
    """A server on 127.0.0.1 that answers 200 and then sends one byte every 0.3 s, forever."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    finally:
        server.shutdown()
        server.server_close()


class _Counting(BaseHTTPRequestHandler):
    server: _CountingServer

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.active += 1
            srv.peak = max(srv.peak, srv.active)
        time.sleep(srv.delay)
        with srv.lock:
            srv.active -= 1
        body = rss()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Counting)
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0


@contextmanager
def counting_server(delay: float) -> Iterator[_CountingServer]:
    """A threaded server on 127.0.0.1 answering every path after ``delay`` s; ``peak`` = most requests at once."""
    server = _CountingServer(delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
