"""The systemd unit, sysusers and tmpfiles files, checked with systemd's own tools where present."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parent.parent / "packaging"
UNIT = PACKAGING / "feedwatch.service"
SYSUSERS = PACKAGING / "feedwatch.sysusers"
TMPFILES = PACKAGING / "feedwatch.tmpfiles"

MAX_EXPOSURE = 2.0
SHUTDOWN_GRACE = 20.0  # the daemon's default grace period for in-flight sends, in seconds
EXEC_START = "/usr/local/bin/feedwatch run --config /etc/feedwatch/config.toml"

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; repeated keys stay repeated."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not an assignment: {raw!r}"
        found.append((section, key.strip(), value.strip()))
    return found


def service(key: str) -> list[str]:
    return [v for s, k, v in directives(UNIT) if s == "Service" and k == key]


def one(key: str) -> str:
    values = service(key)
    assert len(values) == 1, f"{key}= appears {len(values)} times"
    return values[0]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def unit_copy(tmp_path: Path, exec_start: str) -> Path:
    """The unit with ExecStart= pointing at an executable that exists, everything else untouched."""
    text = UNIT.read_text()
    assert text.count(f"ExecStart={EXEC_START}\n") == 1
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(f"ExecStart={EXEC_START}\n", f"ExecStart={exec_start}\n"))
    return copy


class TestUnitDirectives:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("Type", "notify"),
            ("NotifyAccess", "main"),
            ("ExecStart", EXEC_START),
            ("Restart", "on-failure"),
            ("RestartPreventExitStatus", "2"),
            ("WatchdogSec", "60"),
            ("User", "feedwatch"),
            ("StateDirectory", "feedwatch"),
            ("ConfigurationDirectory", "feedwatch"),
            ("UMask", "0077"),
            ("ProtectSystem", "strict"),
            ("MemoryDenyWriteExecute", "yes"),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("CapabilityBoundingSet", ""),
        ],
    )
    def test_required_directive(self, key: str, value: str) -> None:
        """The unit sets each directive the daemon's lifecycle and sandbox depend on, exactly once."""
        assert one(key) == value

    def test_reload_sends_sighup_to_main_pid(self) -> None:
        """`systemctl reload` sends SIGHUP to the daemon, which reloads config and rules."""
        assert re.fullmatch(r"(/usr/bin/|/bin/)?kill -(HUP|SIGHUP|s HUP) \$MAINPID", one("ExecReload"))

    def test_stop_timeout_exceeds_grace_period(self) -> None:
        """systemd waits longer than the daemon's shutdown grace, so a clean stop is never SIGKILLed."""
        assert float(one("TimeoutStopSec")) > SHUTDOWN_GRACE

    def test_config_path_in_environment(self) -> None:
        """FEEDWATCH_CONFIG names the same file as --config, so CLI calls inside the unit agree."""
        assert "FEEDWATCH_CONFIG=/etc/feedwatch/config.toml" in service("Environment")

    def test_network_is_not_address_filtered(self) -> None:
        """No IPAddressDeny=: feeds, SMTP and webhooks live at arbitrary addresses."""
        assert service("IPAddressDeny") == []
        assert service("PrivateNetwork") in ([], ["no"])

    def test_credentials_examples_present_but_inactive(self) -> None:
        """LoadCredential examples are documented as comments and not switched on by default."""
        text = UNIT.read_text()
        assert "#LoadCredential=" in text
        assert "#LoadCredentialEncrypted=" in text
        assert service("LoadCredential") == []

    def test_sysusers_creates_the_unit_user(self) -> None:
        """The sysusers file declares the very user and home the unit runs as."""
        lines = [ln.split() for ln in SYSUSERS.read_text().splitlines() if ln and not ln.startswith("#")]
        users = [fields for fields in lines if fields[0] == "u"]
        assert len(users) == 1
        assert users[0][1] == one("User") == one("Group")
        assert users[0][-1] == "/var/lib/" + one("StateDirectory")


@needs_analyze
class TestSystemdAnalyze:
    def test_security_exposure_within_target(self) -> None:
        """Offline `systemd-analyze security` rates the unit's exposure at most 2.0 of 10."""
        result = run(str(ANALYZE), "security", "--offline=yes", "--no-pager", str(UNIT))
        match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
        assert match, f"no exposure level in output:\n{result.stdout}\n{result.stderr}"
        assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout

    def test_verify_accepts_unit(self, tmp_path: Path) -> None:
        """`systemd-analyze verify` finds nothing wrong once ExecStart= names an existing binary."""
        # verify exits 0 even on unknown keys or bad values, so any message about our unit fails.
        copy = unit_copy(tmp_path, f"{sys.executable} -m daemon run --config /etc/feedwatch/config.toml")
        result = run(str(ANALYZE), "verify", "--man=no", str(copy))
        complaints = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if "feedwatch" in line or str(tmp_path) in line
        ]
        assert result.returncode == 0, result.stderr
        assert complaints == []

    def test_verify_would_catch_a_typo(self, tmp_path: Path) -> None:
        """The verify check can fail: a misspelt directive in the unit is reported."""
        copy = unit_copy(tmp_path, f"{sys.executable} -m daemon run")
        copy.write_text(copy.read_text().replace("ProtectHome=yes", "ProtectHom=yes"))
        result = run(str(ANALYZE), "verify", "--man=no", str(copy))
        assert "Unknown key 'ProtectHom'" in result.stderr

    def test_verify_flags_missing_binary(self, tmp_path: Path) -> None:
        """Verify fails on a missing ExecStart binary, which is why the check runs on a copy."""
        copy = unit_copy(tmp_path, str(tmp_path / "missing" / "feedwatch") + " run")
        result = run(str(ANALYZE), "verify", "--man=no", str(copy))
        assert result.returncode != 0
        assert "is not executable" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="creating users and chowning in a scratch root needs root")
@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="systemd-sysusers/systemd-tmpfiles are not installed",
)
class TestSysusersTmpfiles:
    def test_apply_in_scratch_root(self, tmp_path: Path) -> None:
        """sysusers makes the account and tmpfiles the directories, owned and moded as the unit expects."""
        root = tmp_path / "root"
        (root / "etc").mkdir(parents=True)
        users = run("systemd-sysusers", f"--root={root}", str(SYSUSERS))
        assert users.returncode == 0, users.stderr
        passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
        account = passwd["feedwatch"]
        uid, gid, home = int(account[2]), int(account[3]), account[5]
        assert 0 < uid < 1000
        assert home == "/var/lib/feedwatch"
        assert account[6].endswith("nologin")

        dirs = run("systemd-tmpfiles", f"--root={root}", "--create", str(TMPFILES))
        assert dirs.returncode == 0, dirs.stderr
        state = (root / "var/lib/feedwatch").stat()
        assert (state.st_uid, state.st_gid, state.st_mode & 0o7777) == (
            uid,
            gid,
            int(one("StateDirectoryMode"), 8),
        )
        for config_dir in ("etc/feedwatch", "etc/feedwatch/rules"):
            st = (root / config_dir).stat()
            # Owned by root, yet readable by the service: systemd never chowns a config directory.
            assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755)
