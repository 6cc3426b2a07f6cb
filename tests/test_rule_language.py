"""Tests for the rule language's context exceptions, `require` alternatives and `min_distinct` groups."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Evaluation, Matcher
from daemon.rules.ruleset import LoadReport


def load(tmp_path: Path, text: str) -> LoadReport:
    (tmp_path / "r.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_rules(tmp_path)


def matcher(tmp_path: Path, text: str) -> Matcher:
    report = load(tmp_path, text)
    assert report.errors == (), report.errors
    return Matcher(report.ruleset)


def judge(m: Matcher, title: str, summary: str = "", rule: str = "r") -> Evaluation:
    it = Item(feed="demo", key="k", title=title, link=None, summary=summary)
    return m.evaluate_rule(rule, it)


def errors_of(tmp_path: Path, text: str) -> list[str]:
    return [str(e) for e in load(tmp_path, text).errors]


UNLESS = """\
[rule.r.groups.g]
terms = [
  { term = "fighting", unless = ["halt the fighting|end the fighting", "fighting stopp*"] },
  { term = "Sudan", unless = "South Sudan" },
  { term = "Судан", unless = ["Южный Судан", "Южного Судана"] },
]
"""


class TestUnless:
    @pytest.mark.parametrize(
        ("title", "counted"),
        [
            ("Heavy fighting in Darfur", ["fighting"]),
            ("Leaders call to halt the fighting", []),
            ("Leaders call to HALT THE FIGHTING", []),
            ("Envoy: end-the-fighting plan", []),
            ("The fighting stopped at dawn", []),
            ("The fighting stops at dawn", ["fighting"]),
            ("Halt the fighting, they said, as fighting spread", ["fighting"]),
            ("Refugees from South Sudan", []),
            ("South Sudan and Sudan sign a deal", ["Sudan"]),
            ("Sudan's army retakes the capital", ["Sudan"]),
            ("Беженцы из Южного Судана", []),
            ("Армия Судана наступает", []),  # "Судана" is not the whole word "Судан"
            ("Судан: бои в Хартуме", ["Судан"]),
        ],
    )
    def test_term_does_not_count_inside_its_contexts(self, tmp_path: Path, title: str, counted: list[str]) -> None:
        """An occurrence inside one of the term's `unless` phrases does not count; others still do."""
        ev = judge(matcher(tmp_path, UNLESS), title)
        assert [h.alias for h in ev.hits if h.contribution] == counted

    def test_masked_occurrence_is_explained(self, tmp_path: Path) -> None:
        """The reasons say which occurrence did not count and inside which phrase."""
        ev = judge(matcher(tmp_path, UNLESS), "Refugees from South Sudan")
        assert not ev.fired
        assert "'Sudan' not counted in title: 'Sudan' is inside 'South Sudan' (unless 'South Sudan')" in ev.reasons

    def test_context_in_another_field_does_not_mask(self, tmp_path: Path) -> None:
        """A context hides only the occurrence it contains, field by field."""
        ev = judge(matcher(tmp_path, UNLESS), "Sudan talks", summary="South Sudan watches")
        assert [(h.field, h.contribution) for h in ev.hits] == [("title", 2.0)]

    def test_unless_works_in_exclude_terms(self, tmp_path: Path) -> None:
        """An exclude term with a context vetoes only outside it."""
        m = matcher(
            tmp_path,
            """\
            [rule.r.groups.g]
            terms = ["war"]
            [rule.r.exclude]
            terms = [{ term = "game", unless = "end game" }]
            """,
        )
        assert not judge(m, "War game in the desert").fired
        assert judge(m, "The war's end game").fired

    def test_unless_applies_to_fuzzy_hits(self, tmp_path: Path) -> None:
        """A fuzzy occurrence inside a context does not count either."""
        m = matcher(
            tmp_path,
            """\
            [rule.r.groups.g]
            terms = [{ term = "Khartoum", fuzzy = 85, unless = "Khartum Street" }]
            """,
        )
        assert not judge(m, "Shops on Khartum Street reopen").fired
        assert judge(m, "Shelling in Khartum").fired

    @pytest.mark.parametrize(
        ("term", "message"),
        [
            ('{ regex = "fight", unless = ["x fight"] }', "`unless` works with `term`"),
            ('{ term = "fight", unless = [] }', "unless: expected a phrase or an array of phrases"),
            ('{ term = "fight", unless = [3] }', "unless: expected a phrase or an array of phrases"),
            ('{ term = "fight", unless = ["a*b fight"] }', "'*' is allowed only at the end"),
        ],
    )
    def test_bad_unless_is_an_error(self, tmp_path: Path, term: str, message: str) -> None:
        """Malformed `unless` values are errors naming the line."""
        errs = errors_of(tmp_path, f"[rule.r.groups.g]\nterms = [{term}]\n")
        assert len(errs) == 1
        assert errs[0].startswith(f"{tmp_path / 'r.toml'}:2")
        assert message in errs[0]

    def test_context_without_the_term_warns(self, tmp_path: Path) -> None:
        """A context that cannot contain the term is reported as a likely mistake."""
        report = load(tmp_path, '[rule.r.groups.g]\nterms = [{ term = "fighting", unless = "ceasefire" }]\n')
        assert report.errors == ()
        assert any("unless 'ceasefire' does not contain the term" in w and ":2:" in w for w in report.warnings)


ALTERNATIVES = """\
[rule.r]
require = ["places|actors", "conflict"]
[rule.r.groups.places]
terms = ["Darfur", "Khartoum"]
[rule.r.groups.actors]
terms = ["RSF", "Hemedti"]
[rule.r.groups.conflict]
terms = ["shelling", "clashes"]
"""


class TestRequireAlternatives:
    @pytest.mark.parametrize(
        ("title", "fired", "reason"),
        [
            ("Shelling in Darfur", True, "required 'places|actors': met by 'places'"),
            ("RSF shelling reported", True, "required 'places|actors': met by 'actors'"),
            ("RSF clashes in Khartoum", True, "required 'places|actors': met by 'places' and 'actors'"),
            (
                "Shelling reported overnight",
                False,
                "required 'places|actors': neither group 'places' or 'actors' had a hit",
            ),
            ("Hemedti visits Darfur", False, "required group 'conflict' had no hit"),
        ],
    )
    def test_any_group_of_an_entry_satisfies_it(self, tmp_path: Path, title: str, fired: bool, reason: str) -> None:
        """`require = ["places|actors", "conflict"]` fires with a place or an actor, and says which."""
        ev = judge(matcher(tmp_path, ALTERNATIVES), title)
        assert ev.fired is fired
        assert reason in ev.reasons

    def test_failure_kind_is_required(self, tmp_path: Path) -> None:
        """A missing alternative is counted as a 'required' failure."""
        ev = judge(matcher(tmp_path, ALTERNATIVES), "Shelling reported overnight")
        assert [f.kind for f in ev.failures] == ["required"]

    @pytest.mark.parametrize(
        ("require", "message"),
        [
            ('["places|actrs"]', "require: unknown group 'actrs' (did you mean 'actors'?) (this rule has: places,"),
            ('["places|"]', "require: empty alternative in 'places|'"),
            ('["nope"]', "require: unknown group 'nope' (this rule has: places, actors, conflict)"),
        ],
    )
    def test_unknown_group_lists_the_groups(self, tmp_path: Path, require: str, message: str) -> None:
        """An unknown group in an alternative is an error that lists the rule's groups."""
        text = ALTERNATIVES.replace('["places|actors", "conflict"]', require)
        errs = errors_of(tmp_path, text)
        assert len(errs) == 1
        assert f"{tmp_path / 'r.toml'}:2:" in errs[0]
        assert message in errs[0]

    def test_exclude_group_cannot_be_an_alternative(self, tmp_path: Path) -> None:
        """A group cannot both veto and satisfy `require`."""
        text = ALTERNATIVES + '[rule.r.exclude]\ngroups = ["actors"]\n'
        assert any("'actors' cannot be both required and an exclude group" in e for e in errors_of(tmp_path, text))

    def test_entry_is_kept_as_written(self, tmp_path: Path) -> None:
        """The loaded rule keeps each entry in its written form, spaces trimmed."""
        report = load(tmp_path, ALTERNATIVES.replace('"places|actors"', '"places | actors"'))
        assert report.ruleset.rules[0].require == ("places|actors", "conflict")


DISTINCT = """\
[rule.r]
require = ["countries", "conflict"]
[rule.r.groups.countries]
min_distinct = 2
terms = ["Sudan|Sudanese", "Chad|Chadian", "South Sudan"]
[rule.r.groups.conflict]
weight = 2.0
terms = ["border clash*", "shelling"]
"""


class TestMinDistinct:
    @pytest.mark.parametrize(
        ("title", "fired", "score", "note"),
        [
            (
                "Sudan and Chad report border clashes",
                True,
                8.0,
                "group 'countries' needs 2 distinct terms, found 2 ('Sudan', 'Chad'): met",
            ),
            (
                "Sudanese shelling: Sudan says",
                False,
                4.0,
                "group 'countries' needs 2 distinct terms, found 1 ('Sudanese'): not met, its hits count nothing",
            ),
        ],
    )
    def test_group_counts_only_with_enough_distinct_terms(
        self, tmp_path: Path, title: str, fired: bool, score: float, note: str
    ) -> None:
        """Aliases of one term are one term; below `min_distinct` the group adds nothing and is not met."""
        ev = judge(matcher(tmp_path, DISTINCT), title)
        assert (ev.fired, ev.score) == (fired, score)
        assert note in ev.reasons
        if not fired:
            assert "required group 'countries' had no hit" in ev.reasons
            assert all(h.contribution == 0 for h in ev.hits if h.group == "countries")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("0", "min_distinct: expected a whole number ≥ 1, got 0"),
            ('"two"', "min_distinct: expected a whole number ≥ 1, got 'two'"),
            ("4", "min_distinct 4 can never be met: group 'countries' has 3 term(s)"),
        ],
    )
    def test_bad_min_distinct(self, tmp_path: Path, value: str, message: str) -> None:
        """A min_distinct that is not a positive count, or exceeds the group's terms, is an error."""
        errs = errors_of(tmp_path, DISTINCT.replace("min_distinct = 2", f"min_distinct = {value}"))
        assert len(errs) == 1
        assert message in errs[0]
        assert f"{tmp_path / 'r.toml'}:4:" in errs[0]

    def test_exclude_group_with_min_distinct_vetoes_only_when_met(self, tmp_path: Path) -> None:
        """An exclude group that needs two terms vetoes only when both occur."""
        m = matcher(
            tmp_path,
            """\
            [rule.r.groups.g]
            terms = ["clashes"]
            [rule.r.groups.sport]
            min_distinct = 2
            terms = ["football", "fans"]
            [rule.r.exclude]
            groups = ["sport"]
            """,
        )
        assert judge(m, "Clashes between football fans").fired is False
        assert judge(m, "Clashes after football").fired is True
