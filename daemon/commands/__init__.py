"""One module per command (group); each has ``register(subparsers)``. Add new ones to COMMANDS."""

from __future__ import annotations

from daemon.commands import check, db, init, run, status

COMMANDS = [
    run,
    check,
    status,
    init,
    db,
]
