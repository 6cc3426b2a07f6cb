"""The exit codes of every ``feedwatch`` command, in one place (monitoring and systemd key on them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``feedwatch`` process tells its caller.

    Only USAGE means "fix the command line, config or rules first": the unit's
    ``RestartPreventExitStatus=2`` keeps systemd from looping on it. Trouble that may pass (a full
    disk, a locked or unreadable database, another daemon on the same store) is DEGRADED, so
    ``Restart=on-failure`` tries again.
    """

    OK = 0
    DEGRADED = 1  # status: failing feeds, dead letters, rule reload error; store or delivery trouble
    USAGE = 2  # usage, config or rule error
    QUEUED = 3  # `run --once` ended with alerts still queued (they go out on the next run)
    NO_DAEMON = 4  # `status`: no daemon heartbeat within 3 poll intervals
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
    BROKEN_PIPE = 141  # stdout closed early (`feedwatch status | head`), as for a tool killed by SIGPIPE
