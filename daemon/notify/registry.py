"""The one place channel type names (``type = "email"`` in config.toml) map to implementations.

Each channel module declares its :class:`~daemon.notify.base.ChannelType` (its settings struct and
factory) once, as ``CHANNEL``; ``CHANNEL_MODULES`` below names the module of each type. A channel's
module is imported only when a channel of its type is configured (or a type's settings are asked for),
so a library only one channel needs costs nothing to everyone else: ``status`` never imports aiosmtplib.

Adding a channel type (an Apprise channel, say): write ``daemon/notify/<type>.py`` with its settings,
its ``Channel`` and ``CHANNEL = ChannelType("<type>", Settings, build)``, importing its library (apprise)
at the top of that module as usual; then add one line to ``CHANNEL_MODULES``. Nothing else imports the
module, so the library loads only for configs that use the type (a type that posts through the shared
httpx client says ``http=True``: that client is made only when such a channel is configured). Optional
parts that are not channels (a metrics endpoint, say) follow the same rule: import the library inside
the code path that runs only when the part is configured, never at the top of a module the daemon
always imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from daemon.errors import ConfigError
from daemon.notify.base import Channel, ChannelType

if TYPE_CHECKING:
    import httpx

CHANNEL_MODULES: Mapping[str, str] = {
    "console": "daemon.notify.console",
    "email": "daemon.notify.email",
    "slack": "daemon.notify.slack",
    "webhook": "daemon.notify.webhook",
    "apprise": "daemon.notify.apprise_channel",
}


class _Types(Mapping[str, ChannelType[Any]]):
    """Type name -> ChannelType, importing a channel's module the first time its type is looked up."""

    def __getitem__(self, name: str) -> ChannelType[Any]:
        kind: ChannelType[Any] = importlib.import_module(CHANNEL_MODULES[name]).CHANNEL
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter(CHANNEL_MODULES)

    def __len__(self) -> int:
        return len(CHANNEL_MODULES)


class _Settings(Mapping[str, type[msgspec.Struct]]):
    def __getitem__(self, name: str) -> type[msgspec.Struct]:
        return CHANNEL_TYPES[name].settings

    def __iter__(self) -> Iterator[str]:
        return iter(CHANNEL_MODULES)

    def __len__(self) -> int:
        return len(CHANNEL_MODULES)


CHANNEL_TYPES: Mapping[str, ChannelType[Any]] = _Types()
SETTINGS_TYPES: Mapping[str, type[msgspec.Struct]] = _Settings()


def build_channel(name: str, type_: str, settings: object, *, http: httpx.AsyncClient | None) -> Channel:
    """A channel of ``type_`` named ``name``; unknown types and mismatched settings are ConfigErrors."""
    kind = CHANNEL_TYPES.get(type_)
    if kind is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ConfigError(f"unknown channel type {type_!r} (expected one of {known})", key=f"channels.{name}.type")
    return kind.create(name, settings, http)
