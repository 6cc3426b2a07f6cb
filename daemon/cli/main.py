"""The ``feedwatch`` command line: parser, dispatch, and the one mapping from errors to exit codes.

Global options (``-c/--config``, ``--log-level``) are accepted before and after the subcommand, at
any depth (``feedwatch -c F feeds add URL`` and ``feedwatch feeds add URL --config F`` alike):
systemd units, cron lines and docs write them after the subcommand, people often before.
Exit codes: :class:`daemon.cli.exitcodes.ExitCode`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence

from daemon import __version__
from daemon.cli import commands
from daemon.cli.exitcodes import ExitCode
from daemon.errors import ConfigError, FeedwatchError, RuleError, StoreError
from daemon.util.startup import after_import, no_gc

Handler = Callable[[argparse.Namespace], int]
LOG_LEVELS = ("debug", "info", "warning", "error")


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--config`` and ``--log-level`` on ``parser``.

    Below the top level the default is SUPPRESS, so a subcommand that does not repeat an option
    leaves the value given before it alone; given in both places, the later one wins.
    """
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: $FEEDWATCH_CONFIG, then ./config.toml)",
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help="log level, overriding [daemon] log_level (logs always go to stderr)",
    )


def subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below ``parser``, depth first, each once (aliases share a parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from subparsers(child)


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is neither an option nor an option's value."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("-c", "--config", "--log-level"):
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            return word
    return None


def build_parser(command: str | None = None, *, bare: bool = False) -> argparse.ArgumentParser:
    """The parser with ``command``'s module registered (every module when it is None or unknown);
    ``bare``: none at all, for ``--version``.
    """
    parser = argparse.ArgumentParser(
        prog="feedwatch",
        description="Watch RSS/Atom feeds with explainable rules and deliver alerts.",
        epilog="exit codes: 0 ok · 1 degraded or trouble that may pass (store, delivery) · "
        "2 usage, config or rule error · 3 `run --once` left alerts queued · 4 no daemon heartbeat",
    )
    parser.add_argument("--version", action="version", version=f"feedwatch {__version__}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in [] if bare else commands.modules(command):
        module.register(sub)
    for child in subparsers(parser):
        add_global_options(child, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = command_word(words)
    # Only the named command's module is imported: `--version` and `status` start in a blink.
    bare = command is None and "--version" in words and not {"-h", "--help"} & set(words)
    with no_gc():  # importing the command's modules: see daemon.util.startup
        parser = build_parser(command, bare=bare)
    try:
        args = parser.parse_args(argv)  # --help writes to stdout too
        # Every command logs to stderr (structlog's default is stdout, where `--json` output goes),
        # set up when structlog is first imported; `run` sets its own level from the config.
        after_import("structlog", lambda: _setup_logging(args.log_level or "warning"))
        code = run_handler(args.func, args)
        # Flush inside the guard: a reader that went away (`| head`) shows up here, not at exit.
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_gone()
    return code


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command; every error feedwatch raises on purpose becomes one line and an exit code."""
    try:
        return int(handler(args))
    except (ConfigError, RuleError) as exc:
        # Config errors come all at once, one per line: each line says what it is.
        return _fail("\n".join(f"feedwatch: error: {line}" for line in str(exc).splitlines() or [""]), ExitCode.USAGE)
    except StoreError as exc:
        # The store may come back (disk space freed, lock released): not a reason to stop retrying.
        return _fail(f"feedwatch: store error: {exc}", ExitCode.DEGRADED)
    except FeedwatchError as exc:
        return _fail(f"feedwatch: error: {exc}", ExitCode.DEGRADED)
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"feedwatch: error: {where}{exc.strerror or exc}", ExitCode.DEGRADED)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _fail(message: str, code: ExitCode) -> int:
    from daemon.cli.common import show

    show(message, file=sys.stderr)  # an error may quote a feed URL: redacted like all command output
    return code


def _stdout_gone() -> int:
    """The reader of stdout left (``feedwatch status | head``): stop quietly, no traceback.

    stdout is pointed at /dev/null so the interpreter's final flush does not raise again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return ExitCode.BROKEN_PIPE


def _setup_logging(level: str) -> None:
    from daemon.service.log import setup_logging

    setup_logging(level)
