"""The pages on writing and testing a watch: every `feedwatch` command in them runs, and the example
watch they describe loads, passes its examples and scores its labelled items as the pages say.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, REPO, cli_env

PAGES = ("writing-a-watch.md", "testing-rules.md", "faq.md")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def commands(page: str) -> list[str]:
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    return [
        line.strip()
        for block in _FENCE.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("feedwatch ")
    ]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True, check=False, timeout=120)


CASES = [(page, cmd) for page in PAGES for cmd in commands(page)]


@pytest.mark.slow
@pytest.mark.parametrize(("page", "command"), CASES, ids=[f"{p}:{c[10:50]}" for p, c in CASES])
def test_documented_command_runs(page: str, command: str) -> None:
    """Each `feedwatch …` line in a code block of these pages exits 0 from the repository root."""
    out = run([*CLI, *shlex.split(command)[1:]])
    assert out.returncode == 0, f"{page}: {command}\n{out.stdout}\n{out.stderr}"
    assert "warning:" not in out.stderr, out.stderr


def test_pages_have_commands() -> None:
    """The pages show the commands they talk about."""
    assert len(commands("writing-a-watch.md")) >= 5
    assert len(commands("testing-rules.md")) >= 4
    assert len(commands("faq.md")) >= 3


def test_example_watch_scores_as_documented() -> None:
    """The Sudan watch catches every labelled item but the one the page calls an accepted miss."""
    out = run([*CLI, "backtest", "--json", "docs/examples/sudan-items.jsonl", "--rules", "docs/examples/sudan"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["any_rule"]["false_negatives"] == ["s15"]
    assert doc["any_rule"]["false_positives"] == []
    assert {row["lang"] for row in doc["by_language"]} >= {"ar", "fa", "zh", "ja", "ru", "tr", "de", "fr", "es"}


def test_example_watch_checks_clean() -> None:
    """The example rules load without warnings and their inline examples pass."""
    out = run([*CLI, "check", "--rules", "docs/examples/sudan"])
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "examples: 3 passed" in out.stdout


def test_example_labels_name_demo_items() -> None:
    """Every row of the demo labels file names an item of the demo feed."""
    out = run([*CLI, "backtest", "seeds/demo.xml", "--labels", "docs/examples/demo-labels.jsonl"])
    assert out.returncode == 0, out.stderr
    assert "not among the items" not in out.stderr
    assert Path(REPO / "docs" / "examples" / "demo-labels.jsonl").read_text(encoding="utf-8").count("\n") >= 5
