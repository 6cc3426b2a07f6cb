"""`feedwatch init DIR`: a starter config.toml, an example rule and the systemd unit.

The templates are package data (``daemon/data/``), so a plain ``pip install feedwatch`` can set up a
host without the source tree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from daemon.cli.exitcodes import ExitCode

SERVER_DIR = Path("/etc/feedwatch")
SERVER_STORE = "/var/lib/feedwatch/feedwatch.db"
LOCAL_STORE = "var/feedwatch.db"
# What the unit template names; init puts in the feedwatch that runs it and the config it writes.
UNIT_EXECUTABLE = "/usr/local/bin/feedwatch"
UNIT_CONFIG = "/etc/feedwatch/config.toml"
HIDDEN_BY_UNIT = (Path("/home"), Path("/root"), Path("/run/user"))  # ProtectHome=yes


@dataclass(frozen=True, slots=True)
class Starter:
    """One file ``init`` writes: its package-data source, its path under DIR and its mode."""

    source: str
    target: str
    mode: int


# config.toml may come to hold a secret despite the advice in it, so it is not world-readable;
# the operations guide has the operator give it to the service's group.
STARTERS = (
    Starter("config.toml", "config.toml", 0o640),
    Starter("rules/example.toml", "rules/example.toml", 0o644),
    Starter("feedwatch.service", "feedwatch.service", 0o644),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser("init", help="write a starter config.toml, an example rule and the systemd unit into DIR")
    init.add_argument("dir", metavar="DIR", help="folder to write into (/etc/feedwatch for a server)")
    init.add_argument("--force", action="store_true", help="overwrite files that already exist")
    init.set_defaults(func=cmd_init)


def template(name: str) -> bytes:
    """A file from ``daemon/data/``."""
    return resources.files("daemon").joinpath("data", *name.split("/")).read_bytes()


def is_server_dir(target: Path) -> bool:
    return target.expanduser().resolve() == SERVER_DIR


def render_config(text: str, target: Path) -> str:
    """The starter config for ``target``: the service's state directory on a server, else ``var/``."""
    if is_server_dir(target):
        # Under the unit's ProtectSystem=strict only StateDirectory= is writable, and a relative
        # path would land in read-only /etc/feedwatch.
        path, note = SERVER_STORE, "the unit's StateDirectory=, writable by the service"
    else:
        path, note = LOCAL_STORE, "relative to this file's folder"
    return text.replace("@STORE_PATH@", path).replace("@STORE_NOTE@", note)


def running_executable() -> list[str]:
    """The command that runs this very feedwatch, for the unit's ExecStart=.

    The console script we were started as (a venv's ``bin/feedwatch``, the usual route on Debian
    where system pip is blocked), else the one installed beside this interpreter, else
    ``python -m daemon`` with this interpreter. Symlinks are kept: /usr/local/bin/feedwatch may
    point into a venv on purpose.
    """
    argv0 = Path(sys.argv[0])
    if argv0.name == "feedwatch" and os.access(argv0, os.X_OK):
        return [os.path.abspath(argv0)]
    beside = Path(sys.prefix) / "bin" / "feedwatch"
    if os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "daemon"]


def render_unit(text: str, target: Path, executable: list[str]) -> str:
    """The unit with ExecStart= running ``executable`` on ``target``'s config.toml; all else as packaged."""
    config = str(config_path(target))
    command = " ".join(shlex.quote(part) for part in executable)
    exec_line = f"ExecStart={UNIT_EXECUTABLE} run --config {UNIT_CONFIG}\n"
    env_line = f"Environment=FEEDWATCH_CONFIG={UNIT_CONFIG}\n"
    if exec_line not in text or env_line not in text:
        raise AssertionError("the unit template lost its ExecStart= or FEEDWATCH_CONFIG line")
    text = text.replace(exec_line, f"ExecStart={command} run --config {shlex.quote(config)}\n")
    return text.replace(env_line, f"Environment=FEEDWATCH_CONFIG={shlex.quote(config)}\n")


def config_path(target: Path) -> Path:
    return Path(os.path.abspath(target.expanduser())) / "config.toml"


def starter_files(target: Path, executable: list[str] | None = None) -> list[tuple[Path, bytes, int]]:
    """(path, content, mode) of every file ``init`` writes into ``target``."""
    out = []
    for starter in STARTERS:
        data = template(starter.source)
        if starter.target == "config.toml":
            data = render_config(data.decode("utf-8"), target).encode("utf-8")
        elif starter.target == "feedwatch.service":
            unit = render_unit(data.decode("utf-8"), target, executable or running_executable())
            data = unit.encode("utf-8")
        out.append((target / starter.target, data, starter.mode))
    return out


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file and rename: a crash never leaves half a config behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    executable = running_executable()
    files = starter_files(target, executable)
    existing = [path for path, _, _ in files if path.exists()]
    if existing and not args.force:
        # All or nothing: a half-written set (new config, old rules) is harder to reason about.
        for path in existing:
            print(f"feedwatch: error: {path} already exists (use --force to overwrite)", file=sys.stderr)
        return ExitCode.USAGE
    if target.exists() and not target.is_dir():
        print(f"feedwatch: error: {target} is not a folder", file=sys.stderr)
        return ExitCode.USAGE
    try:
        for path, data, mode in files:
            write_file(path, data, mode)
            print(f"wrote {path}")
    except OSError as exc:
        # The folder, not the command, is what is wrong (permissions, a full disk): exit 1, like store trouble.
        print(f"feedwatch: error: cannot write into {target}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.DEGRADED
    config = target / "config.toml"
    print(f"next: add [[feeds]] to {config}, then run: feedwatch check --config {config}")
    print(f"unit: ExecStart= runs {' '.join(executable)}; to run another install, edit that line (docs/operations.md)")
    if any(Path(executable[0]).is_relative_to(hidden) for hidden in HIDDEN_BY_UNIT):
        print(
            f"warning: the unit's ProtectHome=yes hides {executable[0]} from the service: install feedwatch "
            "into a venv under /opt (docs/operations.md)",
            file=sys.stderr,
        )
    if is_server_dir(target):
        print(f"unit: sudo install -m 0644 {target / 'feedwatch.service'} /etc/systemd/system/ (docs/operations.md)")
    return ExitCode.OK
