"""The configuration as frozen structs: what ``config.toml`` may say, with its defaults and checks.

Sections that TOML spells the way the code reads them (``[polling]``, ``[alerts]``) are converted
directly; ``[daemon]``, ``[store]``, ``[[feeds]]`` and ``[channels.*]`` are read into ``*Table`` structs
and then completed by the loader (paths resolved, names defaulted, channel settings attached).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from daemon.models import Severity
from daemon.util.fields import Duration, FieldError, Parse, Relative, Size, StringTable, duration_value
from daemon.util.secret import Secret

DEFAULT_INTERVAL = 15 * 60.0
DEFAULT_MIN_INTERVAL = 60.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_GRACE = 20.0
DEFAULT_OUTBOX_WAIT = 30.0
DEFAULT_RETENTION = 90 * 86400.0
LOG_LEVELS = ("debug", "info", "warning", "error")

AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
AtLeastZero = Annotated[int, msgspec.Meta(ge=0)]


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config struct: immutable, keyword-only, strict about keys."""


# -- value parsers (their ValueError says what was expected) ----------------------------------------


def _log_level(value: Any) -> str:
    level = value.lower() if isinstance(value, str) else value
    if level not in LOG_LEVELS:
        raise ValueError(f"expected debug, info, warning or error, got {value!r}")
    return str(level)


def _retention(value: Any) -> float | None:
    if value == "forever":
        return None
    if not isinstance(value, str):
        raise ValueError(f'expected a duration like "90d" or "forever", got {value!r}')
    return duration_value(value)


def _jitter(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 0.5:
        raise ValueError(f"expected a fraction between 0 and 0.5, got {value!r}")
    return float(value)


def _severity(value: Any) -> Severity:
    if not isinstance(value, str):
        raise ValueError(f"expected one of info, warning, critical, got {value!r}")
    return Severity.parse(value)


def _schedule(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'expected a schedule like "08:00" or "every 1h", got {value!r}')
    from daemon.util.schedule import parse_schedule  # here: only digest channels have a schedule

    parse_schedule(value)
    return value


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: only digest channels name a time zone

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {value!r} (expected e.g. 'Europe/London')") from None
    return str(value)


def _feed_interval(value: Any) -> float | Literal["auto"]:
    if value == "auto":
        return "auto"
    try:
        return duration_value(value)
    except ValueError:
        if isinstance(value, str):
            raise
        raise ValueError(f'expected a duration like "5m" or "auto", got {value!r}') from None


def _backfill(value: Any) -> float | None:
    if value is False:
        return None
    if value is True or value == "all":
        return math.inf
    if not isinstance(value, str):
        raise ValueError(f'expected a duration like "24h", "all" or false, got {value!r}')
    return duration_value(value)


# -- sections --------------------------------------------------------------------------------------


class DaemonTable(Section, frozen=True):
    rules_dir: Annotated[Path, Relative()] = Path("rules")
    log_level: Annotated[str, Parse(_log_level)] = "info"
    grace_period: Duration = DEFAULT_GRACE


class StoreConfig(Section, frozen=True):
    path: Annotated[Path, Relative()] = Path("var/feedwatch.db")
    retention: Annotated[float | None, Parse(_retention)] = DEFAULT_RETENTION
    max_size: Size | None = None
    busy_timeout: Duration = 5.0


class PollingConfig(Section, frozen=True):
    interval: Duration = DEFAULT_INTERVAL
    min_interval: Duration = DEFAULT_MIN_INTERVAL
    max_backoff: Duration = 6 * 3600.0
    jitter: Annotated[float, Parse(_jitter)] = 0.1  # fraction of the interval
    max_concurrency: AtLeastOne = 16
    per_host: AtLeastOne = 2
    connect_timeout: Duration = 10.0
    read_timeout: Duration = 20.0
    total_timeout: Duration = 60.0
    max_bytes: Size = DEFAULT_MAX_BYTES
    max_redirects: AtLeastZero = 5
    ca_bundle: Annotated[str, Relative(as_str=True)] | None = None
    fail_alert_after: AtLeastOne = 5
    fail_alert_after_time: Duration = 6 * 3600.0
    status_fail_threshold: Duration = 3600.0  # `status` exits 1 when a feed failed longer than this
    parse_workers: AtLeastZero = 0  # processes for the fast parse path; 0 parses in a thread
    parse_timeout: Duration = 10.0  # a feedparser fallback running longer fails its feed
    parse_memory: Size = 256 * 1024 * 1024  # ... and so does one needing more memory than this
    allow_private: bool = False  # feeds may reach RFC 1918 / ULA / CGNAT addresses

    def __post_init__(self) -> None:
        if self.interval < self.min_interval:
            raise FieldError("interval", f"is below min_interval ({self.min_interval:g}s)")


class AlertConfig(Section, frozen=True):
    default_channels: tuple[str, ...] = ("console",)
    ops_channels: tuple[str, ...] = ()
    story_window: Duration = 48 * 3600.0
    story_similarity: float = 88.0
    storm_limit: AtLeastOne = 10
    storm_window: Duration = 600.0
    # Alerts at or above this severity are never held by storm control: they go out at once.
    storm_exempt: Annotated[Severity, Parse(_severity)] = Severity.CRITICAL
    max_attempts: AtLeastOne = 12
    retry_base: Duration = 10.0
    retry_cap: Duration = 3600.0
    outbox_wait: Duration = DEFAULT_OUTBOX_WAIT


def _listen(value: Any) -> str:
    """``host:port`` (``[v6addr]:port`` for IPv6) for the metrics endpoint."""
    text = value if isinstance(value, str) else ""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected "HOST:PORT" such as "127.0.0.1:9464", got {value!r}')
    return text


class MetricsConfig(Section, frozen=True):
    """``[metrics]``: off unless ``listen`` is set."""

    listen: Annotated[str, Parse(_listen)] | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class FeedTable(Section, frozen=True):
    """One ``[[feeds]]`` table as written."""

    url: str
    name: str | None = None
    interval: Annotated[float | Literal["auto"], Parse(_feed_interval)] | None = None
    backfill: Annotated[float | None, Parse(_backfill)] = None
    tags: tuple[str, ...] = ()
    expect_update: Duration | None = None
    headers: StringTable = msgspec.field(default_factory=dict)
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    enabled: bool = True
    allow_private: bool | None = None  # None: [polling] allow_private


class FeedConfig(Section, frozen=True):
    name: str
    url: str  # absolute http(s)/file URL
    interval: float | None = None  # None: the global default; see `auto`
    auto_interval: bool = False
    backfill: float | None = None  # seconds; math.inf for "all"; None: no backfill
    tags: tuple[str, ...] = ()
    expect_update: float | None = None
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    enabled: bool = True
    allow_private: bool = False  # may reach private addresses (see daemon.intake.netguard)
    source: str = ""  # the file that defined it


class ChannelTable(Section, frozen=True):
    """The keys every ``[channels.NAME]`` table takes besides its type's own settings."""

    type: str
    min_severity: Annotated[Severity, Parse(_severity)] = Severity.INFO
    mode: Literal["immediate", "digest"] = "immediate"
    schedule: Annotated[str, Parse(_schedule)] | None = None
    timezone: Annotated[str, Parse(_timezone)] = "UTC"
    concurrency: AtLeastOne = 4

    def __post_init__(self) -> None:
        if self.mode == "digest" and not self.schedule:
            raise FieldError("schedule", 'a digest channel needs a schedule like "08:00" or "every 1h"')


class ChannelConfig(Section, frozen=True):
    name: str
    type: str
    # The channel type's own settings struct; None when its secrets were not read (operator commands).
    settings: msgspec.Struct | None
    min_severity: Severity = Severity.INFO
    mode: Literal["immediate", "digest"] = "immediate"
    schedule: str | None = None
    timezone: str = "UTC"
    concurrency: int = 4


class Config(Section, frozen=True):
    path: Path
    rules_dir: Path
    log_level: str
    grace_period: float
    store: StoreConfig
    polling: PollingConfig
    alerts: AlertConfig
    feeds: tuple[FeedConfig, ...]
    channels: Mapping[str, ChannelConfig]
    metrics: MetricsConfig = MetricsConfig()

    @property
    def base_dir(self) -> Path:
        return self.path.parent
