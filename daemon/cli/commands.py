"""Which module implements each top-level command. A command's module is imported only when that command
runs (``feedwatch --version`` and ``status`` must start in a blink), so every module here keeps its heavy
imports — httpx, the scheduler, the matcher, tomlkit — out of its top level or behind its handler.

Each module has ``register(subparsers)``, which may add several commands: list every one of them here
(``tests/cli/test_startup.py`` checks that this table and the parsers agree).
"""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS: dict[str, str] = {
    "run": "daemon.cli.run",
    "check": "daemon.cli.check",
    "status": "daemon.cli.status",
    "feeds": "daemon.cli.feeds",
    "score": "daemon.cli.rules_tools",
    "backtest": "daemon.cli.rules_tools",
    "alerts": "daemon.cli.alerts",
    "outbox": "daemon.cli.alerts",
    "send-test": "daemon.cli.alerts",
    "init": "daemon.cli.init",
    "db": "daemon.cli.db",
    "silence": "daemon.cli.silence",
    "explain": "daemon.cli.explain",
    "rules": "daemon.cli.rules_list",
}


def modules(command: str | None) -> list[ModuleType]:
    """The module of ``command``, or every command module (in help order) when it is unknown or None."""
    if command in COMMANDS:
        return [importlib.import_module(COMMANDS[command])]
    return [importlib.import_module(name) for name in dict.fromkeys(COMMANDS.values())]
