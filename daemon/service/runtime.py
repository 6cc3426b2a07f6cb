"""What the daemon runs with: config, rules and matcher, swapped whole on reload; the channels it builds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import structlog

from daemon.alerting.ingest import Routing
from daemon.config.model import Config
from daemon.intake.fetch import FetchSettings, tls_context
from daemon.intake.policy import PollPolicy, poll_policy
from daemon.notify.base import Channel
from daemon.rules.compiled import LazyMatcher
from daemon.rules.load import load_rules, no_rules_error
from daemon.rules.ruleset import LoadReport, Rule
from daemon.store.async_store import AsyncStore
from daemon.store.sqlite import Store

if TYPE_CHECKING:
    import httpx

    from daemon.rules.matcher import Matcher
    from daemon.service.metrics import Metrics

HEARTBEAT_EVERY = 10.0
CLOSE_TIMEOUT = 2.0  # seconds for all channels together to close at shutdown, after the grace period
log = structlog.get_logger("daemon.service.app")


@dataclass(frozen=True, slots=True)
class Active:
    """What the daemon currently runs with, built once per (re)load and swapped whole, so a poll sees
    one version: config, rules and their matcher, rules by id, alert routing, poll policy.

    The matcher is compiled when something first needs scoring (``scorer`` defers it to the scoring
    thread): a ``run --once`` whose feeds all answer 304 never compiles it.
    """

    config: Config
    report: LoadReport
    scorer: LazyMatcher
    rules: Mapping[str, Rule]
    routing: Routing
    policy: PollPolicy

    @property
    def matcher(self) -> Matcher:
        """The compiled matcher (compiled now, on this thread, if nothing has needed it yet)."""
        return self.scorer.get()

    @classmethod
    def build(cls, config: Config, report: LoadReport) -> Active:
        channels = config.channels
        return cls(
            config=config,
            report=report,
            scorer=LazyMatcher(report.ruleset),
            rules=MappingProxyType({r.id: r for r in report.ruleset.rules}),
            routing=Routing(
                config.alerts,
                MappingProxyType({n: c.min_severity for n, c in channels.items()}),
                frozenset(n for n, c in channels.items() if c.mode == "digest"),
            ),
            policy=poll_policy(config.polling),
        )


def rules_or_raise(config: Config, previous: LoadReport | None = None) -> LoadReport:
    """The rules to start with; at start, an error or a folder without any rule is fatal (exit 2).

    A daemon with no rules would poll every feed and never alert: worse than not starting.
    """
    report = load_rules(config.rules_dir, channels=list(config.channels), previous=previous)
    if previous is None and report.errors:
        raise report.errors[0]
    if previous is None and not report.ruleset.rules:
        raise no_rules_error(config.rules_dir)
    return report


def heartbeat_interval(config: Config) -> float:
    """Seconds between heartbeats: at most HEARTBEAT_EVERY, never more than the shortest poll interval.

    `feedwatch status` calls the daemon gone after 3 poll intervals without a heartbeat, so with fast
    polling (tests, `min_interval = "1s"`) a fixed 10 s would read as a dead daemon.
    """
    return min(HEARTBEAT_EVERY, config.polling.min_interval)


def fetch_settings(config: Config) -> FetchSettings:
    """The fetcher's limits from ``[polling]``."""
    p = config.polling
    return FetchSettings(
        connect_timeout=p.connect_timeout,
        read_timeout=p.read_timeout,
        total_timeout=p.total_timeout,
        max_bytes=p.max_bytes,
        max_redirects=p.max_redirects,
        ca_bundle=p.ca_bundle,
        concurrency=p.max_concurrency,
        per_host=p.per_host,
    )


def channel_client(settings: FetchSettings) -> httpx.AsyncClient:
    """The HTTP client of the Slack and webhook channels: env proxies honoured, ``ca_bundle`` trusted.

    Feeds are fetched by :mod:`daemon.intake.http1`; channels post through httpx.
    """
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.total_timeout,
        ),
        follow_redirects=False,
        trust_env=True,
        verify=tls_context(settings.ca_bundle),
        headers={"User-Agent": settings.user_agent},
    )


def build_channels(config: Config, http: Callable[[], httpx.AsyncClient]) -> dict[str, Channel]:
    """Every configured channel; ``http`` makes the client of the Slack and webhook channels, and is called
    only when one of them is configured (a console or email setup never imports httpx)."""
    from daemon.notify.registry import CHANNEL_TYPES, build_channel

    client: httpx.AsyncClient | None = None
    channels: dict[str, Channel] = {}
    for name, cc in config.channels.items():
        kind = CHANNEL_TYPES.get(cc.type)  # None for an unknown type: build_channel names the mistake
        if client is None and kind is not None and kind.http:
            client = http()
        channels[name] = build_channel(name, cc.type, cc.settings, http=client)
    return channels


async def close_channels(channels: Mapping[str, Channel]) -> None:
    """Close every channel at once, all within CLOSE_TIMEOUT.

    A channel whose send was cut off at the end of the grace period may be talking to a server
    that is still busy with it (an SMTP QUIT then waits for the reply to DATA); that must not
    push the exit past systemd's stop timeout.
    """
    tasks = {asyncio.ensure_future(channel.aclose()): name for name, channel in channels.items()}
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        log.warning("channel_close_timeout", channels=sorted(tasks[t] for t in pending), timeout=CLOSE_TIMEOUT)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("channel_close_failed", channel=tasks[task], error=str(task.exception()))


def metrics_for(config: Config) -> Metrics | None:
    """The exporter when ``[metrics] listen`` is set; imported only then (prometheus-client is optional)."""
    if not config.metrics.listen:
        return None
    from daemon.service.metrics import Metrics

    return Metrics()


class StoreThreads:
    """Slack message ts kept in the database, so a restarted daemon still replies in the same threads."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store

    async def get(self, channel: str, key: str) -> tuple[str, str] | None:
        return await self._store.call(Store.slack_thread, channel, key)

    async def put(self, channel: str, key: str, slack_channel: str, ts: str) -> None:
        await self._store.call(Store.save_slack_thread, channel, key, slack_channel, ts, datetime.now(UTC))


def keep_threads(channels: Mapping[str, Channel], store: AsyncStore) -> None:
    """Give channels that thread their messages (Slack with a bot token) the database to keep them in."""
    threads = StoreThreads(store)
    for channel in channels.values():
        use = getattr(channel, "use_threads", None)
        if use is not None:
            use(threads)
