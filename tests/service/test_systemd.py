"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.service.systemd import Notifier, format_status, watchdog_loop
from tests.conftest import cli_env


@dataclass
class FakeManager:
    """The receiving end of $NOTIFY_SOCKET, as systemd would hold it."""

    env_value: str
    sock: socket.socket

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def recv_with_pid(self) -> tuple[str, int]:
        """A datagram and the sender's PID from SCM_CREDENTIALS, which NotifyAccess=main checks."""
        self.sock.settimeout(2.0)
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("3i", payload[: struct.calcsize("3i")])
                return data.decode(), pid
        raise AssertionError("no credentials attached")

    def assert_silent(self) -> None:
        self.sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            self.sock.recv(4096)


def _bind(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(address)
    return sock


@pytest.fixture(params=["path", "abstract"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeManager]:
    """A listening notify socket, on the filesystem or in the abstract namespace."""
    if request.param == "path":
        path = tmp_path / "notify.sock"
        sock = _bind(str(path))
        env_value = str(path)
    else:
        name = f"feedwatch-test-{uuid.uuid4().hex}"
        sock = _bind(b"\0" + name.encode())
        env_value = "@" + name
    try:
        yield FakeManager(env_value, sock)
    finally:
        sock.close()


def _notifier(manager: FakeManager, **env: str) -> Notifier:
    return Notifier.from_env({"NOTIFY_SOCKET": manager.env_value, **env})


class TestMessages:
    def test_ready_plain(self, manager: FakeManager) -> None:
        """ready() sends exactly READY=1."""
        assert _notifier(manager).ready() is True
        assert manager.recv() == "READY=1"

    def test_ready_with_status(self, manager: FakeManager) -> None:
        """ready(status) sends READY=1 and STATUS in one datagram."""
        _notifier(manager).ready("polling 3 feeds")
        assert manager.recv() == "READY=1\nSTATUS=polling 3 feeds"

    def test_status(self, manager: FakeManager) -> None:
        """status(text) sends exactly STATUS=text."""
        _notifier(manager).status("polling 120 feeds, 3 failing, outbox 0, last alert 12:04")
        assert manager.recv() == "STATUS=polling 120 feeds, 3 failing, outbox 0, last alert 12:04"

    def test_status_cannot_inject_fields(self, manager: FakeManager) -> None:
        """A newline in status text cannot smuggle a second field such as READY=1 or MAINPID=."""
        _notifier(manager).status("feed title\nMAINPID=1\r\nREADY=1")
        message = manager.recv()
        assert "\n" not in message
        assert message.startswith("STATUS=feed title")

    def test_reloading_carries_monotonic_clock(self, manager: FakeManager) -> None:
        """reloading() sends RELOADING=1 and MONOTONIC_USEC=now on CLOCK_MONOTONIC in one datagram."""
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        _notifier(manager).reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        lines = manager.recv().split("\n")
        assert lines[0] == "RELOADING=1"
        assert len(lines) == 2
        key, _, value = lines[1].partition("=")
        assert key == "MONOTONIC_USEC"
        assert before <= int(value) <= after

    def test_stopping(self, manager: FakeManager) -> None:
        """stopping() sends exactly STOPPING=1."""
        _notifier(manager).stopping()
        assert manager.recv() == "STOPPING=1"

    def test_watchdog(self, manager: FakeManager) -> None:
        """watchdog() sends exactly WATCHDOG=1."""
        _notifier(manager).watchdog()
        assert manager.recv() == "WATCHDOG=1"

    def test_extend_timeout(self, manager: FakeManager) -> None:
        """extend_timeout(seconds) sends EXTEND_TIMEOUT_USEC in microseconds."""
        _notifier(manager).extend_timeout(90.5)
        assert manager.recv() == "EXTEND_TIMEOUT_USEC=90500000"

    def test_sender_is_main_pid(self, manager: FakeManager) -> None:
        """Datagrams come from this process's PID, so NotifyAccess=main accepts them."""
        _notifier(manager).ready()
        message, pid = manager.recv_with_pid()
        assert message == "READY=1"
        assert pid == os.getpid()

    def test_messages_in_order_on_one_notifier(self, manager: FakeManager) -> None:
        """A lifecycle's messages arrive in the order sent, over one reused socket."""
        notifier = _notifier(manager)
        notifier.ready()
        notifier.reloading()
        notifier.ready("reloaded")
        notifier.stopping()
        received = [manager.recv() for _ in range(4)]
        assert received[0] == "READY=1"
        assert received[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert received[2:] == ["READY=1\nSTATUS=reloaded", "STOPPING=1"]


class TestAcrossProcesses:
    def test_daemon_process_notifies_from_its_environment(self, manager: FakeManager) -> None:
        """A separate process given NOTIFY_SOCKET by its parent reaches the socket, under its own PID."""
        code = "from daemon.service.systemd import Notifier; n = Notifier.from_env(); n.ready('up'); n.stopping()"
        child = subprocess.Popen(
            [sys.executable, "-c", code], env=cli_env(NOTIFY_SOCKET=manager.env_value), stderr=subprocess.PIPE
        )
        _out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert manager.recv_with_pid() == ("READY=1\nSTATUS=up", child.pid)
        assert manager.recv() == "STOPPING=1"


class TestDisabled:
    def test_no_socket_means_no_op(self, manager: FakeManager) -> None:
        """Without NOTIFY_SOCKET every method returns False and nothing is sent anywhere."""
        notifier = Notifier.from_env({"WATCHDOG_USEC": "60000000"})
        assert notifier.enabled is False
        results = [
            notifier.ready("x"),
            notifier.status("x"),
            notifier.reloading(),
            notifier.stopping(),
            notifier.watchdog(),
            notifier.extend_timeout(5),
        ]
        assert results == [False] * 6
        assert notifier.watchdog_interval() is None
        manager.assert_silent()

    def test_from_env_reads_os_environ(self, manager: FakeManager, monkeypatch: pytest.MonkeyPatch) -> None:
        """from_env() without arguments reads the process environment."""
        monkeypatch.setenv("NOTIFY_SOCKET", manager.env_value)
        assert Notifier.from_env().ready() is True
        assert manager.recv() == "READY=1"

    def test_unsupported_address_disables(self) -> None:
        """A NOTIFY_SOCKET that is neither a path nor @abstract disables notification with a warning."""
        with capture_logs() as logs:
            notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
        assert notifier.enabled is False
        assert notifier.ready() is False
        assert [e["event"] for e in logs] == ["notify_socket_unsupported"]

    def test_send_failure_warns_once_and_never_raises(self, tmp_path: Path) -> None:
        """A socket that is gone makes sends return False, with one warning however many fail."""
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
        with capture_logs() as logs:
            assert notifier.ready() is False
            assert notifier.status("x") is False
            assert notifier.watchdog() is False
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert len(warnings) == 1
        assert warnings[0]["event"] == "sd_notify_failed"

    def test_recovers_when_socket_returns(self, tmp_path: Path) -> None:
        """After a failed send, the next send reaches a socket that has come back."""
        path = tmp_path / "late.sock"
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        with capture_logs():
            assert notifier.watchdog() is False
        sock = _bind(str(path))
        try:
            assert notifier.watchdog() is True
            sock.settimeout(2.0)
            assert sock.recv(4096) == b"WATCHDOG=1"
        finally:
            sock.close()


class TestWatchdogInterval:
    def test_half_of_watchdog_usec(self, manager: FakeManager) -> None:
        """The ping interval is half of WATCHDOG_USEC, in seconds."""
        assert _notifier(manager, WATCHDOG_USEC="60000000").watchdog_interval() == 30.0

    def test_own_pid_keeps_watchdog(self, manager: FakeManager) -> None:
        """WATCHDOG_PID equal to our PID keeps the watchdog on."""
        notifier = _notifier(manager, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid()))
        assert notifier.watchdog_interval() == 1.0

    def test_other_pid_disables_watchdog(self, manager: FakeManager) -> None:
        """WATCHDOG_PID naming another process (we inherited the env) means the watchdog is not ours."""
        other = os.getppid()
        assert other != os.getpid()
        notifier = _notifier(manager, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(other))
        assert notifier.watchdog_interval() is None

    @pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
    def test_invalid_usec_disables(self, manager: FakeManager, usec: str) -> None:
        """A missing, zero, negative or malformed WATCHDOG_USEC means no watchdog."""
        assert _notifier(manager, WATCHDOG_USEC=usec).watchdog_interval() is None

    def test_no_watchdog_usec(self, manager: FakeManager) -> None:
        """Without WATCHDOG_USEC (no WatchdogSec= in the unit) there is nothing to ping."""
        assert _notifier(manager).watchdog_interval() is None


class PingRecorder:
    """Records the arrival time of each datagram from a thread, so a blocked event loop cannot skew it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.sock.settimeout(0.02)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            assert data == b"WATCHDOG=1"
            self.arrivals.append(time.monotonic())

    def __enter__(self) -> PingRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.arrivals if start < t < end)


class TestWatchdogLoop:
    INTERVAL = 0.05

    async def test_pings_stop_while_loop_blocked_and_resume(self, manager: FakeManager) -> None:
        """A synchronous sleep on the event loop stops the pings for its duration; they resume after."""
        notifier = _notifier(manager)
        with PingRecorder(manager.sock) as pings:
            task = asyncio.create_task(watchdog_loop(notifier, interval=self.INTERVAL, healthy=lambda: True))
            await asyncio.sleep(0.3)
            span: list[float] = []

            async def block() -> None:
                span.append(time.monotonic())
                time.sleep(0.5)  # noqa: ASYNC251 - the point: a stuck coroutine wedges the loop
                span.append(time.monotonic())

            with capture_logs() as logs:
                await asyncio.create_task(block())
                await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        start, end = span
        assert pings.between(start - 0.3, start) >= 3
        # Margin for a ping already in flight when the block began.
        assert pings.between(start + 0.02, end) == 0
        assert pings.between(end, end + 0.3) >= 3
        assert "event_loop_stalled" in [e["event"] for e in logs]

    async def test_unhealthy_withholds_pings(self, manager: FakeManager) -> None:
        """While healthy() is false no pings are sent, even though the loop turns; they resume after."""
        notifier = _notifier(manager)
        state = {"ok": True}
        with PingRecorder(manager.sock) as pings, capture_logs() as logs:
            task = asyncio.create_task(watchdog_loop(notifier, interval=self.INTERVAL, healthy=lambda: state["ok"]))
            await asyncio.sleep(0.2)
            state["ok"] = False
            sick = time.monotonic()
            await asyncio.sleep(0.4)
            state["ok"] = True
            well = time.monotonic()
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert pings.between(sick - 0.2, sick) >= 2
        assert pings.between(sick + 0.02, well) == 0
        assert pings.between(well, well + 0.2) >= 2
        events = [e["event"] for e in logs]
        assert events.count("watchdog_withheld") == 1
        assert events.count("watchdog_resumed") == 1

    async def test_raising_health_check_counts_as_unhealthy(self, manager: FakeManager) -> None:
        """A health check that raises withholds pings instead of ending the watchdog loop."""

        def broken() -> bool:
            raise RuntimeError("store closed")

        notifier = _notifier(manager)
        with capture_logs() as logs:
            task = asyncio.create_task(watchdog_loop(notifier, interval=self.INTERVAL, healthy=broken))
            await asyncio.sleep(0.15)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        manager.assert_silent()
        assert "watchdog_health_check_failed" in [e["event"] for e in logs]

    async def test_disabled_notifier_returns(self) -> None:
        """Outside systemd the watchdog loop returns at once instead of waking up for nothing."""
        await asyncio.wait_for(watchdog_loop(Notifier(None), interval=0.01, healthy=lambda: True), 1.0)

    async def test_rejects_non_positive_interval(self, manager: FakeManager) -> None:
        """A zero interval is a programming error, reported as ValueError."""
        with pytest.raises(ValueError, match="positive"):
            await watchdog_loop(_notifier(manager), interval=0, healthy=lambda: True)


class TestFormatStatus:
    NOON = datetime(2024, 5, 1, 12, 4, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            (
                {"feeds": 120, "failing": 3, "outbox": 0, "last_alert": NOON},
                "polling 120 feeds, 3 failing, outbox 0, last alert 12:04",
            ),
            (
                {"feeds": 1, "failing": 0, "outbox": 7, "last_alert": None},
                "polling 1 feed, 0 failing, outbox 7, last alert none",
            ),
            (
                {"feeds": 5, "failing": 0, "outbox": 0, "last_alert": NOON, "now": NOON + timedelta(hours=3)},
                "polling 5 feeds, 0 failing, outbox 0, last alert 12:04",
            ),
            (
                {"feeds": 5, "failing": 0, "outbox": 0, "last_alert": NOON, "now": NOON + timedelta(days=2)},
                "polling 5 feeds, 0 failing, outbox 0, last alert 2024-05-01 12:04",
            ),
            (
                {
                    "feeds": 2,
                    "failing": 1,
                    "outbox": 0,
                    "last_alert": NOON,
                    "now": datetime(2024, 5, 1, 18, 0, tzinfo=timezone(timedelta(hours=4))),
                },
                "polling 2 feeds, 1 failing, outbox 0, last alert 16:04",
            ),
        ],
    )
    def test_format(self, kwargs: dict[str, object], expected: str) -> None:
        """The status line names feeds, failures, outbox depth and the last alert's time."""
        assert format_status(**kwargs) == expected  # type: ignore[arg-type]
