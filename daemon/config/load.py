"""Loading ``config.toml`` (plus ``feeds.d/*.toml``) into a :class:`~daemon.config.model.Config`.

Every mistake in every file is collected and raised together as one ConfigError, each line as
``file:line:column: key.path: what was expected, what was found`` with a "did you mean" for typos.
Past :func:`load_config` no code reads raw dicts.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from daemon.config.convert import FAIL, Problems, Reader
from daemon.config.model import (
    AlertConfig,
    ChannelConfig,
    ChannelTable,
    Config,
    DaemonTable,
    FeedConfig,
    FeedTable,
    MetricsConfig,
    PollingConfig,
    StoreConfig,
)
from daemon.errors import ConfigError
from daemon.notify.console import ConsoleSettings
from daemon.notify.registry import CHANNEL_TYPES
from daemon.util.startup import no_gc
from daemon.util.tomlpos import KeyPath, close_match, syntax_position
from daemon.util.urls import http_url_problem, missing_scheme

ENV_CONFIG = "FEEDWATCH_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
ROOT_KEYS = ("daemon", "store", "polling", "alerts", "metrics", "channels", "feeds", "feeds_dir")


def find_config(cli_path: str | Path | None) -> Path:
    """``--config``, then ``$FEEDWATCH_CONFIG``, then ``./config.toml``."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_CONFIG


def read_toml(path: Path, problems: Problems | None = None) -> dict[str, Any]:
    """The parsed file; a missing, unreadable or malformed file is a ConfigError with its position."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = syntax_position(exc, text)
        raise ConfigError(f"TOML syntax error: {message}", path=path, line=line, column=column) from None
    if problems is not None:
        problems.texts[path] = text
    return data


def load_config(path: Path | str, *, secrets: bool = True) -> Config:
    """Load and validate; ``secrets=False`` checks secret keys but does not read their values."""
    with no_gc():  # many objects, no garbage: see daemon.util.startup
        return _load_config(path, secrets=secrets)


def _load_config(path: Path | str, *, secrets: bool) -> Config:
    path = Path(path).absolute()
    problems = Problems()
    data = read_toml(path, problems)
    root = Reader(path, problems, secrets=secrets)
    for key in data:
        if key not in ROOT_KEYS:
            root.problem((key,), f"unknown key{close_match(key, ROOT_KEYS)}")

    daemon = root.value(DaemonTable, data.get("daemon", {}), ("daemon",))
    store = root.value(StoreConfig, data.get("store", {}), ("store",))
    polling = root.value(PollingConfig, data.get("polling", {}), ("polling",))
    alerts = root.value(AlertConfig, data.get("alerts", {}), ("alerts",))
    metrics = root.value(MetricsConfig, data.get("metrics", {}), ("metrics",))
    channels = _channels(root, data.get("channels", {}))
    feeds = _feeds(root, data, polling if isinstance(polling, PollingConfig) else None)
    if isinstance(alerts, AlertConfig) and channels is not None:
        _check_channel_names(root, alerts, channels)

    error = problems.error()
    if error is not None:
        raise error
    assert isinstance(daemon, DaemonTable)
    assert isinstance(store, StoreConfig)
    assert isinstance(polling, PollingConfig)
    assert isinstance(alerts, AlertConfig)
    assert isinstance(metrics, MetricsConfig)
    assert channels is not None
    return Config(
        path=path,
        rules_dir=root.resolve(str(daemon.rules_dir)),
        log_level=daemon.log_level,
        grace_period=daemon.grace_period,
        store=StoreConfig(
            path=root.resolve(str(store.path)),
            retention=store.retention,
            max_size=store.max_size,
            busy_timeout=store.busy_timeout,
        ),
        polling=polling,
        alerts=alerts,
        feeds=feeds,
        channels=channels,
        metrics=metrics,
    )


def _channels(root: Reader, data: Any) -> dict[str, ChannelConfig] | None:
    """Each channel's common keys and its type's own settings, read from the same table."""
    if not isinstance(data, dict):
        root.problem(("channels",), f"expected a table, got {type(data).__name__}")
        return None
    out: dict[str, ChannelConfig] = {}
    ok = True
    for name, body in data.items():
        where: KeyPath = ("channels", name)
        kind = CHANNEL_TYPES.get(str(body.get("type"))) if isinstance(body, dict) else None
        common = root.table(ChannelTable, body, where, check_unknown=False)
        if not isinstance(common, ChannelTable):
            ok = False
            continue
        if kind is None:
            root.problem(
                (*where, "type"), f"unknown channel type {common.type!r} (known: {', '.join(sorted(CHANNEL_TYPES))})"
            )
            ok = False
            continue
        own = {k: v for k, v in body.items() if k not in _keys(ChannelTable)}
        reader = Reader(root.file, root.problems, secrets=root.secrets)
        settings = reader.table(kind.settings, own, where, extra_keys=list(_keys(ChannelTable)))
        if settings is FAIL:
            ok = False
            continue
        assert settings is None or isinstance(settings, msgspec.Struct)
        out[name] = ChannelConfig(
            name=name,
            type=common.type,
            settings=settings,
            min_severity=common.min_severity,
            mode=common.mode,
            schedule=common.schedule,
            timezone=common.timezone,
            concurrency=common.concurrency,
        )
    if "console" not in out:
        out["console"] = ChannelConfig(name="console", type="console", settings=ConsoleSettings())
    return out if ok else None


def _keys(cls: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(cls))


def _check_channel_names(root: Reader, alerts: AlertConfig, channels: dict[str, ChannelConfig]) -> None:
    known = ", ".join(sorted(channels)) or "none"
    for key, names in (("default_channels", alerts.default_channels), ("ops_channels", alerts.ops_channels)):
        for i, name in enumerate(names):
            if name not in channels:
                root.problem(("alerts", key, i), f"unknown channel {name!r} (configured: {known})")


def _feeds(root: Reader, data: dict[str, Any], polling: PollingConfig | None) -> tuple[FeedConfig, ...]:
    """Feeds of config.toml, then of feeds.d/*.toml in name order; URLs and names unique across files."""
    sources: list[tuple[Reader, Any]] = [(root, data.get("feeds", []))]
    feeds_dir_raw = data.get("feeds_dir", "feeds.d")
    if not isinstance(feeds_dir_raw, str):
        root.problem(("feeds_dir",), f"expected a path, got {feeds_dir_raw!r}")
        feeds_dir_raw = "feeds.d"
    feeds_dir = root.resolve(feeds_dir_raw)
    if feeds_dir.is_dir():
        for extra in sorted(feeds_dir.glob("*.toml")):
            try:
                extra_data = read_toml(extra, root.problems)
            except ConfigError as exc:
                root.problems.errors.append(exc)
                continue
            reader = Reader(extra, root.problems, secrets=root.secrets)
            for key in extra_data:
                if key != "feeds":
                    reader.problem((key,), f"unknown key{close_match(key, ['feeds'])}")
            sources.append((reader, extra_data.get("feeds", [])))

    feeds: list[FeedConfig] = []
    seen_urls: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for reader, tables in sources:
        if not isinstance(tables, list):
            reader.problem(("feeds",), f"expected an array of [[feeds]] tables, got {type(tables).__name__}")
            continue
        for i, raw in enumerate(tables):
            where: KeyPath = ("feeds", i)
            table = reader.table(FeedTable, raw, where)
            if not isinstance(table, FeedTable):
                continue
            feed = _feed(reader, where, table, polling)
            if feed is None:
                continue
            here = f"{reader.file.name}: feeds[{i}]"
            if feed.url in seen_urls:
                reader.problem(where, f"feed URL {feed.url} is already defined at {seen_urls[feed.url]}")
            elif feed.name in seen_names:
                reader.problem(where, f"feed name {feed.name!r} is already used at {seen_names[feed.name]}")
            seen_urls.setdefault(feed.url, here)
            seen_names.setdefault(feed.name, here)
            feeds.append(feed)
    return tuple(feeds)


def _feed(reader: Reader, where: KeyPath, t: FeedTable, polling: PollingConfig | None) -> FeedConfig | None:
    url = normalise_feed_url(t.url, reader, where)
    if url is None:
        return None
    auto = t.interval == "auto"
    interval = None if isinstance(t.interval, str) else t.interval
    if interval is not None and polling is not None and interval < polling.min_interval:
        reader.problem((*where, "interval"), f"{interval:g}s is below polling.min_interval ({polling.min_interval:g}s)")
        return None
    return FeedConfig(
        name=t.name or default_feed_name(url),
        url=url,
        interval=interval,
        auto_interval=auto,
        backfill=t.backfill,
        tags=t.tags,
        expect_update=t.expect_update,
        headers=t.headers,
        username=t.username,
        password=t.password,
        token=t.token,
        enabled=t.enabled,
        allow_private=t.allow_private if t.allow_private is not None else bool(polling and polling.allow_private),
        source=str(reader.file),
    )


def normalise_feed_url(raw: str, reader: Reader, where: KeyPath) -> str | None:
    """http(s) and file URLs pass; a plain path resolves against the config file's folder."""
    parts = urlsplit(raw)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            reader.problem((*where, "url"), f"expected an absolute URL with a host, got {raw!r}")
            return None
        if (problem := http_url_problem(raw)) is not None:
            reader.problem((*where, "url"), problem)
            return None
        return raw
    if parts.scheme == "file":
        return raw
    suggestion = missing_scheme(raw)
    if suggestion and not reader.resolve(raw).exists():
        reader.problem((*where, "url"), f"{raw!r} has no scheme: did you mean {suggestion!r}?")
        return None
    if parts.scheme and len(parts.scheme) > 1:
        reader.problem((*where, "url"), f"unsupported scheme {parts.scheme!r} (use http, https, file or a path)")
        return None
    return reader.resolve(raw).as_uri()


def resolve_feed_url(raw: str, config_path: Path) -> str:
    """``raw`` as a feed URL of ``config_path`` is stored (paths become file:// URLs); ConfigError if refused."""
    problems = Problems()
    url = normalise_feed_url(raw, Reader(config_path.absolute(), problems), ("feeds", 0))
    error = problems.error()
    if error is not None:
        raise error
    assert url is not None
    return url


def default_feed_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path).stem
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{parts.netloc}{parts.path}").strip("-").lower()
    return slug[:80] or "feed"
