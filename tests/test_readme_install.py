"""README's "Try it" commands on a fresh virtualenv, installed from a copy of this checkout.

Why a real fresh venv and not ``--system-site-packages``: the point is that the project installs
from its own files (pyproject.toml's dependencies, package data), which a venv that sees our
development packages would hide. Measured on the 2-core CI machine: creating the venv ~13 s, ``pip
install -e .`` plus the demo ~30 s, the test extra and one test file ~25 s (wheels come from the
configured index and the local wheel cache): about 70 s, so it is marked slow rather than swapped
for a shortcut.
The second README command runs as written except that pytest is given one test file: the whole
suite inside the suite would double CI time and prove nothing more about the install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALL_TIMEOUT = 600


def readme_commands() -> list[str]:
    """The shell lines of the code blocks under "## Try it", in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Try it") :]
    section = section[: section.index("\n## ", 1)]
    return [line.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]


def copy_checkout(target: Path) -> None:
    """The files a fresh clone has: tracked files when this is a git checkout, else the tree without state."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (REPO / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, target / name)
        return
    ignore = shutil.ignore_patterns(".git", "var", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache")
    shutil.copytree(REPO, target, ignore=ignore, dirs_exist_ok=True)


def venv_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FEEDWATCH_CONFIG", "NOTIFY_SOCKET")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return env


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT * 2)
def test_try_it_on_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install -e . && feedwatch run --once` in a new venv prints the demo's alerts; the test extra installs."""
    first, second = readme_commands()[:2]
    assert first == "pip install -e . && feedwatch run --once"
    assert second == "pip install -e '.[test]' && pytest"
    src = tmp_path / "feedwatch"
    src.mkdir()
    copy_checkout(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT)

    demo = subprocess.run(
        ["bash", "-c", first],
        cwd=src,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert demo.stdout.count("ALERT [") >= 10
    assert "karabakh-fighting" in demo.stdout
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import daemon; print(daemon.__file__)"],
        cwd=tmp_path,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.strip().startswith(str(src))  # the venv runs the copy, not this checkout

    tests = subprocess.run(
        ["bash", "-c", f"{second} -q -p no:cacheprovider tests/test_cli.py"],
        cwd=src,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout
