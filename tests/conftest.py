"""Shared fixtures: every server a test talks to listens on 127.0.0.1 only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus" / "feedparser"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver binds loopback IPv4 only, on a free port."""
    return ("127.0.0.1", 0)


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running the CLI as a real subprocess from this source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FEEDWATCH_CONFIG", None)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env.update(extra)
    return env


CLI = [sys.executable, "-m", "daemon"]
