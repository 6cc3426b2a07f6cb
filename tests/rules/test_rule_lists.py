"""Tests for shared lists: default weights, and warnings named at the list file's own lines."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.rules.ruleset import LoadReport
from tests.conftest import CLI, REPO, cli_env

LIST = """\
[list.sudan-places]
description = "Places of the war in Sudan"
weight = 1.5
terms = [
  "Khartoum",
  { term = "El Fasher|Al-Fashir", weight = 3.0 },
  "Darfur",
]
"""


def write(folder: Path, rule: str, lst: str = LIST) -> LoadReport:
    (folder / "lists").mkdir(exist_ok=True)
    (folder / "lists" / "sudan.toml").write_text(textwrap.dedent(lst), encoding="utf-8")
    (folder / "r.toml").write_text(textwrap.dedent(rule), encoding="utf-8")
    return load_rules(folder)


class TestListWeight:
    @pytest.mark.parametrize(
        ("title", "score"),
        [
            ("Khartoum", 3.0),  # list weight 1.5 x title 2.0
            ("El Fasher", 6.0),  # the term's own weight wins
            ("Kassala", 1.0),  # the group's own term keeps the group weight 0.5
        ],
    )
    def test_list_weight_is_the_default_for_its_terms(self, tmp_path: Path, title: str, score: float) -> None:
        """A list's weight applies to its terms unless a term sets its own; other terms keep the group's."""
        report = write(tmp_path, '[rule.r.groups.g]\nweight = 0.5\nterms = ["@sudan-places", "Kassala"]\n')
        assert report.errors == ()
        ev = Matcher(report.ruleset).evaluate(Item(feed="d", key="k", title=title, link=None, summary=""))[0]
        assert ev.score == score

    def test_without_list_weight_the_group_weight_applies(self, tmp_path: Path) -> None:
        """A list without weight leaves its terms to the group's weight, as before."""
        report = write(
            tmp_path, '[rule.r.groups.g]\nweight = 0.5\nterms = ["@sudan-places"]\n', LIST.replace("weight = 1.5\n", "")
        )
        ev = Matcher(report.ruleset).evaluate(Item(feed="d", key="k", title="Khartoum", link=None, summary=""))[0]
        assert ev.score == 1.0

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ('weight = "high"', "weight: expected a number"),
            ("wieght = 2", "unknown key 'wieght' (did you mean 'weight'?)"),
        ],
    )
    def test_bad_list_keys(self, tmp_path: Path, bad: str, message: str) -> None:
        """A list's own keys are checked like a rule's, with the list file's line."""
        report = write(tmp_path, '[rule.r.groups.g]\nterms = ["x"]\n', LIST.replace("weight = 1.5", bad))
        assert any(message in str(e) and "lists/sudan.toml:3" in str(e) for e in report.errors), report.errors


class TestListWarnings:
    def test_duplicate_inside_a_list_is_reported_at_the_list_line(self, tmp_path: Path) -> None:
        """A list's duplicate term is reported once, at the list file's own line, whatever uses it."""
        lst = LIST.replace('  "Darfur",\n', '  "Darfur",\n  "Khartum|KHARTOUM",\n')
        report = write(
            tmp_path,
            '[rule.a.groups.g]\nterms = ["@sudan-places"]\n[rule.b.groups.g]\nterms = ["@sudan-places"]\n',
            lst,
        )
        path = tmp_path / "lists" / "sudan.toml"
        assert report.warnings == (f"{path}:8: list 'sudan-places': 'KHARTOUM' duplicates 'Khartoum' (line 5)",)

    def test_rule_term_duplicating_a_list_term(self, tmp_path: Path) -> None:
        """A duplicate between a rule and a list is reported where the second copy is written."""
        report = write(tmp_path, '[rule.r.groups.g]\nterms = [\n  "Darfur",\n  "@sudan-places",\n]\n')
        path = tmp_path / "lists" / "sudan.toml"
        assert report.warnings == (
            f"{path}:7: rule 'r': term 'Darfur' (list 'sudan-places') in group 'g' duplicates 'Darfur' "
            f"in the same group ({tmp_path / 'r.toml'}:3)",
        )

    def test_list_term_first_then_rule_term(self, tmp_path: Path) -> None:
        """When the rule's own copy comes second, the rule file's line is named, and the list's line too."""
        report = write(
            tmp_path, '[rule.r.groups.g]\nterms = ["@sudan-places"]\n[rule.r.groups.h]\nterms = ["Darfur"]\n'
        )
        path = tmp_path / "lists" / "sudan.toml"
        assert report.warnings == (
            f"{tmp_path / 'r.toml'}:4: rule 'r': term 'Darfur' in group 'h' duplicates 'Darfur' in group 'g' "
            f"({path}:7)",
        )

    def test_fuzzy_warning_names_the_list_file_and_line(self, tmp_path: Path) -> None:
        """A fuzzy warning about a list term points into the list file, not the rule file."""
        lst = LIST.replace('  "Darfur",\n', '  "Darfur",\n  "Tine",\n')
        report = write(tmp_path, '[rule.r.groups.g]\nfuzzy = 87\nterms = ["@sudan-places"]\n', lst)
        path = tmp_path / "lists" / "sudan.toml"
        assert report.warnings == (
            f"{path}:8: fuzzy matching of the short word 'Tine' (list 'sudan-places') is unreliable; prefer aliases",
        )

    @pytest.mark.parametrize(
        ("groups", "message"),
        [
            ('[rule.r.groups.g]\nterms = ["@sudan-places"]\n[rule.r.groups.h]\nterms = ["@sudan-places"]\n',
             "rule 'r': list 'sudan-places' is used in groups 'g' and 'h'; its terms count in both"),
            ('[rule.r.groups.g]\nterms = ["@sudan-places", "@sudan-places"]\n',
             "rule 'r': list 'sudan-places' is used twice in group 'g'"),
        ],
    )  # fmt: skip
    def test_list_used_twice_is_one_warning(self, tmp_path: Path, groups: str, message: str) -> None:
        """Using one list twice in a rule is one warning at the rule, not one per term."""
        report = write(tmp_path, "[rule.r]\n" + groups)
        assert report.warnings == (f"{tmp_path / 'r.toml'}:1: {message}",)


def test_check_prints_warnings_before_the_ok_summary(tmp_path: Path) -> None:
    """`feedwatch check` prints warnings first and its "ok" lines last, even with both streams joined."""
    write(tmp_path, '[rule.r.groups.g]\nterms = ["Darfur", "@sudan-places"]\n')
    out = subprocess.run(
        [*CLI, "check", "--rules", str(tmp_path)], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, check=False,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout
    warning = next(i for i, line in enumerate(lines) if line.startswith("warning:"))
    assert "lists/sudan.toml:7:" in lines[warning]
    assert warning < min(i for i, line in enumerate(lines) if " ok" in line)


def test_aliases_that_fold_alike_are_one(tmp_path: Path) -> None:
    """Spellings of one term that fold to the same text (Qarabağ|Qarabag) are one alias, without a warning."""
    report = write(tmp_path, '[rule.r.groups.g]\nterms = ["Kordofan|Kordofán|KORDOFAN", "@sudan-places"]\n')
    assert report.warnings == ()
    (term, *_) = report.ruleset.rules[0].groups[0].terms
    assert [a.text for a in term.aliases] == ["Kordofan"]
