"""Log output: JSON lines for journald, library records included, no traceback locals."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon.service.log import setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
class TestJsonLines:
    def test_library_records_are_json_too(self) -> None:
        """A stdlib record (APScheduler, httpx) comes out as a JSON line like ours, with its logger name."""
        out = io.StringIO()
        setup_logging("info", json=True, stream=out)
        logging.getLogger("httpx").warning("job %s skipped", "demo")
        structlog.get_logger("feedwatch").info("feed_polled", feed="demo")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert lines[0]["logger"] == "httpx"
        assert lines[0]["event"] == "job demo skipped"
        assert lines[1] == lines[1] | {"event": "feed_polled", "feed": "demo", "level": "info"}

    def test_tracebacks_carry_no_locals(self) -> None:
        """An exception logged as JSON shows the frames but never local variables (they may be secrets)."""
        out = io.StringIO()
        setup_logging("info", json=True, stream=out)

        def fail(password: str) -> None:
            raise RuntimeError("boom")

        try:
            fail("hunter2")
        except RuntimeError:
            structlog.get_logger("feedwatch").exception("crashed")
        assert "boom" in out.getvalue()
        assert "hunter2" not in out.getvalue()
