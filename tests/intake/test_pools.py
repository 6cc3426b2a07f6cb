"""Connection pool of the feed client: many fetches to one host run at once, and connections are kept and
reused between polls, never more idle ones than the caps allow."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from daemon.intake.fetch import FetchSettings, make_client
from daemon.intake.http1 import HTTPClient


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.active += 1
            self.server.peak = max(self.server.peak, self.server.active)
        time.sleep(0.05)
        with self.server.lock:
            self.server.active -= 1
        self.send_response(304)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = self.active = self.peak = 0


@contextmanager
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


async def get_all(client: HTTPClient, url: str, n: int) -> None:
    async def one() -> None:
        response = await client.get(url, [])
        assert response.status == 304
        assert await response.read_chunk() == b""  # read to its end: the connection is kept

    await asyncio.gather(*(one() for _ in range(n)))


class TestPools:
    async def test_concurrent_fetches_keep_their_connections(self) -> None:
        """32 fetches at once to one host run concurrently, and a second round reuses every connection."""
        with server() as srv:
            url = f"http://127.0.0.1:{srv.server_address[1]}/feed"
            async with make_client(FetchSettings(concurrency=32, per_host=32)) as client:
                await get_all(client, url, 32)
                first = srv.connections
                await get_all(client, url, 32)
            assert srv.peak >= 16
            assert first <= 32
            assert srv.connections == first  # nothing reconnected

    async def test_an_ordinary_host_stays_in_one_pool(self) -> None:
        """Fetches one after another to a host (per_host 2) reuse one connection."""
        with server() as srv:
            url = f"http://127.0.0.1:{srv.server_address[1]}/feed"
            async with make_client(FetchSettings(concurrency=16, per_host=2)) as client:
                for _ in range(5):
                    await get_all(client, url, 1)
            assert srv.connections == 1

    async def test_idle_connections_never_exceed_the_per_origin_cap(self) -> None:
        """8 fetches at once to a host allowed 3 keep 3 connections; the second round opens only 5 anew."""
        with server() as srv:
            url = f"http://127.0.0.1:{srv.server_address[1]}/feed"
            async with make_client(FetchSettings(concurrency=16, per_host=3)) as client:
                await get_all(client, url, 8)
                assert client.idle_connections() == 3
                await get_all(client, url, 8)
                assert client.idle_connections() == 3
            assert srv.connections == 8 + 5
