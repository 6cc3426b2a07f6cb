"""Typed, validated configuration, loaded once from ``config.toml`` (plus ``feeds.d/*.toml``).

Past :func:`load_config` no code reads raw dicts: every value is checked here and errors name the
file and key path (``config.toml: feeds[2].interval: expected a duration like "5m", got "fast"``).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.alerting.schedule import parse_schedule
from daemon.config.secrets import Secret, resolve_secret
from daemon.errors import ConfigError
from daemon.models import Severity
from daemon.util.durations import parse_duration, parse_size
from daemon.util.urls import missing_scheme

ENV_CONFIG = "FEEDWATCH_CONFIG"
DEFAULT_CONFIG = Path("config.toml")

DEFAULT_INTERVAL = 15 * 60.0
DEFAULT_MIN_INTERVAL = 60.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_GRACE = 20.0
DEFAULT_OUTBOX_WAIT = 30.0

T = TypeVar("T")


class Table:
    """A view of one TOML table that remembers its key path and which keys were read."""

    def __init__(self, data: Mapping[str, Any], path: str, file: Path, *, secrets: bool = True) -> None:
        self.data = data
        self.path = path
        self.file = file
        self.secrets = secrets
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, path=self.file, key=self._key(key) if key else (self.path or None))

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
        self._seen.add(key)
        if key not in self.data:
            if default is ...:
                raise self.error(key, "required value is missing")
            return default
        value = self.data[key]
        # TOML booleans are ints in Python; never accept one for the other.
        bad_bool = isinstance(value, bool) and kind in (int, float, (int, float))
        if bad_bool or not isinstance(value, kind):
            expected = what or _kind_name(kind)
            raise self.error(key, f"expected {expected}, got {_show(value)}")
        return value

    def string(self, key: str, default: Any = ...) -> Any:
        return self.get(key, str, default, "a string")

    def boolean(self, key: str, default: Any = ...) -> Any:
        return self.get(key, bool, default, "true or false")

    def integer(self, key: str, default: Any = ..., minimum: int | None = None) -> Any:
        value = self.get(key, int, default, "an integer")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (int, float), default, "a number")
        return float(value) if value is not None else None

    def str_list(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, list, default, "a list of strings")
        if value is default:
            return value
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {_show(v)}")
        return tuple(value)

    def duration(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (str, int, float), default, 'a duration like "5m"')
        if value is None:
            return None
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def size(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (str, int), default, 'a size like "10MiB"')
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def table(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, dict, default, "a table")
        if not isinstance(value, dict):
            return value
        return Table(value, self._key(key), self.file, secrets=self.secrets)

    def secret(self, key: str) -> Secret | None:
        """``key``, ``key_env``, ``key_file`` or ``key_credential``: exactly one or none."""
        sources = {s: self.get(f"{key}{s}", str, None) for s in ("", "_env", "_file", "_credential")}
        file = sources["_file"]
        if not self.secrets:
            # Operator commands (status, check, db backup) run without the service's credentials.
            return Secret("") if any(v is not None for v in sources.values()) else None
        return resolve_secret(
            value=sources[""],
            env=sources["_env"],
            file=self.resolve_path(file) if file else None,
            credential=sources["_credential"],
            key=self._key(key),
            config_path=self.file,
        )

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def done(self) -> None:
        """Reject keys nobody read: a typo must not silently fall back to a default."""
        for key in self.data:
            if key not in self._seen:
                close = difflib.get_close_matches(key, list(self._seen), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(key, f"unknown key{hint}")


def _kind_name(kind: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number", list: "a list"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


@dataclass(frozen=True, slots=True)
class FeedConfig:
    name: str
    url: str  # absolute http(s)/file URL
    interval: float | None = None  # None: the global default; see `auto`
    auto_interval: bool = False
    backfill: float | None = None  # seconds; math.inf for "all"; None: no backfill
    tags: tuple[str, ...] = ()
    expect_update: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    enabled: bool = True
    source: str = ""  # the file that defined it


@dataclass(frozen=True, slots=True)
class PollingConfig:
    interval: float = DEFAULT_INTERVAL
    min_interval: float = DEFAULT_MIN_INTERVAL
    max_backoff: float = 6 * 3600.0
    jitter: float = 0.1  # fraction of the interval
    max_concurrency: int = 16
    per_host: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    ca_bundle: str | None = None
    fail_alert_after: int = 5
    fail_alert_after_time: float = 6 * 3600.0
    status_fail_threshold: float = 3600.0  # `status` exits 1 when a feed failed longer than this
    parse_workers: int = 0  # processes for feed parsing; 0 parses in a thread


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path
    retention: float | None = 90 * 86400.0
    max_size: int | None = None
    busy_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AlertConfig:
    default_channels: tuple[str, ...] = ("console",)
    ops_channels: tuple[str, ...] = ()
    story_window: float = 48 * 3600.0
    story_similarity: float = 88.0
    storm_limit: int = 10
    storm_window: float = 600.0
    max_attempts: int = 12
    retry_base: float = 10.0
    retry_cap: float = 3600.0
    outbox_wait: float = DEFAULT_OUTBOX_WAIT


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    type: str
    settings: Any  # the channel type's own frozen settings dataclass
    min_severity: Severity = Severity.INFO
    mode: str = "immediate"  # or "digest"
    schedule: str | None = None
    timezone: str = "UTC"
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    stream: str = "stdout"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    rules_dir: Path
    log_level: str
    grace_period: float
    store: StoreConfig
    polling: PollingConfig
    alerts: AlertConfig
    feeds: tuple[FeedConfig, ...]
    channels: Mapping[str, ChannelConfig]

    @property
    def base_dir(self) -> Path:
        return self.path.parent


ChannelParser = Callable[[Table], Any]
_CHANNEL_PARSERS: dict[str, ChannelParser] = {}


def channel_parser(type_name: str) -> Callable[[ChannelParser], ChannelParser]:
    """Register the settings parser of a channel type (one place config.toml refers to)."""

    def register(fn: ChannelParser) -> ChannelParser:
        _CHANNEL_PARSERS[type_name] = fn
        return fn

    return register


@channel_parser("console")
def _console(t: Table) -> ConsoleSettings:
    stream = t.string("stream", "stdout")
    if stream not in ("stdout", "stderr"):
        raise t.error("stream", f'expected "stdout" or "stderr", got {stream!r}')
    return ConsoleSettings(stream=stream)


def _settings(t: Table, build: Callable[[], T]) -> T:
    """Run a settings dataclass's own validation and report it at this table's key path."""
    try:
        return build()
    except ValueError as exc:
        raise t.error(None, str(exc)) from None


def _one_of(t: Table, key: str, alias: str) -> str:
    if key in t.data and alias in t.data:
        raise t.error(alias, f"give either {key!r} or {alias!r}, not both")
    return alias if alias in t.data else key


@channel_parser("email")
def _email(t: Table) -> Any:
    from daemon.notify.email import EmailSettings

    # `sender`/`recipients` as documented; `from`/`to` read naturally too. One spelling per table.
    rkey = _one_of(t, "recipients", "to")
    to = t.get(rkey, (str, list), ..., "an address or a list of addresses")
    recipients = (to,) if isinstance(to, str) else t.str_list(rkey)
    skey = _one_of(t, "sender", "from")
    security = t.string("security", "starttls")
    return _settings(
        t,
        lambda: EmailSettings(
            host=t.string("host"),
            port=t.integer("port", None, minimum=1),
            security=security,
            username=t.string("username", None),
            password=t.secret("password"),
            sender=t.string(skey),
            recipients=tuple(recipients),
            timeout=t.duration("timeout", 30.0),
            helo_name=t.string("helo_name", None),
        ),
    )


@channel_parser("slack")
def _slack(t: Table) -> Any:
    from daemon.notify.slack import SlackSettings

    url = t.secret("webhook_url")
    if url is None:
        raise t.error("webhook_url", "required (or webhook_url_env / webhook_url_file / webhook_url_credential)")
    timeout = t.duration("timeout", 10.0)
    username = t.string("username", None)
    icon = t.string("icon", None)
    if not t.secrets:
        return None
    return _settings(t, lambda: SlackSettings(webhook_url=url, timeout=timeout, username=username, icon=icon))


@channel_parser("webhook")
def _webhook(t: Table) -> Any:
    from daemon.notify.webhook import WebhookSettings

    url = t.secret("url")
    if url is None:
        raise t.error("url", "required (or url_env / url_file / url_credential)")
    headers_t = t.table("headers", {})
    headers = {k: headers_t.string(k) for k in headers_t.data}
    secret = t.secret("secret")
    timeout = t.duration("timeout", 10.0)
    if not t.secrets:
        return None
    return _settings(t, lambda: WebhookSettings(url=url, secret=secret, headers=headers, timeout=timeout))


def find_config(cli_path: str | Path | None) -> Path:
    """``--config``, then ``$FEEDWATCH_CONFIG``, then ``./config.toml``."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_CONFIG


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML syntax error: {toml_error_location(exc)}", path=path) from None


def toml_error_location(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib says '... (at line 3, column 9)'; turn it into 'line 3, column 9: ...'."""
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    if m:
        return f"line {m.group(1)}, column {m.group(2)}: {msg[: m.start()].strip()}"
    return msg


def load_config(path: Path | str, *, secrets: bool = True) -> Config:
    """Load and validate; ``secrets=False`` checks secret keys but does not read their values."""
    path = Path(path).absolute()
    data = read_toml(path)
    root = Table(data, "", path, secrets=secrets)

    daemon_t = root.table("daemon", {})
    rules_dir = daemon_t.resolve_path(daemon_t.string("rules_dir", "rules"))
    log_level = daemon_t.string("log_level", "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise daemon_t.error("log_level", f"expected debug, info, warning or error, got {log_level!r}")
    grace = daemon_t.duration("grace_period", DEFAULT_GRACE)
    daemon_t.done()

    store = _store(root.table("store", {}))
    polling = _polling(root.table("polling", {}))
    channels = _channels(root.table("channels", {}))
    alerts = _alerts(root.table("alerts", {}), channels)

    feeds_list = list(root.get("feeds", list, [], "an array of [[feeds]] tables"))
    sources: list[tuple[Any, str, Path]] = [(f, f"feeds[{i}]", path) for i, f in enumerate(feeds_list)]
    root.get("feeds_dir", str, None)
    feeds_dir = root.resolve_path(root.data.get("feeds_dir", "feeds.d"))
    if feeds_dir.is_dir():
        for extra in sorted(feeds_dir.glob("*.toml")):
            extra_data = read_toml(extra)
            et = Table(extra_data, "", extra, secrets=secrets)
            for i, f in enumerate(et.get("feeds", list, [], "an array of [[feeds]] tables")):
                sources.append((f, f"feeds[{i}]", extra))
            et.done()
    root.done()

    feeds: list[FeedConfig] = []
    seen_urls: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for raw, key, file in sources:
        if not isinstance(raw, dict):
            raise ConfigError(f"expected a table, got {_show(raw)}", path=file, key=key)
        feed = _feed(Table(raw, key, file, secrets=secrets), polling)
        where = f"{file.name}: {key}"
        if feed.url in seen_urls:
            raise ConfigError(f"feed URL {feed.url} is already defined at {seen_urls[feed.url]}", path=file, key=key)
        if feed.name in seen_names:
            raise ConfigError(f"feed name {feed.name!r} is already used at {seen_names[feed.name]}", path=file, key=key)
        seen_urls[feed.url] = where
        seen_names[feed.name] = where
        feeds.append(feed)

    return Config(
        path=path,
        rules_dir=rules_dir,
        log_level=log_level,
        grace_period=grace,
        store=store,
        polling=polling,
        alerts=alerts,
        feeds=tuple(feeds),
        channels=channels,
    )


def _store(t: Table) -> StoreConfig:
    path = t.resolve_path(t.string("path", "var/feedwatch.db"))
    retention = t.get("retention", str, "90d", 'a duration like "90d" or "forever"')
    cfg = StoreConfig(
        path=path,
        retention=None if retention == "forever" else t.duration("retention", "90d"),
        max_size=t.size("max_size", None),
        busy_timeout=t.duration("busy_timeout", 5.0),
    )
    t.done()
    return cfg


def _polling(t: Table) -> PollingConfig:
    d = PollingConfig()
    cfg = PollingConfig(
        interval=t.duration("interval", d.interval),
        min_interval=t.duration("min_interval", d.min_interval),
        max_backoff=t.duration("max_backoff", d.max_backoff),
        jitter=t.number("jitter", d.jitter),
        max_concurrency=t.integer("max_concurrency", d.max_concurrency, minimum=1),
        per_host=t.integer("per_host", d.per_host, minimum=1),
        connect_timeout=t.duration("connect_timeout", d.connect_timeout),
        read_timeout=t.duration("read_timeout", d.read_timeout),
        total_timeout=t.duration("total_timeout", d.total_timeout),
        max_bytes=t.size("max_bytes", d.max_bytes),
        max_redirects=t.integer("max_redirects", d.max_redirects, minimum=0),
        ca_bundle=str(t.resolve_path(t.string("ca_bundle"))) if "ca_bundle" in t.data else None,
        fail_alert_after=t.integer("fail_alert_after", d.fail_alert_after, minimum=1),
        fail_alert_after_time=t.duration("fail_alert_after_time", d.fail_alert_after_time),
        status_fail_threshold=t.duration("status_fail_threshold", d.status_fail_threshold),
        parse_workers=t.integer("parse_workers", d.parse_workers, minimum=0),
    )
    if not 0.0 <= cfg.jitter <= 0.5:
        raise t.error("jitter", f"expected a fraction between 0 and 0.5, got {cfg.jitter}")
    if cfg.interval < cfg.min_interval:
        raise t.error("interval", f"is below min_interval ({cfg.min_interval:g}s)")
    t.done()
    return cfg


def _alerts(t: Table, channels: Mapping[str, ChannelConfig]) -> AlertConfig:
    d = AlertConfig()
    cfg = AlertConfig(
        default_channels=t.str_list("default_channels", d.default_channels),
        ops_channels=t.str_list("ops_channels", d.ops_channels),
        story_window=t.duration("story_window", d.story_window),
        story_similarity=t.number("story_similarity", d.story_similarity),
        storm_limit=t.integer("storm_limit", d.storm_limit, minimum=1),
        storm_window=t.duration("storm_window", d.storm_window),
        max_attempts=t.integer("max_attempts", d.max_attempts, minimum=1),
        retry_base=t.duration("retry_base", d.retry_base),
        retry_cap=t.duration("retry_cap", d.retry_cap),
        outbox_wait=t.duration("outbox_wait", d.outbox_wait),
    )
    for key, names in (("default_channels", cfg.default_channels), ("ops_channels", cfg.ops_channels)):
        for i, name in enumerate(names):
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none"
                raise t.error(f"{key}[{i}]", f"unknown channel {name!r} (configured: {known})")
    t.done()
    return cfg


def _channels(t: Table) -> dict[str, ChannelConfig]:
    out: dict[str, ChannelConfig] = {}
    for name in list(t.data):
        ct = t.table(name)
        type_ = ct.string("type")
        parser = _CHANNEL_PARSERS.get(type_)
        if parser is None:
            known = ", ".join(sorted(_CHANNEL_PARSERS))
            raise ct.error("type", f"unknown channel type {type_!r} (known: {known})")
        min_sev = ct.string("min_severity", "info")
        try:
            severity = Severity.parse(min_sev)
        except ValueError as exc:
            raise ct.error("min_severity", str(exc)) from None
        mode = ct.string("mode", "immediate")
        if mode not in ("immediate", "digest"):
            raise ct.error("mode", f'expected "immediate" or "digest", got {mode!r}')
        schedule = ct.string("schedule", None)
        if mode == "digest" and not schedule:
            raise ct.error("schedule", 'a digest channel needs a schedule like "08:00" or "every 1h"')
        if schedule:
            try:
                parse_schedule(schedule)
            except ValueError as exc:
                raise ct.error("schedule", str(exc)) from None
        zone = ct.string("timezone", "UTC")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ct.error("timezone", f"unknown time zone {zone!r} (expected e.g. 'Europe/London')") from None
        cfg = ChannelConfig(
            name=name,
            type=type_,
            settings=parser(ct),
            min_severity=severity,
            mode=mode,
            schedule=schedule,
            timezone=zone,
            concurrency=ct.integer("concurrency", 4, minimum=1),
        )
        ct.done()
        out[name] = cfg
    if "console" not in out:
        out["console"] = ChannelConfig(name="console", type="console", settings=ConsoleSettings())
    return out


def _feed(t: Table, polling: PollingConfig) -> FeedConfig:
    url = normalise_feed_url(t.string("url"), t)
    interval_raw = t.get("interval", (str, int, float), None, 'a duration like "5m" or "auto"')
    auto = interval_raw == "auto"
    interval = None if auto or interval_raw is None else t.duration("interval")
    if interval is not None and interval < polling.min_interval:
        raise t.error("interval", f"{interval:g}s is below polling.min_interval ({polling.min_interval:g}s)")
    backfill_raw = t.get("backfill", (str, bool), None, 'a duration like "24h", "all" or false')
    backfill: float | None
    if backfill_raw in (None, False):
        backfill = None
    elif backfill_raw in ("all", True):
        backfill = float("inf")
    else:
        backfill = t.duration("backfill")
    headers_t = t.table("headers", {})
    headers = {k: headers_t.string(k) for k in headers_t.data}
    cfg = FeedConfig(
        name=t.string("name", None) or default_feed_name(url),
        url=url,
        interval=interval,
        auto_interval=auto,
        backfill=backfill,
        tags=t.str_list("tags", ()),
        expect_update=t.duration("expect_update", None),
        headers=headers,
        username=t.string("username", None),
        password=t.secret("password"),
        token=t.secret("token"),
        enabled=t.boolean("enabled", True),
        source=str(t.file),
    )
    t.done()
    return cfg


def normalise_feed_url(raw: str, t: Table) -> str:
    """http(s) and file URLs pass; a plain path resolves against the config file's folder."""
    parts = urlsplit(raw)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise t.error("url", f"expected an absolute URL with a host, got {raw!r}")
        return raw
    if parts.scheme == "file":
        return raw
    suggestion = missing_scheme(raw)
    if suggestion and not t.resolve_path(raw).exists():
        raise t.error("url", f"{raw!r} has no scheme: did you mean {suggestion!r}?")
    if parts.scheme and len(parts.scheme) > 1:
        raise t.error("url", f"unsupported scheme {parts.scheme!r} (use http, https, file or a path)")
    return t.resolve_path(raw).as_uri()


def default_feed_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path).stem
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{parts.netloc}{parts.path}").strip("-").lower()
    return slug[:80] or "feed"
