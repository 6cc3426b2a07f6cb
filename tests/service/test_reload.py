"""Live rule reload in a running daemon: edits apply within 2 s, a broken file keeps its last good version."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI, REPO, cli_env

RULE = """
[rule.late-rule]
threshold = 1.0
[rule.late-rule.groups.words]
terms = ["{term}"]
"""


def rules_meta(db: Path) -> dict[str, Any] | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        row = conn.execute("SELECT value FROM meta WHERE key = 'rules'").fetchone()
        conn.close()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "base.toml").write_text(RULE.replace("late-rule", "base-rule").format(term="Martuni"))
    (tmp_path / "feed.xml").write_bytes((REPO / "seeds" / "demo.xml").read_bytes())
    (tmp_path / "config.toml").write_text(
        '[polling]\ninterval = "1h"\n[[feeds]]\nurl = "feed.xml"\n',
    )
    log = (tmp_path / "daemon.service.log").open("w")
    proc = subprocess.Popen([*CLI, "run"], cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=log)
    db = tmp_path / "var" / "feedwatch.db"
    try:
        wait_for(lambda: (rules_meta(db) or {}).get("rules") == ["base-rule"], 20)
        time.sleep(0.5)  # let the file watcher arm
        yield tmp_path, db
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert proc.returncode == 0, (tmp_path / "daemon.service.log").read_text()


@pytest.mark.slow
class TestLiveReload:
    def test_add_break_fix_delete(self, daemon: tuple[Path, Path]) -> None:
        """A new file applies within 2 s; a syntax error keeps its last good rules; deleting removes them."""
        folder, db = daemon
        extra = folder / "rules" / "extra.toml"
        extra.write_text(RULE.format(term="Talish"))
        took = wait_for(lambda: "late-rule" in (rules_meta(db) or {}).get("rules", []), 5)
        assert took < 2.0

        extra.write_text(RULE.format(term="Talish") + "\n[rule.oops\n")
        wait_for(lambda: bool((rules_meta(db) or {}).get("errors")), 5)
        meta = rules_meta(db) or {}
        assert "late-rule" in meta["rules"]  # the file's last good version stays active
        assert "extra.toml:" in meta["errors"][0]

        # An editor's atomic save (write a temp file, rename over) is an edit, not a delete.
        tmp = folder / "rules" / ".extra.toml.swp"
        tmp.write_text(RULE.format(term="Stepanakert"))
        tmp.rename(extra)
        wait_for(lambda: not (rules_meta(db) or {}).get("errors"), 5)
        assert "late-rule" in (rules_meta(db) or {})["rules"]

        extra.unlink()
        wait_for(lambda: (rules_meta(db) or {}).get("rules") == ["base-rule"], 5)
