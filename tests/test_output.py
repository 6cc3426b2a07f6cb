"""What people and scripts see: the demo on a terminal, JSON logs elsewhere, `--json` stdout that is only JSON."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO, cli_env

README = REPO / "README.md"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the shipped config, rules and demo feed."""
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    for folder in ("rules", "seeds"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def on_terminal(cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a real pseudo-terminal; exit code and everything shown."""
    main, child = pty.openpty()
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL, stdout=child, stderr=child)
    os.close(child)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return proc.wait(timeout=timeout), shown.decode("utf-8", "replace").replace("\r\n", "\n")


def readme_sample() -> str:
    """The alert block under "What an alert looks like" in README.md."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## What an alert looks like") :]
    return section.split("```\n", 2)[1]


class TestDemoOnATerminal:
    def test_alerts_and_one_summary_line_without_routine_logs(self, demo: Path) -> None:
        """On a TTY, `run --once` shows the alerts and a summary line; `delivered`/`pruned` lines stay out."""
        code, shown = on_terminal(demo, "run", "--once")
        assert code == 0, shown
        assert shown.count("\nALERT [") + shown.startswith("ALERT [") >= 10
        summary = [line for line in shown.splitlines() if line.startswith("feedwatch: ")]
        assert len(summary) == 1
        assert re.fullmatch(r"feedwatch: 1 feed polled · \d+ alerts delivered · state in .*feedwatch\.db.*", summary[0])
        assert "delivered " not in shown.replace("alerts delivered ", "")
        assert "pruned" not in shown
        assert "feed_polled" not in shown

    def test_log_level_info_shows_routine_lines(self, demo: Path) -> None:
        """`--log-level info` brings the routine events back on the terminal."""
        code, shown = on_terminal(demo, "run", "--once", "--log-level", "info")
        assert code == 0, shown
        assert "delivered" in shown
        assert "pruned" in shown

    def test_readme_sample_is_what_the_demo_prints(self, demo: Path) -> None:
        """README's sample alert appears, line for line, in the demo's output (only the id differs)."""
        sample = readme_sample()
        assert "ALERT [" in sample
        pattern = re.escape(sample).replace(re.escape("fw-…"), r"fw-[0-9a-f]+")
        out = subprocess.run(
            [*CLI, "run", "--once"], cwd=demo, env=cli_env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        first = out.stdout.split("\n" + "─" * 72 + "\n")[0]
        assert re.search(pattern, out.stdout), (
            "README.md's sample alert is not what the demo prints (rules changed?): put the demo's first "
            f"alert there, with its id written fw-…:\n{first}"
        )


class TestMachineOutput:
    def test_logs_are_json_lines_on_stderr_when_not_a_terminal(self, demo: Path) -> None:
        """Without a TTY every stderr line is a JSON object, and stdout has alerts but no log lines."""
        out = subprocess.run(
            [*CLI, "run", "--once"], cwd=demo, env=cli_env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        events = [json.loads(line) for line in out.stderr.splitlines()]
        assert {"feed_polled", "delivered"} <= {e["event"] for e in events}
        assert '"event"' not in out.stdout
        assert "ALERT [" in out.stdout

    @pytest.mark.parametrize(
        "argv",
        [
            ["status", "--json"],
            ["alerts", "list", "--json"],
            ["score", "--json", "--title", "Shelling near Martuni"],
            ["backtest", "--json", "seeds/demo.xml"],
            ["score", "--json", "seeds/demo.xml", "--log-level", "debug"],
        ],
        ids=" ".join,
    )
    def test_json_stdout_is_only_json(self, demo: Path, argv: list[str]) -> None:
        """Whatever --json prints on stdout parses as one JSON document, even with debug logging on."""
        ran = subprocess.run([*CLI, "run", "--once"], cwd=demo, env=cli_env(), capture_output=True, timeout=60)
        assert ran.returncode == 0
        out = subprocess.run([*CLI, *argv], cwd=demo, env=cli_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode in (0, 4), out.stderr  # status: 4, no daemon runs
        json.loads(out.stdout)
