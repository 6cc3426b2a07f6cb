"""Start light: each command imports only what it needs. These tests check *which* modules a command
loads (deterministic); how long start-up takes is measured as ratios in ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import commands
from daemon.cli.main import build_parser, command_word
from tests.conftest import REPO, cli_env

HEAVY = ("httpx", "apscheduler", "lxml", "feedparser", "rapidfuzz", "aiosmtplib", "tomlkit", "watchfiles")
CONFIG = """[daemon]
rules_dir = "rules"
[store]
path = "var/fw.db"
[alerts]
default_channels = ["console"]
[channels.console]
type = "console"
"""


def loaded_after(cwd: Path, argv: list[str]) -> set[str]:
    """Top-level modules imported by running ``feedwatch *argv`` (in-process, in a fresh interpreter)."""
    script = (
        "import json, sys\n"
        "from daemon.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print('\\nMODULES', json.dumps(sorted({m.split('.')[0] for m, v in sys.modules.items() if v})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60, check=False
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


class TestCommandTable:
    def test_table_lists_every_command(self) -> None:
        """Every command the parsers define is in the lazy table, pointing at the module that defines it."""
        parser = build_parser()
        action = next(a for a in parser._actions if a.dest == "command")
        assert set(action.choices) == set(commands.COMMANDS)
        for name, module in commands.COMMANDS.items():
            one = build_parser(name)
            sub = next(a for a in one._actions if a.dest == "command")
            assert name in sub.choices, f"{name} is not registered by {module}"

    @pytest.mark.parametrize(
        ("argv", "word"),
        [
            (["status"], "status"),
            (["-c", "x.toml", "feeds", "list"], "feeds"),
            (["--config=x.toml", "--log-level", "debug", "run", "--once"], "run"),
            (["--version"], None),
            ([], None),
        ],
    )
    def test_command_word(self, argv: list[str], word: str | None) -> None:
        """The command is found after global options and their values."""
        assert command_word(argv) == word


class TestImports:
    def test_version_loads_no_command(self, site: Path) -> None:
        """`--version` imports no command module and no third-party library."""
        loaded = loaded_after(site, ["--version"])
        assert loaded & {*HEAVY, "structlog", "msgspec", "asyncio", "sqlite3"} == set()

    def test_status_loads_no_network_or_parsing_stack(self, site: Path) -> None:
        """`status` reads config and store only: no HTTP client, scheduler, parser, matcher or logging library."""
        loaded = loaded_after(site, ["status"])
        assert loaded & {*HEAVY, "structlog", "asyncio", "regex", "ahocorasick"} == set()

    def test_check_loads_no_network_stack(self, site: Path) -> None:
        """`check` with a console channel compiles rules but loads no HTTP client, scheduler or parser."""
        loaded = loaded_after(site, ["check"])
        assert loaded & (set(HEAVY) - {"rapidfuzz"}) == set()  # rapidfuzz: fuzzy terms and similar-term warnings

    def test_daemon_loads_only_configured_channels(self) -> None:
        """The daemon's modules import no SMTP, Apprise or metrics library nor feedparser unless configured."""
        script = (
            "import sys, daemon.service.app, daemon.cli.run\n"
            "print(sorted({m.split('.')[0] for m, v in sys.modules.items() if v}))"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, env=cli_env(), capture_output=True, text=True, check=True
        )
        loaded = set(eval(out.stdout))  # a list literal we printed ourselves
        assert (
            loaded & {"aiosmtplib", "feedparser", "tomlkit", "click", "pygments", "apprise", "prometheus_client"}
            == set()
        )
