"""`feedwatch init DIR`: starter files from package data that pass `feedwatch check` as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.init import LOCAL_STORE, SERVER_STORE, UNIT_CONFIG, UNIT_EXECUTABLE, render_config, template
from daemon.config.load import load_config
from daemon.rules.load import check_examples, load_rules
from tests.conftest import CLI, REPO, cli_env

DATA = REPO / "daemon" / "data"
# Example lines in the starter files are "#key = value" (no space after "#"); prose is "# text".
EXAMPLE_LINE = re.compile(r"(?m)^#(?=[^\s#!])")


def same_unit_but_paths(written: str, target: Path) -> bool:
    """``written`` is the packaged unit with only ExecStart='s executable and the config path changed."""
    config = str(target / "config.toml")
    lines = written.splitlines()
    (exec_line,) = [ln for ln in lines if ln.startswith("ExecStart=")]
    assert exec_line.endswith(f" run --config {config}")
    assert f"Environment=FEEDWATCH_CONFIG={config}" in lines
    packaged = (REPO / "packaging" / "feedwatch.service").read_text()
    expected = packaged.replace(UNIT_CONFIG, config).replace(
        f"ExecStart={UNIT_EXECUTABLE} ", exec_line.split(" ")[0] + " "
    )
    return written == expected


def feedwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60)


class TestInit:
    def test_written_config_passes_check(self, tmp_path: Path) -> None:
        """init writes config, example rule and unit into a new folder, and `check` accepts them as written."""
        target = tmp_path / "etc" / "feedwatch-test"
        out = feedwatch("init", str(target), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        for name in ("config.toml", "rules/example.toml", "feedwatch.service"):
            assert (target / name).is_file(), name
            assert f"wrote {target / name}" in out.stdout
        check = feedwatch("--config", str(target / "config.toml"), "check", cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        assert "rule example-outage" in check.stdout
        assert "examples: 4 passed" in check.stdout
        assert check.stderr == ""  # not even a warning

    def test_first_run_without_feeds_says_so(self, tmp_path: Path) -> None:
        """`run --once` on the folder init wrote (no feeds yet) polls nothing, exits 0 and says how to add one."""
        assert feedwatch("init", str(tmp_path), cwd=tmp_path).returncode == 0
        out = feedwatch("--config", str(tmp_path / "config.toml"), "run", "--once", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "no feeds to poll: add one with `feedwatch feeds add URL`" in out.stderr

    def test_unit_is_the_packaged_unit(self, tmp_path: Path) -> None:
        """The unit init writes is the one in packaging/ but for the executable and config path in ExecStart=."""
        assert feedwatch("init", str(tmp_path), cwd=tmp_path).returncode == 0
        assert same_unit_but_paths((tmp_path / "feedwatch.service").read_text(), tmp_path)

    def test_file_modes(self, tmp_path: Path) -> None:
        """config.toml is not world-readable (it may come to hold a secret); rules and unit are 0644."""
        assert feedwatch("init", str(tmp_path), cwd=tmp_path).returncode == 0
        assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o640
        assert (tmp_path / "rules" / "example.toml").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "feedwatch.service").stat().st_mode & 0o777 == 0o644

    def test_refuses_to_overwrite_without_force(self, tmp_path: Path) -> None:
        """An existing file stops init with exit 2 before anything is written; --force overwrites."""
        (tmp_path / "config.toml").write_text("# mine\n")
        out = feedwatch("init", str(tmp_path), cwd=tmp_path)
        assert out.returncode == 2
        assert f"{tmp_path / 'config.toml'} already exists (use --force" in out.stderr
        assert (tmp_path / "config.toml").read_text() == "# mine\n"
        assert not (tmp_path / "rules").exists()
        assert not (tmp_path / "feedwatch.service").exists()

        forced = feedwatch("init", "--force", str(tmp_path), cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert "[channels.console]" in (tmp_path / "config.toml").read_text()
        assert list(tmp_path.glob(".*.tmp")) == []  # no temporary files left behind

    def test_commented_examples_are_valid(self, tmp_path: Path) -> None:
        """Every commented example (channels with *_credential/*_env secrets, a feed) validates once uncommented."""
        config_text = EXAMPLE_LINE.sub("", render_config(template("config.toml").decode(), tmp_path))
        rule_text = EXAMPLE_LINE.sub("", template("rules/example.toml").decode())
        assert "password_credential" in config_text
        assert "webhook_url_credential" in config_text
        assert "url_env" in config_text
        (tmp_path / "config.toml").write_text(config_text)
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "example.toml").write_text(rule_text)
        config = load_config(tmp_path / "config.toml", secrets=False)
        assert set(config.channels) == {"console", "email-desk", "slack-desk", "webhook-ops"}
        assert [f.name for f in config.feeds] == ["example-world"]
        report = load_rules(config.rules_dir, channels=list(config.channels))
        assert report.errors == ()
        assert report.ruleset.rules[0].channels == ("email-desk",)

    def test_example_rule_examples_hold(self, tmp_path: Path) -> None:
        """The example rule catches its should-match headlines and none of its should-not ones."""
        (tmp_path / "example.toml").write_bytes(template("rules/example.toml"))
        report = load_rules(tmp_path, channels=["console"])
        assert report.errors == ()
        assert report.warnings == ()
        (rule,) = report.ruleset.rules
        assert {ex.expect for ex in rule.examples} == {True, False}
        assert check_examples(report.ruleset) == []


class TestStorePath:
    @pytest.mark.parametrize(
        ("folder", "expected"),
        [
            (Path("/etc/feedwatch"), SERVER_STORE),
            (Path("/etc/feedwatch/"), SERVER_STORE),
            (Path("/etc/./feedwatch"), SERVER_STORE),
            (Path("/etc/feedwatch-staging"), LOCAL_STORE),
            (Path("/srv/feedwatch"), LOCAL_STORE),
        ],
    )
    def test_server_folder_gets_state_directory(self, folder: Path, expected: str) -> None:
        """Only /etc/feedwatch gets the unit's state directory; any other folder keeps state beside it."""
        text = render_config(template("config.toml").decode(), folder)
        assert f'path = "{expected}"' in text
        assert "@STORE" not in text

    def test_server_config_loads_with_absolute_store(self, tmp_path: Path) -> None:
        """The server variant is valid TOML whose store is /var/lib/feedwatch/feedwatch.db."""
        (tmp_path / "config.toml").write_text(render_config(template("config.toml").decode(), Path("/etc/feedwatch")))
        config = load_config(tmp_path / "config.toml", secrets=False)
        assert config.store.path == Path(SERVER_STORE)
        assert config.rules_dir == tmp_path / "rules"


class TestPackageData:
    def test_unit_copies_are_identical(self) -> None:
        """daemon/data/feedwatch.service is the same file as packaging/feedwatch.service.

        Edit packaging/feedwatch.service, then: cp packaging/feedwatch.service daemon/data/
        """
        assert (DATA / "feedwatch.service").read_bytes() == (REPO / "packaging" / "feedwatch.service").read_bytes()

    def test_templates_read_through_importlib_resources(self) -> None:
        """The templates are found as package resources, the way an installed copy finds them."""
        assert template("feedwatch.service") == (DATA / "feedwatch.service").read_bytes()
        assert template("rules/example.toml") == (DATA / "rules" / "example.toml").read_bytes()
        assert b"@STORE_PATH@" in template("config.toml")

    @pytest.mark.slow
    def test_installed_package_carries_templates(self, tmp_path: Path) -> None:
        """setuptools' build (what pip install runs) ships the templates: init works far from the source tree."""
        src = tmp_path / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO / name, src / name)
        shutil.copytree(REPO / "daemon", src / "daemon", ignore=shutil.ignore_patterns("__pycache__"))
        lib = tmp_path / "lib"
        build = subprocess.run(
            [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib", str(lib)],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert build.returncode == 0, build.stderr
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = cli_env()
        env["PYTHONPATH"] = str(lib)  # the built package only, not this checkout
        out = subprocess.run(
            [sys.executable, "-m", "daemon", "init", "site"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert (elsewhere / "site" / "rules" / "example.toml").read_bytes() == (
            DATA / "rules" / "example.toml"
        ).read_bytes()
        assert same_unit_but_paths((elsewhere / "site" / "feedwatch.service").read_text(), elsewhere / "site")
