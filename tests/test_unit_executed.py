"""The systemd unit, executed: ExecStart= from packaging/ and from `feedwatch init`, run as systemd would.

systemd as PID 1 cannot run here, so this is the one stand-in: an AF_UNIX datagram socket plays
systemd's notify socket ($NOTIFY_SOCKET, credentials checked as NotifyAccess=main does), and the
test sends the signals `systemctl reload/stop` send. Everything else is real: the exact argument
list of ExecStart= (only the executable and config path substituted), the unit's Environment=
lines, cwd "/" as for a system service, a feed on a loopback HTTP server.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from daemon.cli.init import UNIT_CONFIG, UNIT_EXECUTABLE
from daemon.cli.main import build_parser
from tests.conftest import REPO, cli_env
from tests.kit.feeds import FeedServer
from tests.kit.process import NotifyListener, write_site

PACKAGED_UNIT = REPO / "packaging" / "feedwatch.service"
WATCHDOG_SEC = 60


def service_values(unit: Path, key: str) -> list[str]:
    """Values of ``key=`` in the [Service] section, in order."""
    section, found = "", []
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and not line.startswith(("#", ";")) and line.startswith(f"{key}="):
            found.append(line.partition("=")[2])
    return found


def exec_start(unit: Path) -> list[str]:
    """ExecStart= as the argument list systemd would run (quotes honoured; no specifiers, no $VARS)."""
    (line,) = service_values(unit, "ExecStart")
    line = line.lstrip("@-:+!")  # systemd's optional prefixes
    assert "%" not in line, "specifiers would need systemd to expand them"
    assert "$" not in line, "variables would need systemd to expand them"
    return shlex.split(line)


def environment(unit: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in service_values(unit, "Environment"):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    return env


def console_script(folder: Path) -> Path:
    """A `feedwatch` executable like the one pip writes into a venv's bin/, for this interpreter."""
    script = folder / "bin" / "feedwatch"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom daemon.cli.main import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def run_as_systemd(argv: list[str], unit: Path, site: Path, notify: NotifyListener) -> None:
    """Start ``argv`` with the unit's environment, then check start, reload and stop as systemd sees them."""
    env = cli_env(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(WATCHDOG_SEC * 1_000_000), NO_PROXY="*")
    env.pop("FEEDWATCH_CONFIG", None)
    env.update(environment(unit))
    err = site / "daemon.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(argv, cwd="/", env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        ready = notify.wait_for(lambda n: n.has("READY", "1") and n.pid == proc.pid, timeout=30)
        assert proc.poll() is None, err.read_text()

        mark = len(notify.since(0))
        proc.send_signal(signal.SIGHUP)  # ExecReload=kill -HUP $MAINPID
        reloading = notify.wait_for(lambda n: n.has("RELOADING", "1") and n.pid == proc.pid, after=mark)
        notify.wait_for(lambda n: n.has("READY", "1") and n.pid == proc.pid, after=reloading + 1)
        assert reloading > ready

        proc.send_signal(signal.SIGTERM)  # systemctl stop
        assert proc.wait(timeout=30) == 0, err.read_text()
        assert any(n.has("STOPPING", "1") for n in notify.since(reloading))
        assert "Traceback" not in err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def feed_url(httpserver: HTTPServer) -> str:
    feed = FeedServer(httpserver, "/wire.xml", etags=False)
    feed.add("q1", "Strong earthquake shakes the coastal town of Alpha")
    return feed.url


class TestUnitExecuted:
    def test_packaged_exec_start_parses(self) -> None:
        """The packaged ExecStart= arguments are accepted by the real parser (options after the command)."""
        argv = exec_start(PACKAGED_UNIT)
        assert argv[0] == UNIT_EXECUTABLE
        args = build_parser().parse_args(argv[1:])
        assert (args.command, args.config, args.once) == ("run", UNIT_CONFIG, False)

    def test_packaged_unit_starts_reloads_stops(self, tmp_path: Path, feed_url: str) -> None:
        """packaging/feedwatch.service's ExecStart=, with our executable and config, says READY, reloads, exits 0."""
        site = tmp_path / "site"
        config = write_site(site, feed_url=feed_url)
        argv = exec_start(PACKAGED_UNIT)
        assert UNIT_CONFIG in argv
        argv = [str(console_script(tmp_path)) if a == UNIT_EXECUTABLE else a for a in argv]
        argv = [str(config) if a == UNIT_CONFIG else a for a in argv]
        unit = tmp_path / "feedwatch.service"
        unit.write_text(PACKAGED_UNIT.read_text().replace(UNIT_CONFIG, str(config)))
        notify = NotifyListener(tmp_path / "notify.sock")
        try:
            run_as_systemd(argv, unit, site, notify)
        finally:
            notify.close()

    def test_init_unit_runs_as_written(self, tmp_path: Path, feed_url: str) -> None:
        """The unit `feedwatch init` writes names the feedwatch that ran init; its ExecStart= runs unchanged."""
        script = console_script(tmp_path)
        site = tmp_path / "site"
        out = subprocess.run(
            [str(script), "init", str(site)], env=cli_env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        unit = site / "feedwatch.service"
        argv = exec_start(unit)
        assert argv == [str(script), "run", "--config", str(site / "config.toml")]
        assert environment(unit)["FEEDWATCH_CONFIG"] == str(site / "config.toml")
        added = subprocess.run(
            [str(script), "feeds", "add", feed_url, "--name", "wire", "--config", str(site / "config.toml")],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        notify = NotifyListener(tmp_path / "notify.sock")
        try:
            run_as_systemd(argv, unit, site, notify)
        finally:
            notify.close()

    def test_init_without_console_script_uses_this_interpreter(self, tmp_path: Path) -> None:
        """Run as `python -m daemon` outside a venv with a feedwatch script, init's unit runs this Python."""
        out = subprocess.run(
            [sys.executable, "-m", "daemon", "init", str(tmp_path / "site")],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        argv = exec_start(tmp_path / "site" / "feedwatch.service")
        beside = Path(sys.prefix) / "bin" / "feedwatch"
        expected = [str(beside)] if os.access(beside, os.X_OK) else [sys.executable, "-m", "daemon"]
        assert argv[: len(expected)] == expected
        assert f"ExecStart= runs {' '.join(expected)}" in out.stdout
