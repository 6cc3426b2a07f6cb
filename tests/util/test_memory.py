"""The daemon's threads share one glibc malloc arena (counted by glibc's own malloc_stats)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import REPO, cli_env
from tests.kit.feeds import FeedServer

pytestmark = pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="malloc arenas are glibc's"
)

# Threads that each allocate blocks too big for Python's own allocator, then glibc's arena report.
THREADS_THEN_COUNT = """
import ctypes, sys, threading
def work():
    blocks = [bytes(4096 + i) for i in range(200)]
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(prelude: str, *, cwd: Path = REPO, env: dict[str, str] | None = None) -> int:
    """Arenas glibc reports after ``prelude`` ran and then four threads allocated."""
    out = subprocess.run(
        [sys.executable, "-c", prelude + THREADS_THEN_COUNT],
        cwd=cwd,
        env=env or {k: v for k, v in cli_env().items() if k != "MALLOC_ARENA_MAX"},  # the shell's setting aside
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sum(1 for line in out.stderr.splitlines() if line.startswith("Arena "))


class TestArenas:
    def test_threads_share_one_arena(self) -> None:
        """After the limit, threads allocate from one arena; without it each gets its own."""
        assert arenas("") > 1  # the count is a true witness
        assert arenas("from daemon.util.memory import limit_malloc_arenas\nassert limit_malloc_arenas()\n") == 1

    def test_environment_setting_stands(self) -> None:
        """With MALLOC_ARENA_MAX set by the operator the daemon leaves malloc alone."""
        env = {**cli_env(), "MALLOC_ARENA_MAX": "3"}
        prelude = "from daemon.util.memory import limit_malloc_arenas\nassert not limit_malloc_arenas()\n"
        assert 1 < arenas(prelude, env=env) <= 3

    def test_run_sets_the_limit_before_its_threads_start(self, feed_site: Path) -> None:
        """`run --once` polls on its store, parse and worker threads, all from one arena."""
        prelude = "from daemon.cli.main import main\ntry:\n    main(['run', '--once'])\nexcept SystemExit:\n    pass\n"
        assert arenas(prelude, cwd=feed_site) == 1
        assert (feed_site / "var" / "fw.db").exists()  # it did run


@pytest.fixture
def feed_site(tmp_path: Path, httpserver: HTTPServer) -> Path:
    """A site with one feed on 127.0.0.1 and a console channel."""
    feed = FeedServer(httpserver)
    feed.add("g1", "Blackout across the city")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "outage.toml").write_text(
        '[rule.outage]\nthreshold = 1.0\n[rule.outage.groups.what]\nterms = ["blackout*"]\n'
    )
    (tmp_path / "config.toml").write_text(
        '[daemon]\nrules_dir = "rules"\n[store]\npath = "var/fw.db"\n[alerts]\ndefault_channels = ["console"]\n'
        f'[channels.console]\ntype = "console"\n[[feeds]]\nname = "wire"\nurl = "{feed.url}"\n'
    )
    return tmp_path
