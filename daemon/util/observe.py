"""What the daemon reports as it works, for metrics: a small interface with a do-nothing default.

Pollers, the outbox worker and the service call these hooks; the Prometheus exporter
(:mod:`daemon.service.metrics`) implements them when ``[metrics] listen`` is set. Keeping the hooks
here, with no dependency, lets the I/O layers report without importing the exporter or its library.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def polled(self, feed: str, *, ok: bool, new_items: int = 0) -> None:
        """One poll of ``feed`` ended (ok: 200 or 304; otherwise it failed)."""

    def scored(self, seconds: float, items: int) -> None:
        """The matcher scored ``items`` items of one poll in ``seconds``."""

    def alerted(self, rule: str, severity: str, *, silenced: bool) -> None:
        """An alert was recorded (``rule`` is ``@ops`` for operator alerts about feeds)."""

    def delivery(self, channel: str, outcome: str) -> None:
        """A delivery attempt ended: ``delivered``, ``retry`` or ``dead``."""

    def reloaded(self, *, ok: bool) -> None:
        """A reload ended; not ok when the new config or a rule file was rejected."""


class NullObserver:
    """Reports nowhere (metrics off)."""

    def polled(self, feed: str, *, ok: bool, new_items: int = 0) -> None:
        pass

    def scored(self, seconds: float, items: int) -> None:
        pass

    def alerted(self, rule: str, severity: str, *, silenced: bool) -> None:
        pass

    def delivery(self, channel: str, outcome: str) -> None:
        pass

    def reloaded(self, *, ok: bool) -> None:
        pass


NULL_OBSERVER: Observer = NullObserver()
