"""The one place channel type names (``type = "email"`` in config.toml) map to implementations."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

import httpx

from daemon.errors import ConfigError
from daemon.notify.base import Channel
from daemon.notify.email import EmailChannel, EmailSettings
from daemon.notify.slack import SlackChannel, SlackSettings
from daemon.notify.webhook import WebhookChannel, WebhookSettings

T = TypeVar("T")
ChannelFactory = Callable[[str, object, httpx.AsyncClient], Channel]


def _expect(type_: str, settings: object, cls: type[T]) -> T:
    if not isinstance(settings, cls):
        raise ConfigError(f"a {type_!r} channel needs {cls.__name__}, got {type(settings).__name__}", key="channels")
    return settings


def _email(name: str, settings: object, http: httpx.AsyncClient) -> Channel:
    return EmailChannel(name, _expect("email", settings, EmailSettings))


def _slack(name: str, settings: object, http: httpx.AsyncClient) -> Channel:
    return SlackChannel(name, _expect("slack", settings, SlackSettings), http)


def _webhook(name: str, settings: object, http: httpx.AsyncClient) -> Channel:
    return WebhookChannel(name, _expect("webhook", settings, WebhookSettings), http)


def _console(name: str, settings: object, http: httpx.AsyncClient) -> Channel:
    # Imported on use: the console channel lives in its own module and has no HTTP client.
    try:
        module = importlib.import_module("daemon.notify.console")
    except ImportError as exc:
        raise ConfigError("the console channel is not available in this build", key="channels") from exc
    channel = module.ConsoleChannel(name, settings)
    if not isinstance(channel, Channel):
        raise TypeError("ConsoleChannel does not implement the Channel protocol")
    return channel


CHANNEL_TYPES: dict[str, ChannelFactory] = {
    "console": _console,
    "email": _email,
    "slack": _slack,
    "webhook": _webhook,
}

# Settings class per type, for the config loader (console settings are owned by its module).
SETTINGS_TYPES: dict[str, type] = {
    "email": EmailSettings,
    "slack": SlackSettings,
    "webhook": WebhookSettings,
}


def build_channel(name: str, type_: str, settings: object, *, http: httpx.AsyncClient) -> Channel:
    """A channel of ``type_`` named ``name``; unknown types and mismatched settings are ConfigErrors."""
    factory = CHANNEL_TYPES.get(type_)
    if factory is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ConfigError(f"unknown channel type {type_!r} (expected one of {known})", key=f"channels.{name}.type")
    return factory(name, settings, http)
