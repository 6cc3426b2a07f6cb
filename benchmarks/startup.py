"""Start-up: how much longer than ``python -c pass`` the quick commands take, measured in the same run.

Each command runs as its own process (``python -m daemon …``) on a small site (one rule, a console
channel, a store written by the daemon); the baseline is ``python -c pass`` with the same interpreter.
The runs are interleaved and each figure is the best of N, so a busy machine moves both alike. The
source tree's bytecode is compiled first, as it is for an installed feedwatch.
"""

from __future__ import annotations

import compileall
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, daemon_env, row

RUNS = 15
TARGET = 0.1  # seconds over `python -c pass`
CONFIG = """[daemon]
rules_dir = "rules"
log_level = "warning"

[store]
path = "var/feedwatch.db"

[polling]
interval = "5m"

[alerts]
default_channels = ["console"]

[channels.console]
type = "console"
"""
COMMANDS = {
    "--version": ["--version"],
    "status": ["status"],
    "check (start-up part)": ["check"],
}


def _site(folder: Path) -> Path:
    shutil.copytree(REPO / "rules", folder / "rules")
    (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
    return folder


def _env() -> dict[str, str]:
    env = daemon_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, out.stdout


def _check_startup(stdout: str) -> float | None:
    """The start-up seconds `check` reports on its timing line."""
    for line in stdout.splitlines():
        if line.startswith("timing: start-up "):
            value = line.removeprefix("timing: start-up ").split(" s", 1)[0]
            try:
                return float(value)
            except ValueError:
                return None
    return None


def run(quick: bool) -> dict[str, Any]:
    runs = 7 if quick else RUNS
    compileall.compile_dir(REPO / "daemon", quiet=1)  # what pip does for an installed package
    env = _env()
    with tempfile.TemporaryDirectory(prefix="feedwatch-startup-") as tmp:
        site = _site(Path(tmp))
        # A store as the daemon leaves it, so `status` reads real rows.
        once = [sys.executable, "-m", "daemon", "run", "--once"]
        subprocess.run(once, cwd=site, env=env, capture_output=True, timeout=120, check=False)
        base: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        check_reported: list[float] = []
        for _ in range(runs):
            base.append(_time([sys.executable, "-c", "pass"], site, env)[0])
            for name, argv in COMMANDS.items():
                seconds, stdout = _time([sys.executable, "-m", "daemon", *argv], site, env)
                times[name].append(seconds)
                if argv == ["check"]:
                    reported = _check_startup(stdout)
                    if reported is not None:
                        check_reported.append(reported)
    floor = min(base)
    best = {name: min(values) for name, values in times.items()}
    # check's own start-up: the interpreter, imports and config, as it reports them (10 ms resolution),
    # apart from loading the rules and running their examples.
    if check_reported:
        best["check (start-up part)"] = min(check_reported)
    rows = [
        row(
            f"startup: {name}, seconds over `python -c pass` (s)",
            seconds - floor,
            TARGET,
            unit="s",
            ratio=(seconds - floor) / TARGET,
            op="<=",
            target=1.0,
            baseline_name="budget",
            note=f"{seconds:.3f} s against {floor:.3f} s for python -c pass",
        )
        for name, seconds in best.items()
    ]
    return {
        "rows": rows,
        "details": {
            "runs": runs,
            "python_c_pass_s": round(floor, 4),
            "best_s": {k: round(v, 4) for k, v in best.items()},
            "check_total_best_s": round(min(times["check (start-up part)"]), 4),
        },
    }
