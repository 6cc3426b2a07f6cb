"""A real `feedwatch run` in a subprocess, watched through a real sd_notify socket, for lifecycle tests.

Nothing here is a stand-in for feedwatch itself: the daemon is `python -m daemon run`, the notify
socket is an AF_UNIX datagram socket like systemd's, feeds come from a loopback HTTP server.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daemon.models import Alert
from daemon.store.sqlite import Store
from tests.conftest import CLI, cli_env

CREDS = struct.Struct("3i")

QUAKE_RULE = """\
[rule.quake]
description = "Earthquakes"
threshold = 1.0
require = ["what"]

[rule.quake.groups.what]
weight = 1.0
terms = ["earthquake*"]
"""


@dataclass(frozen=True, slots=True)
class Note:
    """One sd_notify datagram as systemd would see it."""

    at: float  # time.monotonic() on receipt
    pid: int  # the sender, from SCM_CREDENTIALS (what NotifyAccess=main checks)
    fields: dict[str, str]

    def has(self, key: str, value: str | None = None) -> bool:
        return key in self.fields and (value is None or self.fields[key] == value)


class NotifyListener:
    """The receiving end of $NOTIFY_SOCKET, bound under tmp_path, collecting datagrams on a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.notes: list[Note] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(CREDS.size))
            except TimeoutError:
                continue
            except OSError:
                return
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = CREDS.unpack(payload[: CREDS.size])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._cond:
                self.notes.append(Note(time.monotonic(), pid, fields))
                self._cond.notify_all()

    def wait_for(self, match: Callable[[Note], bool], *, after: int = 0, timeout: float = 10.0) -> int:
        """Index of the first note from ``after`` on that ``match``es; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.notes)):
                    if match(self.notes[i]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [n.fields for n in self.notes[after:]]
                    raise AssertionError(f"no matching sd_notify message within {timeout}s; got {seen}")
                self._cond.wait(left)

    def since(self, index: int) -> list[Note]:
        with self._cond:
            return list(self.notes[index:])

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self.sock.close()


def write_site(
    folder: Path,
    *,
    feed_url: str,
    rules: dict[str, str] | None = None,
    grace: str = "20s",
    channels: str = "",
    default_channels: str = '["console"]',
    extra: str = "",
) -> Path:
    """config.toml (fast polling, one feed alerting on its backlog) and rules/ in ``folder``."""
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    for name, text in (rules or {"quake.toml": QUAKE_RULE}).items():
        (folder / "rules" / name).write_text(text)
    config = folder / "config.toml"
    config.write_text(
        f"""\
[daemon]
rules_dir = "rules"
grace_period = "{grace}"

[store]
path = "var/feedwatch.db"

[polling]
interval = "2s"
min_interval = "1s"
jitter = 0.0

[alerts]
default_channels = {default_channels}

{channels}

[[feeds]]
name = "wire"
url = "{feed_url}"
backfill = "all"
{extra}"""
    )
    return config


@dataclass
class Daemon:
    """``feedwatch run`` as systemd starts it: NOTIFY_SOCKET and WATCHDOG_USEC set, output to files."""

    folder: Path
    notify: NotifyListener
    watchdog_usec: int = 1_000_000
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.folder / "var" / "feedwatch.db"

    def start(self) -> int:
        """Start the daemon; returns the notify index to wait from."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        mark = len(self.notify.since(0))
        out = self.folder / f"run{self.runs}.out"
        err = self.folder / f"run{self.runs}.err"
        self.logs.append(err)
        env = cli_env(NOTIFY_SOCKET=str(self.notify.path), WATCHDOG_USEC=str(self.watchdog_usec), NO_PROXY="*")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen([*CLI, "run"], cwd=self.folder, env=env, stdout=stdout, stderr=stderr)
        return mark

    def wait_ready(self, after: int, timeout: float = 10.0) -> int:
        return self.notify.wait_for(lambda n: n.has("READY", "1") and n.pid == self.pid, after=after, timeout=timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> int:
        """Send ``sig``; returns the notify index of the moment it was sent."""
        mark = len(self.notify.since(0))
        assert self.proc is not None
        self.proc.send_signal(sig)
        return mark

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.logs[-1].read_text() if self.logs else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another feedwatch command against the same config, as an operator would run it."""
        return subprocess.run([*CLI, *args], cwd=self.folder, env=cli_env(), capture_output=True, text=True, timeout=30)

    def alerts(self) -> list[Alert]:
        if not self.db.exists():
            return []
        store = Store(self.db, readonly=True)
        try:
            return store.recent_alerts(1000)
        finally:
            store.close()

    def outbox(self) -> dict[str, int]:
        """Pending, delivered and dead deliveries in the outbox."""
        store = Store(self.db, readonly=True)
        try:
            counts = store.outbox_counts()
        finally:
            store.close()
        return {key: counts[key] for key in ("pending", "delivered", "dead")}

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextmanager
def running_site(folder: Path) -> Iterator[Daemon]:
    """A notify socket under ``folder`` and a Daemon bound to it, killed if a test leaves it running."""
    listener = NotifyListener(folder / "notify.sock")
    daemon = Daemon(folder, listener)
    try:
        yield daemon
    finally:
        daemon.kill()
        listener.close()
