"""The one place channel type names (``type = "email"`` in config.toml) map to implementations.

Each channel module declares its :class:`~daemon.notify.base.ChannelType` (its settings struct and
factory) once; this table lists them. The config loader and the service both read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from daemon.errors import ConfigError
from daemon.notify import console, email, slack, webhook
from daemon.notify.base import Channel, ChannelType

CHANNEL_TYPES: Mapping[str, ChannelType[Any]] = {
    t.name: t for t in (console.CHANNEL, email.CHANNEL, slack.CHANNEL, webhook.CHANNEL)
}
SETTINGS_TYPES: Mapping[str, type[msgspec.Struct]] = {name: t.settings for name, t in CHANNEL_TYPES.items()}


def build_channel(name: str, type_: str, settings: object, *, http: httpx.AsyncClient) -> Channel:
    """A channel of ``type_`` named ``name``; unknown types and mismatched settings are ConfigErrors."""
    kind = CHANNEL_TYPES.get(type_)
    if kind is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ConfigError(f"unknown channel type {type_!r} (expected one of {known})", key=f"channels.{name}.type")
    return kind.create(name, settings, http)
