"""Running a command as an unprivileged user (nobody), for tests of permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]


def as_nobody() -> list[str]:
    """A prefix running a command as user nobody, or [] when we are not root.

    Skips (with the reason) when nobody cannot run this Python environment at all, e.g. a virtualenv
    or checkout under a folder private to root: then the test could not tell permissions apart.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot run a command as another user")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import msgspec, tomlkit, daemon.cli.main"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"user nobody cannot run this Python environment or checkout: {last}")
    return prefix
