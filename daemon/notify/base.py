"""The one interface every delivery channel implements.

Contract (checked by ``tests/test_channels_contract.py`` for every channel):

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

from typing import Protocol, runtime_checkable

from daemon.models import Alert


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...

    async def aclose(self) -> None: ...
