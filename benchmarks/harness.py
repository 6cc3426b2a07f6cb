"""What every benchmark shares: result rows with verdicts, a loopback feed server with conditional GET,
a webhook receiver, process-tree memory sampling, the daemon as a subprocess, and the machine's description.

Every server here binds 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
MB = 1024 * 1024


class _Server(ThreadingHTTPServer):
    """A threaded server with a web server's listen backlog.

    socketserver's default backlog of 5 drops the handshakes of a client that opens 64 connections at
    once; the kernel then retransmits for seconds, which times the backlog, not the client.
    """

    request_queue_size = 512
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes early (a timeout, or a daemon stopped mid-cycle) is not a server fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# --- result rows -----------------------------------------------------------------------------------


def row(
    name: str,
    feedwatch: float | None,
    baseline: float | None,
    *,
    unit: str,
    ratio: float | None,
    op: str,
    target: float | None,
    stretch: float | None = None,
    baseline_name: str = "",
    note: str = "",
) -> dict[str, Any]:
    """One line of the table. ``ratio`` is feedwatch / baseline; ``op`` says which way is good;
    a row without a ``target`` is shown for information.
    """
    if target is None:
        verdict = "info"
    elif ratio is None:
        verdict = "n/a"
    else:
        ok = ratio >= target if op == ">=" else ratio <= target
        verdict = "ok" if ok else "MISS"
        if ok and stretch is not None:
            verdict += (
                " (stretch ok)" if (ratio >= stretch if op == ">=" else ratio <= stretch) else " (stretch missed)"
            )
    target_text = "—" if target is None else f"{'≥' if op == '>=' else '≤'} {target:g}×"
    if stretch is not None:
        target_text += f" (stretch {stretch:g}×)"
    return {
        "name": name,
        "feedwatch": feedwatch,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "unit": unit,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target_text,
        "verdict": verdict,
        "note": note,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "items/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}"


# --- machine ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import feedparser

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "feedparser": feedparser.__version__,
        "commit": commit,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- loopback servers ------------------------------------------------------------------------------


class _Doc:
    __slots__ = ("body", "etag", "last_modified", "modified_at")

    def __init__(self, body: bytes, modified_at: datetime) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        self.modified_at = modified_at.replace(microsecond=0)
        self.last_modified = format_datetime(self.modified_at, usegmt=True)


class FeedServer:
    """Serves feed documents from memory with ETag and Last-Modified; answers 304 when either matches."""

    def __init__(self) -> None:
        self._docs: dict[str, _Doc] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.bytes_sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms
            # for the delayed ACK on every response, which would time the loopback, not the clients.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                owner._count("connections", 0)

            def do_GET(self) -> None:
                owner._get(self)

        self._server = _Server((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="feed-server", daemon=True)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def put(self, path: str, body: bytes, modified_at: datetime) -> None:
        with self._lock:
            self._docs[path] = _Doc(body, modified_at)

    def reset_counts(self) -> dict[str, int]:
        """Responses by status, and TCP connections opened, since the last reset."""
        with self._lock:
            counts, self.counts = self.counts, {}
            self.bytes_sent = 0
        return counts

    def _count(self, what: int | str, size: int) -> None:
        with self._lock:
            self.counts[str(what)] = self.counts.get(str(what), 0) + 1
            self.bytes_sent += size

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            doc = self._docs.get(h.path.split("?", 1)[0])
        if doc is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            self._count(404, 0)
            return
        inm = h.headers.get("If-None-Match")
        ims = h.headers.get("If-Modified-Since")
        fresh = False
        if inm is not None:
            fresh = inm.strip() == "*" or doc.etag in [t.strip().removeprefix("W/") for t in inm.split(",")]
        elif ims:
            try:
                fresh = doc.modified_at <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                fresh = False
        h.send_response(304 if fresh else 200)
        h.send_header("ETag", doc.etag)
        h.send_header("Last-Modified", doc.last_modified)
        if fresh:
            h.send_header("Content-Length", "0")
            h.end_headers()
            self._count(304, 0)
            return
        h.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        h.send_header("Content-Length", str(len(doc.body)))
        h.end_headers()
        h.wfile.write(doc.body)
        self._count(200, len(doc.body))


class WebhookSink:
    """Receives POSTs on 127.0.0.1 and hands (arrival time, JSON body) to ``on_post``."""

    def __init__(self, on_post: Callable[[float, Any], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                arrived = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with contextlib.suppress(ValueError):
                    on_post(arrived, json.loads(body))

        self._server = _Server((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/hook"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# --- processes -------------------------------------------------------------------------------------


class TreeMonitor:
    """Samples a process and all its descendants until stopped.

    ``peak`` is the higher of the largest summed RSS seen and the sum of each process's own kernel
    high-water mark (VmHWM, last seen), which also covers spikes between two samples.
    """

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid = pid
        self.every = every
        self.peak_sampled = 0
        self.hwm: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)

    @property
    def peak(self) -> int:
        return max(self.peak_sampled, sum(self.hwm.values()))

    def start(self) -> TreeMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                hwm = kernel_peak_rss(p.pid)
                if hwm:
                    self.hwm[p.pid] = max(hwm, self.hwm.get(p.pid, 0))
            self.peak_sampled = max(self.peak_sampled, total)
            self.samples += 1
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def kernel_peak_rss(pid: int) -> int:
    """VmHWM of a live process (the kernel's own high-water mark), in bytes; 0 when unavailable.

    Not ``ru_maxrss`` from wait4: a child started with vfork+exec inherits the parent's high-water mark.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed_process(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command to completion: wall time, CPU time, exit code and peak tree RSS (sampled)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    monitor = TreeMonitor(proc.pid, every=0.01).start()
    assert proc.stderr is not None
    err = proc.stderr.read()  # drained as it comes, so a chatty child never blocks on a full pipe
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    monitor.stop()
    return {
        "seconds": elapsed,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "returncode": proc.returncode,
        "peak_rss": monitor.peak,
        "samples": monitor.samples,
        "stderr_tail": err.decode("utf-8", "replace")[-2000:],
    }


def daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for key in ("FEEDWATCH_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    return env


class Daemon:
    """``python -m daemon run`` from this tree as a real subprocess; logs go to ``log``."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.monitor: TreeMonitor | None = None
        self.started_at = 0.0

    def start(self) -> Daemon:
        self.started_at = time.time()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(self.config), "run"],
                cwd=self.config.parent,
                env=daemon_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.monitor = TreeMonitor(self.proc.pid).start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def peak_rss(self) -> int:
        """Peak so far: the higher of the sampled tree sum and the kernel's high-water mark."""
        assert self.monitor is not None
        return max(self.monitor.peak, kernel_peak_rss(self.pid))

    def cpu_seconds(self) -> float:
        try:
            times = psutil.Process(self.pid).cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)

    def rss(self) -> int:
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.NoSuchProcess:
            return 0

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.monitor is not None:
            self.monitor.stop()
        return int(self.proc.returncode)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


# --- reading the daemon's store from outside -------------------------------------------------------


def feed_attempts(db: Path) -> dict[str, float]:
    """feed name -> last_attempt_at (epoch seconds) for feeds polled at least once; {} if no store yet."""
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT name, last_attempt_at FROM feeds WHERE last_attempt_at IS NOT NULL").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}
    return {name: datetime.fromisoformat(at).timestamp() for name, at in rows}


def wait_for_cycle(
    db: Path, names: set[str], *, after: float, timeout: float, alive: Callable[[], bool], every: float = 0.01
) -> tuple[float, float]:
    """Wait until every feed in ``names`` has an attempt later than ``after``.

    Returns (earliest attempt of this cycle, time the completion was observed); the attempt time is
    taken before the fetch, and its row is written after the feed was fully handled.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        attempts = feed_attempts(db)
        now = time.time()
        cycle = [attempts[n] for n in names if attempts.get(n, 0.0) > after]
        if len(cycle) == len(names):
            return min(cycle), now
        if not alive():
            raise RuntimeError("the daemon exited during the cycle")
        time.sleep(every)
    done = sum(1 for n in names if feed_attempts(db).get(n, 0.0) > after)
    raise TimeoutError(f"only {done} of {len(names)} feeds were polled within {timeout:g} s")
