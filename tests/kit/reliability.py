"""Fault-injection harness: a feed server, an SMTP sink, webhook receivers and a daemon launcher.

Everything listens on 127.0.0.1. The daemon runs as a real subprocess (``python -m daemon run``) with a
generated config and rules; its JSON log lines are read back from a file to check what it reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import psutil
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import CLI, cli_env
from tests.kit.smtp import SinkHandler, SmtpSink

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would drown the test output

WEBHOOK_SECRET = "reliability-secret"
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "da", "fe", "gu", "ha", "jo", "pi", "be")


def place(i: int) -> str:
    """A made-up, capitalised place name, unique for i < 65536: every title names its own thing."""
    parts = [SYLLABLES[(i >> shift) & 15] for shift in (12, 8, 4, 0)]
    return "".join(parts).capitalize()


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


# --- feeds -------------------------------------------------------------------------------------------


@dataclass
class FeedItem:
    guid: str
    title: str  # XML as written: character references (&#13;) and markup go into the document as they are
    link: str
    summary: str = ""
    raw_link: bool = False  # write ``link`` into the XML as it is (hostile links with control chars)


def rss(title: str, items: list[FeedItem]) -> bytes:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>']
    for it in items:
        link = it.link if it.raw_link else escape(it.link)
        parts.append(
            f'<item><guid isPermaLink="false">{escape(it.guid)}</guid><title>{it.title}</title>'
            f"<link>{link}</link><description>{escape(it.summary)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


Route = Callable[[BaseHTTPRequestHandler], None]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0  # TCP connections accepted

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a killed daemon, a trickle cut off) is no test failure."""


class FeedServer:
    """Serves ``/feeds/<name>.xml`` from items held in memory (with ETag), plus hand-written routes."""

    def __init__(self) -> None:
        self.items: dict[str, list[FeedItem]] = {}
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.on_request: Callable[[str], None] | None = None  # called before a feed is answered
        self.on_served: Callable[[str, int], None] | None = None  # called after (path, status)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="feed-server", daemon=True)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def feed_url(self, name: str) -> str:
        return self.url(f"/feeds/{name}.xml")

    def add_feed(self, name: str) -> str:
        with self.lock:
            self.items.setdefault(name, [])
        return self.feed_url(name)

    def add_item(self, feed: str, item: FeedItem) -> None:
        with self.lock:
            self.items[feed].insert(0, item)

    def edit_item(self, feed: str, guid: str, **changes: str) -> None:
        with self.lock:
            items = self.items[feed]
            for n, it in enumerate(items):
                if it.guid == guid:
                    items[n] = FeedItem(**{**it.__dict__, **changes})
                    return
        raise KeyError(guid)

    @property
    def connections(self) -> int:
        return self.httpd.connections

    def polls(self, feed: str) -> int:
        return self.hits[f"/feeds/{feed}.xml"]

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        with self.lock:
            self.hits[path] += 1
        if self.on_request is not None:
            self.on_request(path)
        route = self.routes.get(path)
        if route is not None:
            route(req)
            return
        name = path.removeprefix("/feeds/").removesuffix(".xml")
        with self.lock:
            items = list(self.items.get(name, [])) if path.startswith("/feeds/") else None
        if items is None:
            send(req, 404, b"not found", "text/plain")
            return
        body = rss(name, items)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        status = 304 if req.headers.get("If-None-Match") == etag else 200
        send(req, status, body if status == 200 else b"", "application/rss+xml", {"ETag": etag})
        if self.on_served is not None:
            self.on_served(path, status)


def send(
    req: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    req.send_response(status)
    if content_type:
        req.send_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    if status != 304:
        req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if body:
        with contextlib.suppress(OSError):
            req.wfile.write(body)


# --- receivers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    key: str
    alert: dict[str, Any]
    signed: bool
    at: float


@dataclass
class WebhookReceiver:
    """A webhook (or Slack) endpoint on pytest-httpserver that records deliveries and can fail on demand.

    ``status`` answers every request; ``fail_first`` answers only the first request of each alert. The
    alert is known by its ``Idempotency-Key`` header or, for Slack, by the ``alert fw-…`` line it shows.
    """

    path: str = "/hook"
    secret: str | None = WEBHOOK_SECRET
    status: int = 200
    fail_first: int | None = None
    retry_after: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: list[tuple[float, str, int]] = field(default_factory=list)  # (monotonic time, key, status)
    on_delivery: Callable[[Delivery], None] | None = None  # called after recording, before answering
    server: HTTPServer = field(default_factory=lambda: HTTPServer(host="127.0.0.1", port=0, threaded=True))

    def start(self) -> WebhookReceiver:
        self.server.expect_request(self.path, method="POST").respond_with_handler(self._handle)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def _handle(self, request: Request) -> Response:
        now = time.monotonic()
        body = request.get_data()
        key = request.headers.get("Idempotency-Key") or _shown_alert_id(body)
        status = self.status
        if status == 200 and self.fail_first is not None and all(k != key for _, k, _ in self.attempts):
            status = self.fail_first
        self.attempts.append((now, key, status))
        if status != 200:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return Response("try later", status=status, headers=headers)
        signed = True
        if self.secret is not None:
            stamp = request.headers.get("X-Feedwatch-Timestamp", "")
            mac = hmac.new(self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(request.headers.get("X-Feedwatch-Signature", ""), "sha256=" + mac)
        data = json.loads(body)
        delivery = Delivery(key, data.get("alert", data), signed, now)
        self.deliveries.append(delivery)
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        return Response("ok", status=200)

    def keys(self) -> list[str]:
        return [d.key for d in self.deliveries]


@dataclass
class HookedSinkHandler(SinkHandler):
    """The SMTP sink's handler, calling ``on_message`` after recording a mail and before answering 250."""

    on_message: Callable[[EmailMessage], None] | None = None
    raw: list[bytes] = field(default_factory=list)  # each accepted mail as sent, headers unparsed
    recipients: list[list[str]] = field(default_factory=list)  # RCPT TO of each accepted mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self.raw.append(bytes(envelope.original_content or envelope.content))
            self.recipients.append(list(envelope.rcpt_tos))
        if self.on_message is not None and reply.startswith("250"):
            self.on_message(self.messages[-1])
        return reply


def _shown_alert_id(body: bytes) -> str:
    m = re.search(rb"alert (fw-[0-9a-f]+)", body)
    return m.group(1).decode() if m else ""


def mail_parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of one multipart alert mail."""
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return (text.get_content() if text else "", html.get_content() if html else "")


def raw_headers(msg: EmailMessage) -> list[tuple[str, str]]:
    """Header values as received (before any unfolding a parser might do for us)."""
    return [(k, str(v)) for k, v in msg.raw_items()]


# --- the daemon --------------------------------------------------------------------------------------


RULES = """\
[rule.shelling]
description = "Shelling reports"
threshold = 2.0
severity = { warning = 4.0, critical = 6.0 }

[rule.shelling.groups.g]
terms = ["shelling", "artillery", "drones"]
"""


@dataclass
class Setup:
    """What goes into the generated config.toml."""

    feeds: dict[str, str]  # name -> url
    smtp_port: int | None = None
    webhook_url: str | None = None
    slack_url: str | None = None
    store_extra: str = ""
    alerts_extra: str = ""
    polling_extra: str = ""
    interval: str = "1s"
    channel_extra: dict[str, str] = field(default_factory=dict)  # channel name -> extra TOML lines
    extra_channels: dict[str, str] = field(default_factory=dict)  # more channels: name -> their TOML body

    def channels(self) -> list[str]:
        names = []
        if self.smtp_port is not None:
            names.append("mail")
        if self.webhook_url is not None:
            names.append("hook")
        if self.slack_url is not None:
            names.append("slack")
        return names + list(self.extra_channels)

    def render(self) -> str:
        out = [
            '[daemon]\nrules_dir = "rules"\nlog_level = "info"\ngrace_period = "3s"\n',
            f'[store]\npath = "var/feedwatch.db"\n{self.store_extra}\n',
            f'[polling]\nmin_interval = "1s"\nconnect_timeout = "3s"\nread_timeout = "3s"\n{self.polling_extra}\n',
            "[alerts]\ndefault_channels = " + json.dumps(self.channels()) + "\n"
            'storm_limit = 100000\nretry_base = "1s"\nretry_cap = "4s"\nmax_attempts = 1000\n'
            f"{self.alerts_extra}\n",
        ]
        if self.smtp_port is not None:
            out.append(
                self._channel(
                    "mail",
                    f'type = "email"\nhost = "127.0.0.1"\nport = {self.smtp_port}\nsecurity = "none"\n'
                    'from = "feedwatch@example.org"\nto = "desk@example.org"\ntimeout = "3s"\n',
                )
            )
        if self.webhook_url is not None:
            out.append(
                self._channel(
                    "hook",
                    f'type = "webhook"\nurl = "{self.webhook_url}"\nsecret = "{WEBHOOK_SECRET}"\ntimeout = "3s"\n',
                )
            )
        if self.slack_url is not None:
            out.append(self._channel("slack", f'type = "slack"\nwebhook_url = "{self.slack_url}"\ntimeout = "3s"\n'))
        for name, body in self.extra_channels.items():
            out.append(self._channel(name, body))
        for name, url in self.feeds.items():
            out.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\ninterval = "{self.interval}"\nbackfill = "all"\n')
        return "\n".join(out)

    def _channel(self, name: str, body: str) -> str:
        return f"[channels.{name}]\n{body}{self.channel_extra.get(name, '')}\n"


class Daemon:
    """``feedwatch run`` in a subprocess, in its own folder, logging JSON lines to ``daemon.log``."""

    def __init__(self, root: Path, setup: Setup, rules: str = RULES) -> None:
        self.root = root
        self.setup = setup
        self.config = root / "config.toml"
        self.log_path = root / "daemon.service.log"
        self.db = root / "var" / "feedwatch.db"
        (root / "rules").mkdir(parents=True, exist_ok=True)
        (root / "rules" / "watch.toml").write_text(rules)
        self.write_config()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.peak_rss = 0  # the daemon process itself
        self.peak_child_rss = 0  # its largest child (parse workers), for parse_workers > 0
        self.peak_total_rss = 0  # the daemon and its children together
        self._sampler: threading.Thread | None = None
        self._offset = 0
        self._events: list[dict[str, Any]] = []

    def write_config(self) -> None:
        self.config.write_text(self.setup.render())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, wait: bool = True) -> None:
        before = self.count("daemon_started")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "--config", str(self.config), "run"],
                cwd=self.root,
                env=cli_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.starts += 1
        self._sampler = threading.Thread(target=self._sample, args=(self.proc,), daemon=True)
        self._sampler.start()
        if wait:
            wait_until(lambda: self.count("daemon_started") > before or not self.alive(), 30, "daemon start")
            assert self.alive(), self.tail()

    def _sample(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(proc.pid)
            while proc.poll() is None:
                own = p.memory_info().rss
                children = []
                for child in p.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        children.append(child.memory_info().rss)
                self.peak_rss = max(self.peak_rss, own)
                self.peak_child_rss = max(self.peak_child_rss, *children, 0)
                self.peak_total_rss = max(self.peak_total_rss, own + sum(children))
                time.sleep(0.02)

    def parse_workers(self) -> list[psutil.Process]:
        """The daemon's parser processes (multiprocessing's spawned workers, not its resource tracker)."""
        out = []
        for child in psutil.Process(self.pid).children():
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "spawn_main" in cmdline:
                    out.append(child)
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no handler runs, no cleanup, whatever was in flight is cut off."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("daemon did not stop within the grace period:\n" + self.tail()) from None

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def fds(self) -> int:
        return int(psutil.Process(self.pid).num_fds())

    # -- logs ----------------------------------------------------------------------------------

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Log events so far (JSON lines); other lines (tracebacks, faulthandler) are skipped."""
        if self.log_path.exists():
            with open(self.log_path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            for line in data[:end].splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        self._events.append(record)
        return [e for e in self._events if name is None or e.get("event") == name]

    def count(self, name: str) -> int:
        return len(self.events(name))

    def tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "--config", str(self.config), *args],
            cwd=self.root,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    """The daemon started, and stopped (SIGTERM) however the test ends."""
    daemon.start()
    try:
        yield daemon
    finally:
        if daemon.alive():
            with contextlib.suppress(AssertionError):
                daemon.stop()


@contextlib.contextmanager
def smtp(port: int | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink(port)
    sink.handler = HookedSinkHandler()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
