"""The one interface every delivery channel implements.

Contract (checked by ``tests/notify/test_channels_contract.py`` for every channel):

* ``send(alert)`` returns only once the receiver has *accepted* the alert (SMTP 250, HTTP 2xx).
* It is safe to call twice with the same alert: receivers can deduplicate on ``alert.alert_id``
  (email ``Message-ID``, webhook ``Idempotency-Key``), because after a crash the outbox re-sends.
* Failures raise :class:`~daemon.errors.TransientDeliveryError` (5xx, 421/4xx SMTP, 429, timeout,
  refused connection; ``retry_after`` set when the receiver asked for a delay) or
  :class:`~daemon.errors.PermanentDeliveryError` (other 4xx, 5xx SMTP, invalid payload). Nothing else
  escapes: third-party errors are wrapped with ``raise ... from exc``.
* Secrets (passwords, webhook URLs, HMAC keys) never appear in exceptions or logs.
* ``aclose()`` releases connections; the channel is not used afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import msgspec

from daemon.errors import ConfigError
from daemon.models import Alert

if TYPE_CHECKING:
    import httpx

S = TypeVar("S", bound=msgspec.Struct)


def log_delivered(channel: str, alert_id: str, *, target: str, started: float, **extra: object) -> None:
    """The one ``channel_delivered`` event every channel logs: ``target`` must be redacted already."""
    import structlog  # here, not at the top: `status` and `check` import this module and must stay light

    structlog.get_logger(__name__).debug(
        "channel_delivered",
        channel=channel,
        alert_id=alert_id,
        target=target,
        **extra,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelType(Generic[S]):
    """What ``type = "..."`` in config.toml names: the channel's own settings struct and its factory.

    Each channel module declares one; ``daemon.notify.registry`` lists them. The config loader reads a
    channel's table into ``settings`` (unknown keys rejected, durations and secrets resolved).
    """

    name: str
    settings: type[S]
    build: Callable[[str, S, httpx.AsyncClient], Channel]
    http: bool = False  # ``build`` uses the shared HTTP client (Slack, webhook): made only when one is configured

    def create(self, name: str, settings: Any, http: httpx.AsyncClient | None) -> Channel:
        if not isinstance(settings, self.settings):
            got = type(settings).__name__
            raise ConfigError(
                f"a {self.name!r} channel needs {self.settings.__name__}, got {got}", key=f"channels.{name}"
            )
        # A channel type without ``http`` ignores the client, and is given none (httpx is not even imported).
        return self.build(name, settings, http)  # type: ignore[arg-type]
