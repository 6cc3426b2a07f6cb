"""The `feedwatch` parser: global options anywhere, help for every option, exit codes, quiet broken pipes."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.cli.exitcodes import ExitCode
from daemon.cli.main import build_parser, subparsers
from tests.conftest import CLI, REPO, cli_env


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the demo config, rules and feed in a folder that is not the working directory."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "config.toml", site / "config.toml")
    for folder in ("rules", "seeds"):
        shutil.copytree(REPO / folder, site / folder)
    return site


def leaf_commands() -> list[list[str]]:
    """Every runnable command path, e.g. ["feeds", "add"], found by walking the parser."""
    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append(path)
            return
        for action in subs:
            for name, child in action.choices.items():
                walk(child, [*path, name])

    walk(build_parser(), [])
    return found


def positionals(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for a parser's required positional arguments."""
    return [
        "x"
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction) and a.nargs not in ("?", "*")
    ]


def parser_for(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


class TestGlobalOptions:
    @pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
    def test_config_before_or_after_every_command(self, path: list[str]) -> None:
        """-c/--config and --log-level parse before the command and after it, at every depth."""
        args = [*path, *positionals(parser_for(path))]
        before = build_parser().parse_args(["-c", "a.toml", "--log-level", "debug", *args])
        after = build_parser().parse_args([*args, "--config", "a.toml", "--log-level", "debug"])
        assert (before.config, before.log_level) == ("a.toml", "debug")
        assert (after.config, after.log_level) == ("a.toml", "debug")

    def test_later_config_wins_and_absent_keeps_default(self) -> None:
        """Given twice, the one after the command counts; given nowhere, it stays None (env/default apply)."""
        both = build_parser().parse_args(["-c", "first.toml", "feeds", "list", "-c", "second.toml"])
        assert both.config == "second.toml"
        before_only = build_parser().parse_args(["--config", "first.toml", "feeds", "list"])
        assert before_only.config == "first.toml"
        neither = build_parser().parse_args(["status"])
        assert (neither.config, neither.log_level) == (None, None)

    def test_subprocess_both_forms(self, site: Path, tmp_path: Path) -> None:
        """`feedwatch -c F check` and `feedwatch check --config F` both load F from another folder."""
        config = str(site / "config.toml")
        for argv in (["-c", config, "check"], ["check", "--config", config]):
            out = feedwatch(tmp_path, *argv)
            assert out.returncode == ExitCode.OK, out.stderr
            assert f"config: {config} ok" in out.stdout

    def test_run_once_with_config_after_the_command(self, site: Path, tmp_path: Path) -> None:
        """`feedwatch run --config F --once` from another folder runs F's site and prints its alerts."""
        out = feedwatch(tmp_path, "run", "--config", str(site / "config.toml"), "--once")
        assert out.returncode == ExitCode.OK, out.stderr
        assert "ALERT [" in out.stdout
        assert (site / "var" / "feedwatch.db").exists()  # relative paths follow the config, not the cwd

    def test_unknown_config_is_a_usage_error(self, tmp_path: Path) -> None:
        """A --config that does not exist exits 2 naming the file, whichever side it is on."""
        out = feedwatch(tmp_path, "status", "--config", str(tmp_path / "nope.toml"))
        assert out.returncode == ExitCode.USAGE
        assert "nope.toml: file not found" in out.stderr


class TestHelp:
    def test_every_option_has_help(self) -> None:
        """Each option and argument of every command says what it is for in --help."""
        parser = build_parser()
        missing = []
        for sub in [parser, *subparsers(parser)]:
            for action in sub._actions:
                if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                    continue
                if not action.help or action.help == argparse.SUPPRESS:
                    missing.append(f"{sub.prog}: {'/'.join(action.option_strings) or action.dest}")
        assert missing == []

    def test_help_lists_global_options_on_a_subcommand(self, tmp_path: Path) -> None:
        """`feedwatch feeds add --help` shows --config and --log-level too."""
        out = feedwatch(tmp_path, "feeds", "add", "--help")
        assert out.returncode == 0
        assert "--config FILE" in out.stdout
        assert "--log-level" in out.stdout


class TestExitCodes:
    def test_one_enum_no_stray_constants(self) -> None:
        """Exit codes are defined once: no EXIT_* constants anywhere in the package."""
        offenders = [
            str(p.relative_to(REPO))
            for p in (REPO / "daemon").rglob("*.py")
            if "EXIT_" in p.read_text(encoding="utf-8") and p.name != "exitcodes.py"
        ]
        assert offenders == []

    def test_documented_values(self) -> None:
        """The values systemd units and monitoring rely on never move."""
        assert [int(c) for c in (ExitCode.OK, ExitCode.DEGRADED, ExitCode.USAGE, ExitCode.QUEUED)] == [0, 1, 2, 3]
        assert ExitCode.NO_DAEMON == 4


class TestBrokenPipe:
    @pytest.mark.parametrize(
        "argv", [["--help"], ["check"], ["score", "seeds/demo.xml"], ["status", "--json"]], ids=" ".join
    )
    def test_reader_gone_no_traceback(self, site: Path, argv: list[str]) -> None:
        """When stdout's reader has gone (`| head`), the command stops quietly: no traceback on stderr."""
        proc = subprocess.Popen([*CLI, *argv], cwd=site, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # like `head` exiting before the command writes
        with proc.stderr:
            err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert "Traceback" not in err
        assert "BrokenPipeError" not in err
        assert "Exception ignored" not in err


class TestCheckCrossReferences:
    def test_rule_naming_an_unknown_feed_is_warned(self, site: Path) -> None:
        """A rule whose `feeds` or `except_feeds` names no configured feed (a typo) is warned about with file:line."""
        (site / "rules" / "typo.toml").write_text(
            '[rule.typo]\nfeeds = ["dmeo"]\nexcept_feeds = ["demo"]\n[rule.typo.groups.g]\nterms = ["Martuni"]\n'
        )
        out = feedwatch(site, "check")
        assert out.returncode == 0, out.stderr
        warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
        assert warnings == [
            f"warning: {site / 'rules' / 'typo.toml'}:1: rule 'typo': feeds names 'dmeo', which no [[feeds]] entry"
            " defines (configured: demo)"
        ]


def test_every_config_error_line_says_it_is_an_error(site: Path) -> None:
    """Config errors reported all at once each get the `feedwatch: error:` prefix, one per line."""
    config = site / "config.toml"
    text = config.read_text().replace('interval = "5m"', 'interval = "5q"').replace("[store]", "[store]\nbogus = 1")
    config.write_text(text)
    out = feedwatch(site, "check")
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert all(line.startswith(f"feedwatch: error: {config}:") for line in lines), lines
