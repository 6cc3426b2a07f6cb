"""One module per command (group); each has ``register(subparsers)``. Add new ones to COMMANDS."""

from __future__ import annotations

from daemon.cli import alerts, check, db, explain, feeds, init, rules_tools, run, silence, status

COMMANDS = [
    run,
    check,
    status,
    feeds,
    rules_tools,
    alerts,
    init,
    db,
    silence,
    explain,
]
