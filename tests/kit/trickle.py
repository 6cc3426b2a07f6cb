"""Receivers that answer slowly on purpose, on 127.0.0.1: a byte at a time, never silent long enough for a
per-read timeout. Each is a real socket server on its own thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Trickler:
    """Accepts connections, reads the request, then writes ``head`` at once and ``drip`` one byte at a time.

    ``head`` and ``drip`` are raw bytes: an HTTP status line with unfinished headers, a finished head followed
    by an endless body, or SMTP reply lines. ``requests`` counts connections that sent something.
    """

    def __init__(self, head: bytes, drip: bytes, every: float, *, read_first: bool = True) -> None:
        self.head = head
        self.drip = drip
        self.every = every
        self.read_first = read_first
        self.requests = 0
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/path"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._talk, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            try:
                if self.read_first:
                    data = b""
                    while b"\r\n\r\n" not in data and not self._stop.is_set():
                        try:
                            chunk = conn.recv(65536)
                        except TimeoutError:
                            continue
                        if not chunk:
                            return
                        data += chunk
                    self.received.append(data)
                    self.requests += 1
                conn.sendall(self.head)
                i = 0
                while not self._stop.wait(self.every):
                    conn.sendall(self.drip[i % len(self.drip) : i % len(self.drip) + 1])
                    i += 1
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accept.join(timeout=2)
        for t in self._threads:
            t.join(timeout=2)


@contextmanager
def trickler(head: bytes, drip: bytes, every: float = 1.5, *, read_first: bool = True) -> Iterator[Trickler]:
    server = Trickler(head, drip, every, read_first=read_first)
    try:
        yield server
    finally:
        server.close()


class SlowSmtp:
    """An SMTP server that answers every command correctly, each reply ``delay`` seconds late.

    Each reply comes well within a per-command timeout, yet a whole send (greeting, EHLO, MAIL, RCPT,
    DATA, the message) takes six delays.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.accepted = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _reply(self, conn: socket.socket, line: bytes) -> None:
        if not self._stop.wait(self.delay):
            conn.sendall(line)

    def _talk(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            try:
                self._reply(conn, b"220 slow.example ESMTP\r\n")
                in_data = False
                for raw in lines:
                    if self._stop.is_set():
                        return
                    if in_data:
                        if raw in (b".\r\n", b".\n"):
                            in_data = False
                            self.accepted += 1
                            self._reply(conn, b"250 queued\r\n")
                        continue
                    verb = raw[:4].upper()
                    if verb == b"DATA":
                        in_data = True
                        self._reply(conn, b"354 go ahead\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        self._reply(conn, b"250 ok\r\n")
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)
