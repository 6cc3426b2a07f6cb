"""Several small HTTP connection pools instead of one big one.

httpcore's pool looks at every connection it holds — one ``poll()`` system call for each idle one — each
time a request is queued and each time a response is closed, so its cost per request grows with the
number of connections: with 64 connections to one host that was most of a 304 poll's CPU (2.9 ms per
request; sixteen pools of four: 0.8 ms). Requests go to a pool chosen by their origin, so the one or two
connections of an ordinary host always sit in the same pool and are reused; a host allowed many
concurrent fetches (``per_host``) has its requests spread over up to ``per_host / PER_POOL`` pools.
"""

from __future__ import annotations

import math
import ssl

import httpx

PER_POOL = 4  # connections a pool is sized for; it may hold more when origins collide


class PooledTransport(httpx.AsyncBaseTransport):
    """An httpx transport over ``ceil(concurrency / PER_POOL)`` connection pools."""

    def __init__(self, *, verify: ssl.SSLContext, concurrency: int, per_host: int) -> None:
        count = max(1, math.ceil(concurrency / PER_POOL))
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=2 * PER_POOL)
        self._pools = [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(count)]
        self._spread = max(1, min(count, math.ceil(per_host / PER_POOL)))
        self._turns: dict[tuple[str, str, int | None], int] = {}

    def _pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        origin = (url.scheme, url.host, url.port)
        turn = self._turns.get(origin, 0)
        self._turns[origin] = (turn + 1) % self._spread
        return self._pools[(hash(origin) + turn) % len(self._pools)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
