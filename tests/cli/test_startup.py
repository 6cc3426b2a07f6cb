"""Start light: each command imports only what it needs. These tests check *which* modules a command
loads (deterministic); how long start-up takes is measured as ratios in ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.cli import commands
from daemon.cli.main import build_parser, command_word
from tests.conftest import REPO, cli_env
from tests.kit.feeds import FeedServer

# pyexpat: the XML parser under the fast parse path (and feedparser), loaded only by commands that parse feeds.
HEAVY = ("httpx", "apscheduler", "pyexpat", "feedparser", "rapidfuzz", "aiosmtplib", "tomlkit")
CONFIG = """[daemon]
rules_dir = "rules"
[store]
path = "var/fw.db"
[alerts]
default_channels = ["console"]
[channels.console]
type = "console"
"""
RULE = """[rule.outage]
threshold = 1.0
[rule.outage.groups.what]
terms = ["blackout*", "power cut"]
"""
FUZZY_RULE = """[rule.region]
threshold = 1.0
[rule.region.groups.where]
terms = [{ term = "Karabakh", fuzzy = 85 }]
"""
# What a console-only `run --once` must not load: other channels' libraries (the Slack and webhook channels'
# HTTP client among them: feeds have their own), optional parts, the fallback parser, lxml (the fast parse
# path is the standard library's ElementTree).
NOT_FOR_CONSOLE = (
    "aiosmtplib", "email.mime", "prometheus_client", "feedparser", "apprise", "httpx", "httpcore", "anyio", "lxml",
)  # fmt: skip
# What a poll of a plain feed (no "br" encoding, no comments or scripts in its markup) must not load:
# whatever the daemon imports stays in its memory for good.
NOT_FOR_PLAIN_POLLS = ("statistics", "fractions", "html.parser", "_markupbase", "brotli")


def loaded_after(cwd: Path, argv: list[str], *, full: bool = False) -> set[str]:
    """Top-level modules (``full``: every module) imported by running ``feedwatch *argv`` (in-process,
    in a fresh interpreter)."""
    return run_and_list(cwd, argv, full=full)[1]


def run_and_list(cwd: Path, argv: list[str], *, full: bool = False) -> tuple[str, set[str]]:
    """What ``feedwatch *argv`` printed, and the modules it imported (as in ``loaded_after``)."""
    name = "m" if full else "m.split('.')[0]"
    script = (
        "import json, sys\n"
        "from daemon.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        f"print('\\nMODULES', json.dumps(sorted({{{name} for m, v in sys.modules.items() if v}})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60, check=False
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    return out.stdout, set(json.loads(line.removeprefix("MODULES ")))


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

    def test_quick_commands_skip_what_only_some_configs_or_mistakes_need(self, site: Path) -> None:
        """`--version` and `status` load no hashing, IDNA, time zone, "did you mean" or importlib.resources code."""
        for argv in (["--version"], ["status"]):
            loaded = loaded_after(site, argv, full=True)
            assert loaded & {"hashlib", "idna", "zoneinfo", "difflib", "importlib.abc", "importlib.resources"} == set()

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
            loaded
            & {"aiosmtplib", "feedparser", "tomlkit", "click", "pygments", "apprise", "prometheus_client", "rapidfuzz"}
            == set()
        )
        assert loaded & {m.split(".")[0] for m in NOT_FOR_PLAIN_POLLS} - {"html"} == set()


@pytest.fixture
def polling_site(tmp_path: Path, httpserver: HTTPServer) -> tuple[Path, FeedServer]:
    """A site with one rule and one feed on 127.0.0.1 that answers 304 once it has been read."""
    feed = FeedServer(httpserver)
    feed.add("g1", "Blackout across the city")
    feed.add("g2", "Markets calm")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "outage.toml").write_text(RULE)
    (tmp_path / "config.toml").write_text(f'{CONFIG}\n[[feeds]]\nname = "wire"\nurl = "{feed.url}"\n')
    return tmp_path, feed


class TestRunOnce:
    def test_console_only_run_loads_no_optional_library(self, polling_site: tuple[Path, FeedServer]) -> None:
        """`run --once` with a console channel loads no SMTP, email, metrics, Apprise or HTTP client library,
        nor feedparser or lxml."""
        site, feed = polling_site
        loaded = loaded_after(site, ["run", "--once"], full=True)
        assert len(feed.requests) == 1  # it did poll
        assert {m for m in loaded if m.split(".")[0] in NOT_FOR_CONSOLE or m.startswith(NOT_FOR_CONSOLE)} == set()

    def test_plain_polls_load_no_helper_they_do_not_use(self, polling_site: tuple[Path, FeedServer]) -> None:
        """`run --once` over a plain feed with new items loads no statistics, full HTML parser or brotli
        decoder; the HTML parser loads once an item has markup only it reads."""
        site, feed = polling_site
        loaded = loaded_after(site, ["run", "--once"], full=True)
        assert {"daemon.rules.matcher", "daemon.util.text"} <= loaded  # new items were read and scored
        assert loaded & set(NOT_FOR_PLAIN_POLLS) == set()
        feed.add("g3", "Blackout <!-- a comment --> downtown")
        assert {"html.parser", "daemon.util.htmlparse"} <= loaded_after(site, ["run", "--once"], full=True)

    def test_fuzzy_terms_load_rapidfuzz_and_no_regex_engine(self, polling_site: tuple[Path, FeedServer]) -> None:
        """A fuzzy term matches a misspelling through rapidfuzz, loaded for it; a pack without regex terms loads
        no regex engine."""
        site, feed = polling_site
        (site / "rules" / "outage.toml").write_text(FUZZY_RULE)
        config = site / "config.toml"
        config.write_text(config.read_text() + 'backfill = "all"\n')  # alert the first poll's items
        feed.add("g3", "Clashes reported near Karabagh overnight")
        feed.add("g4", "Clashes reported near Karabagh overnight, officials say")
        printed, loaded = run_and_list(site, ["run", "--once"], full=True)
        assert "Clashes reported near Karabagh overnight" in printed  # the misspelling matched
        assert {"daemon.rules.matcher", "daemon.alerting.stories", "rapidfuzz"} <= loaded
        assert "regex" not in {m.split(".")[0] for m in loaded}  # a pack without regex terms

    def test_shipped_pack_scores_without_the_regex_engine(self, polling_site: tuple[Path, FeedServer]) -> None:
        """The shipped pack says "calls to stop the fighting" in its own language, so the daemon scoring with it
        never loads the regex engine."""
        site, feed = polling_site
        shutil.rmtree(site / "rules")
        shutil.copytree(REPO / "rules", site / "rules")
        config = site / "config.toml"
        config.write_text(config.read_text() + 'backfill = "all"\n')
        feed.add("g3", "Putin urges Baku and Yerevan to stop the Karabakh fighting")
        printed, loaded = run_and_list(site, ["run", "--once"], full=True)
        assert "stop the Karabakh fighting" in printed  # karabakh-diplomacy fired through the word gap term
        assert "daemon.rules.matcher" in loaded  # items were scored
        assert "regex" not in {m.split(".")[0] for m in loaded}

    def test_pack_with_a_regex_term_loads_the_engine_and_matches(self, polling_site: tuple[Path, FeedServer]) -> None:
        """A user pack's regex term still runs on the regex engine, loaded when the matcher is built."""
        site, feed = polling_site
        (site / "rules" / "outage.toml").write_text(RULE.replace('"power cut"', '{ regex = "grid fail\\\\w+" }'))
        config = site / "config.toml"
        config.write_text(config.read_text() + 'backfill = "all"\n')
        feed.add("g3", "Grid failures hit the north")
        printed, loaded = run_and_list(site, ["run", "--once"], full=True)
        assert "Grid failures hit the north" in printed
        assert "regex" in {m.split(".")[0] for m in loaded}

    def test_all_304_run_never_compiles_the_matcher(self, polling_site: tuple[Path, FeedServer]) -> None:
        """A cycle with new items compiles the matcher; a cycle where every feed answers 304 does not."""
        site, feed = polling_site
        first = loaded_after(site, ["run", "--once"], full=True)
        assert "daemon.rules.matcher" in first  # new items were scored: the module is a true witness
        second = loaded_after(site, ["run", "--once"], full=True)
        assert [r.headers.get("If-None-Match") is not None for r in feed.requests] == [False, True]
        assert "daemon.rules.matcher" not in second
        assert "regex" not in {m.split(".")[0] for m in second}

    def test_rule_error_is_still_reported_at_load(self, polling_site: tuple[Path, FeedServer]) -> None:
        """Validation stays eager: a bad term stops `run --once` before any poll, naming file and line."""
        site, feed = polling_site
        (site / "rules" / "outage.toml").write_text(RULE.replace('"power cut"', '"power *cut"'))
        out = subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--once"],
            cwd=site,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2
        assert "outage.toml:4:" in out.stderr
        assert "'*' is allowed only at the end of a word" in out.stderr
        assert feed.requests == []
