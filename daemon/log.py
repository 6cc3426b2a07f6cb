"""structlog set-up: coloured key=value lines on a terminal, JSON lines otherwise (journald, files).

Log lines go to stderr so stdout stays for alerts printed by the console channel and for command
output. Field names used across the daemon: ``feed``, ``url``, ``rule``, ``alert_id``, ``channel``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup_logging(level: str = "info", *, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog once per process; ``json=None`` picks by whether the stream is a TTY."""
    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors += [
            # No local variables in tracebacks: they could hold secrets (passwords, webhook URLs).
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        processors += [
            structlog.dev.ConsoleRenderer(
                colors=out.isatty(),
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
                if _has_rich()
                else structlog.dev.plain_traceback,
            )
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the stdlib (apscheduler, httpx) follow the same level, to stderr.
    logging.basicConfig(level=max(LEVELS.get(level, logging.INFO), logging.WARNING), stream=out, force=True)


def _has_rich() -> bool:
    try:
        import rich  # type: ignore[import-not-found]  # noqa: F401  (optional: nicer terminal tracebacks)
    except ImportError:
        return False
    return True
