"""The sd_notify protocol (READY, STATUS, RELOADING, STOPPING, WATCHDOG) without libsystemd.

Every call is a no-op outside systemd and none raises: telling the service manager how we are must
never be the reason the daemon falls over.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import structlog

log = structlog.get_logger(__name__)

SEND_TIMEOUT: Final = 1.0
"""Seconds a datagram may wait for room in systemd's socket buffer before we give up on it."""


def _clean(text: str) -> str:
    """One protocol line: fields are newline-separated, so control characters would forge new ones."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _socket_address(raw: str) -> bytes | None:
    """``$NOTIFY_SOCKET`` as an AF_UNIX address; ``@name`` is Linux's abstract namespace (leading NUL)."""
    if raw.startswith("/"):
        return os.fsencode(raw)
    if raw.startswith("@") and len(raw) > 1:
        return b"\0" + os.fsencode(raw[1:])
    return None  # e.g. systemd's "vsock:" form, which a service on the host never receives


class Notifier:
    """Talks to the service manager over ``$NOTIFY_SOCKET``.

    Build it with :meth:`from_env`. Each method returns True when the datagram was handed to the
    kernel, False when notification is off (no ``$NOTIFY_SOCKET``) or sending failed; the first
    failure is logged as a warning, later ones at debug level so a vanished socket cannot flood the
    journal.
    """

    def __init__(
        self,
        notify_socket: str | None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
    ) -> None:
        self._raw_socket = notify_socket or None
        self._address = _socket_address(notify_socket) if notify_socket else None
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._warned = False
        if notify_socket and self._address is None:
            log.warning("notify_socket_unsupported", notify_socket=notify_socket)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET"),
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to talk to."""
        return self._address is not None

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete (``READY=1``); also sent again to end a reload."""
        return self._send({"READY": "1", "STATUS": status})

    def status(self, text: str) -> bool:
        """Free-form one-line state shown by ``systemctl status``."""
        return self._send({"STATUS": text})

    def reloading(self, status: str | None = None) -> bool:
        """A reload has begun; systemd waits for the next :meth:`ready` to call it finished."""
        # MONOTONIC_USEC lets systemd match this RELOADING=1 to the reload it requested and
        # tell a stale message from a fresh one (required by Type=notify-reload, harmless before).
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send({"RELOADING": "1", "MONOTONIC_USEC": str(usec), "STATUS": status})

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun (``STOPPING=1``)."""
        return self._send({"STOPPING": "1", "STATUS": status})

    def watchdog(self) -> bool:
        """Keep-alive ping (``WATCHDOG=1``); see :func:`watchdog_loop` for who should send it."""
        return self._send({"WATCHDOG": "1"})

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before a start/stop/reload timeout (e.g. a long migration)."""
        return self._send({"EXTEND_TIMEOUT_USEC": str(max(0, round(seconds * 1_000_000)))})

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of ``WatchdogSec=``), or None when no watchdog is ours to feed."""
        if not self.enabled or not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            # WATCHDOG_PID names the process systemd expects pings from; a child that inherited
            # our environment must not feed (and so mask) its parent's watchdog.
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 1_000_000 / 2

    def _send(self, fields: Mapping[str, str | None]) -> bool:
        if self._address is None:
            return False
        message = "\n".join(f"{key}={_clean(value)}" for key, value in fields.items() if value is not None)
        try:
            # A socket per message, as libsystemd does: a handful of datagrams a minute, nothing to
            # close at shutdown, and a socket systemd re-created since the last send just works.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Blocking but bounded: a full systemd queue must not wedge the event loop.
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("sd_notify_failed", notify_socket=self._raw_socket, error=str(exc))
            else:
                log.debug("sd_notify_failed", notify_socket=self._raw_socket, error=str(exc))
            return False
        return True


async def watchdog_loop(notifier: Notifier, *, interval: float, healthy: Callable[[], bool]) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while the event loop turns and ``healthy()`` holds.

    The pings come from a coroutine on the daemon's own event loop, never from a helper thread:
    if a blocking call or a deadlock stalls the loop, this coroutine stalls with it, the pings stop,
    and systemd kills and restarts the daemon after ``WatchdogSec=``. A thread would keep pinging a
    wedged daemon and hide exactly the failure the watchdog exists to catch. ``healthy()`` adds the
    checks a turning loop cannot prove (e.g. "the scheduler polled recently"); it must be cheap and
    non-blocking. Returns at once when ``notifier`` is disabled; runs until cancelled otherwise.
    """
    if interval <= 0:
        raise ValueError(f"watchdog interval must be positive, got {interval!r}")
    if not notifier.enabled:
        return
    loop = asyncio.get_running_loop()
    was_healthy = True
    while True:
        try:
            ok = bool(healthy())
        except Exception as exc:  # a broken health check counts as unhealthy, never kills the loop
            log.warning("watchdog_health_check_failed", error=str(exc))
            ok = False
        if ok:
            notifier.watchdog()
            if not was_healthy:
                log.info("watchdog_resumed")
        elif was_healthy:
            log.warning("watchdog_withheld", reason="health check failed")
        was_healthy = ok
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lag = loop.time() - due
        if lag > interval:
            # We woke far too late: something blocked the loop. Said once per stall, it points the
            # operator at the cause before the watchdog (if it got that far) restarts the daemon.
            log.warning("event_loop_stalled", seconds=round(lag + interval, 3))


def format_status(
    *,
    feeds: int,
    failing: int,
    outbox: int,
    last_alert: datetime | None,
    now: datetime | None = None,
) -> str:
    """One-line ``STATUS=``, e.g. "polling 120 feeds, 3 failing, outbox 0, last alert 12:04".

    The time is shown in ``now``'s zone when both are aware, else as ``last_alert`` carries it; give
    ``now`` to add the date when the last alert was not today.
    """
    noun = "feed" if feeds == 1 else "feeds"
    if last_alert is None:
        when = "none"
    else:
        shown = last_alert
        if now is not None and now.tzinfo is not None and last_alert.tzinfo is not None:
            shown = last_alert.astimezone(now.tzinfo)
        same_day = now is None or shown.date() == now.date()
        when = shown.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    return f"polling {feeds} {noun}, {failing} failing, outbox {outbox}, last alert {when}"
