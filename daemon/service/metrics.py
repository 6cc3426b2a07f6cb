"""Prometheus metrics and a health endpoint, served when ``[metrics] listen`` is set.

``GET /metrics`` is the Prometheus text format (prometheus-client); ``GET /healthz`` answers 200 when
``feedwatch status`` would exit 0 and 503 otherwise, with the ``status --json`` document as its body.
Counters count what this process did since it started; the ``feedwatch_outbox_deliveries`` and
``feedwatch_poll_lag_seconds`` gauges are read from the store at each scrape, so they agree with
``feedwatch status`` and ``feedwatch explain``. Imported only when configured: prometheus-client is an
optional dependency (``pip install 'feedwatch[metrics]'``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from daemon import __version__
from daemon.config.model import Config
from daemon.errors import FeedwatchError
from daemon.service import status
from daemon.store.async_store import AsyncStore
from daemon.store.sqlite import Store

log = structlog.get_logger(__name__)

REQUEST_MAX = 8192  # bytes of request line and headers read at most
REQUEST_TIMEOUT = 5.0  # seconds a client has to send its request
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
REASONS[503] = "Service Unavailable"
OUTBOX_STATES = ("pending", "delivered", "dead", "held", "digest", "folded", "silenced")


class Metrics:
    """The daemon's :class:`~daemon.util.observe.Observer`, backed by one prometheus-client registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.info = Gauge("feedwatch_build_info", "Always 1; the running version", ["version"], registry=r)
        self.info.labels(__version__).set(1)
        self.polls = Counter("feedwatch_polls", "Polls of each feed (any outcome)", ["feed"], registry=r)
        self.poll_failures = Counter("feedwatch_poll_failures", "Polls that failed", ["feed"], registry=r)
        self.items = Counter("feedwatch_items", "New items seen", ["feed"], registry=r)
        self.poll_lag = Gauge(
            "feedwatch_poll_lag_seconds", "How far each feed's poll is overdue (0: on time)", ["feed"], registry=r
        )
        self.matcher = Histogram(
            "feedwatch_matcher_seconds",
            "Time scoring the new items of one poll",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.matched_items = Counter("feedwatch_scored_items", "Items scored by the matcher", registry=r)
        self.alerts = Counter(
            "feedwatch_alerts", "Alerts recorded (rule @ops: about feeds)", ["rule", "severity"], registry=r
        )
        self.silenced = Counter("feedwatch_alerts_silenced", "Alerts recorded as silenced", ["rule"], registry=r)
        self.deliveries = Counter(
            "feedwatch_deliveries", "Deliveries accepted by the receiver", ["channel"], registry=r
        )
        self.failures = Counter(
            "feedwatch_delivery_failures", "Failed delivery attempts (retried or dead)", ["channel"], registry=r
        )
        self.dead = Counter("feedwatch_dead_letters", "Deliveries that became dead letters", ["channel"], registry=r)
        self.outbox = Gauge("feedwatch_outbox_deliveries", "Deliveries in the store by state", ["state"], registry=r)
        self.outbox_depth = Gauge("feedwatch_outbox_depth", "Deliveries waiting to be sent", registry=r)
        self.reloads = Counter("feedwatch_reloads", "Reloads of config or rules", registry=r)
        self.reload_errors = Counter("feedwatch_reload_errors", "Reloads that rejected a file", registry=r)

    # -- Observer ----------------------------------------------------------------------------

    def polled(self, feed: str, *, ok: bool, new_items: int = 0) -> None:
        self.polls.labels(feed).inc()
        if not ok:
            self.poll_failures.labels(feed).inc()
        elif new_items:
            self.items.labels(feed).inc(new_items)

    def scored(self, seconds: float, items: int) -> None:
        self.matcher.observe(seconds)
        self.matched_items.inc(items)

    def alerted(self, rule: str, severity: str, *, silenced: bool) -> None:
        self.alerts.labels(rule, severity).inc()
        if silenced:
            self.silenced.labels(rule).inc()

    def delivery(self, channel: str, outcome: str) -> None:
        if outcome == "delivered":
            self.deliveries.labels(channel).inc()
            return
        self.failures.labels(channel).inc()
        if outcome == "dead":
            self.dead.labels(channel).inc()

    def reloaded(self, *, ok: bool) -> None:
        self.reloads.inc()
        if not ok:
            self.reload_errors.inc()

    # -- scrape ------------------------------------------------------------------------------

    def refresh(self, counts: dict[str, int], lags: dict[str, float]) -> None:
        """Set the gauges read from the store."""
        for state in sorted(set(OUTBOX_STATES) | set(counts)):
            self.outbox.labels(state).set(counts.get(state, 0))
        self.outbox_depth.set(counts.get("pending", 0))
        for feed, lag in lags.items():
            self.poll_lag.labels(feed).set(lag)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _scrape_values(store: Store, config: Config, now: datetime) -> tuple[dict[str, int], dict[str, float]]:
    enabled = {f.name for f in config.feeds if f.enabled}
    lags = {}
    for state in store.feeds():
        if state.name in enabled and not state.health.disabled:
            due = state.next_poll_at
            lags[state.name] = max(0.0, (now - due).total_seconds()) if due else 0.0
    return store.outbox_counts(), lags


def _health(config: Config, now: datetime) -> tuple[str, dict[str, Any]]:
    """`status --json` as seen from outside: its own read-only connection, like the command."""
    store = Store(config.store.path, readonly=True, busy_timeout=config.store.busy_timeout)
    try:
        report = status.collect(store, config, now)
    finally:
        store.close()
    return status.health(report), report


class MetricsServer:
    """A minimal HTTP/1.1 server on the loop for /metrics and /healthz (one request per connection)."""

    def __init__(
        self,
        metrics: Metrics,
        store: AsyncStore,
        config: Callable[[], Config],
        clock: Callable[[], datetime],
    ) -> None:
        self.metrics = metrics
        self._store = store
        self._config = config
        self._clock = clock
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        try:
            self._server = await asyncio.start_server(self._handle, host, port, limit=REQUEST_MAX)
        except OSError as exc:
            raise FeedwatchError(f"metrics.listen: cannot listen on {host}:{port}: {exc.strerror}") from None
        bound = self._server.sockets[0].getsockname()
        log.info("metrics_listening", address=f"{bound[0]}:{bound[1]}")
        return str(bound[0]), int(bound[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            code, ctype, body = await self._respond(method, target.split("?", 1)[0])
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            code, ctype, body = 400, "text/plain", b"bad request\n"
        except Exception:  # a failing scrape must not take the daemon down
            log.exception("metrics_request_failed")
            code, ctype, body = 500, "text/plain", b"internal error\n"
        head_out = (
            f"HTTP/1.1 {code} {REASONS.get(code, 'Error')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head_out.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            config = self._config()
            counts, lags = await self._store.call(_scrape_values, config, self._clock())
            self.metrics.refresh(counts, lags)
            return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()
        if path == "/healthz":
            verdict, report = await asyncio.to_thread(_health, self._config(), self._clock())
            body = json.dumps(report, indent=2).encode("utf-8") + b"\n"
            return (200 if verdict == "ok" else 503), "application/json", body
        return 404, "text/plain", b"not found: try /metrics or /healthz\n"
