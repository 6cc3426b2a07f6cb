"""Start-up cost: a logger that imports structlog only when something is logged, and how long ago this
process started (what ``feedwatch check`` reports as its start-up time).

structlog pulls in asyncio (~30 ms): modules that log rarely and sit on the path of quick commands
(``status``, ``check``) take their logger from here instead of from structlog.
"""

from __future__ import annotations

import os
import time
from typing import Any


class LazyLogger:
    """``structlog.get_logger(name)``, bound on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._log: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._log is None:
            import structlog

            self._log = structlog.get_logger(self._name)
        return getattr(self._log, attr)


def seconds_since_start() -> float | None:
    """Wall seconds since this process started (Linux /proc, 10 ms resolution); None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time after boot
    return max(0.0, uptime - started)


def timer() -> float:
    return time.perf_counter()
