"""structlog set-up: coloured key=value lines on a terminal, JSON lines otherwise (journald, files).

Log lines go to stderr so stdout stays for alerts printed by the console channel and for command
output. Field names used across the daemon: ``feed``, ``url``, ``rule``, ``alert_id``, ``channel``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from daemon.util.redact import redact_text

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup_logging(level: str = "info", *, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog once per process; ``json=None`` picks by whether the stream is a TTY."""
    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_event,
    ]
    renderers: list[Any]
    if json:
        renderers = [
            # No local variables in tracebacks: they could hold secrets (passwords, webhook URLs).
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            redact_event,  # again: exception messages were only now turned into text
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        renderers = [
            structlog.dev.ConsoleRenderer(
                colors=out.isatty(),
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
                if _has_rich()
                else structlog.dev.plain_traceback,
            )
        ]
    structlog.configure(
        processors=shared + renderers,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        # One write per line (message and newline together), so lines from threads never interleave.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the stdlib (apscheduler, httpx) come out in the same format, so a
    # journal of JSON lines stays JSON lines; they are quieter than ours (warnings and up).
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(LEVELS.get(level, logging.INFO), logging.WARNING))
    # A poll still running when its next turn comes is skipped on purpose (max_instances=1, coalesce):
    # APScheduler's warning about it is expected behaviour, not news. Its errors still show.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_event(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Every text of a log event with URL passwords and secret query parameters masked (libraries' too)."""
    return {key: _redact(value) for key, value in event.items()}


def _has_rich() -> bool:
    try:
        import rich  # type: ignore[import-not-found,unused-ignore]  # noqa: F401  (optional: nicer terminal tracebacks)
    except ImportError:
        return False
    return True
