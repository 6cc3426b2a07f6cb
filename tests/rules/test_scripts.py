"""Tests for script-aware matching: Arabic-script proclitics and letter variants, unspaced scripts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.util.scripts import PROCLITICS, Left, attaches, left_rule, proclitics_before, stem
from daemon.util.text import fold

TERMS = """\
[rule.r.groups.g]
terms = [
  "السودان", "حرب", "کشور", "جنوب السودان|جنوب سودان", "تهران",
  "苏丹", "スーダン", "ซูดาน", "戦争*",
  "Sudan", "F-16",
]
"""


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "r.toml").write_text(TERMS, encoding="utf-8")
    report = load_rules(folder)
    assert report.errors == ()
    return Matcher(report.ruleset)


def found(m: Matcher, title: str) -> list[tuple[str, str]]:
    ev = m.evaluate(Item(feed="d", key="k", title=title, link=None, summary=""))[0]
    return [(h.alias, h.text) for h in ev.hits]


class TestArabicScript:
    @pytest.mark.parametrize(
        ("title", "hits"),
        [
            ("السودان", [("السودان", "سودان")]),
            ("والسودان", [("السودان", "سودان")]),  # and Sudan
            ("بالسودان", [("السودان", "سودان")]),  # in Sudan
            ("للسودان", [("السودان", "سودان")]),  # for Sudan: ل + ال is written لل
            ("وللسودان", [("السودان", "سودان")]),
            ("فالسودان", [("السودان", "سودان")]),
            ("كالسودان", [("السودان", "سودان")]),
            ("سودان", [("السودان", "سودان")]),  # without the article (Persian writes it so)
            ("والسُّودان", [("السودان", "سُّودان")]),  # harakat are folded away
            ("الســودان", [("السودان", "ســودان")]),  # so is tatweel
            ("السودانية", []),  # a longer word: the end is still a whole-word boundary
            ("مسودان", []),  # م is no proclitic
            ("ففالسودان", []),  # two conjunctions are no proclitic chain
            ("وبالحرب", [("حرب", "حرب")]),  # and with the war
            ("الحرب في السودان", [("حرب", "حرب"), ("السودان", "سودان")]),
            ("في جنوب السودان", [("جنوب السودان", "جنوب السودان")]),  # one group: the longer mention counts
            ("كشور", [("کشور", "كشور")]),  # Arabic kaf matches a term written with Persian keheh
            ("بتهران", [("تهران", "تهران")]),
        ],
    )
    def test_terms_match_after_proclitics(self, matcher: Matcher, title: str, hits: list[tuple[str, str]]) -> None:
        """An Arabic-script term matches after و ف ب ك ل, the article ال and their chains, nowhere else."""
        assert sorted(found(matcher, title)) == sorted(hits)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("ايران", "إيران"),  # alef with hamza below
            ("اذربايجان", "آذربایجان"),  # madda, Farsi yeh
            ("كشور", "کشور"),  # keheh
            ("مدينه", "مدينة"),  # teh marbuta
            ("علي", "على"),  # alef maksura
            ("پاکستان", "پاكستان"),
            ("ايران", "اِيرانَ"),  # harakat
            ("1994", "١٩٩٤"),  # Arabic-Indic digits
            ("1994", "۱۹۹۴"),  # Persian digits
            ("هه", "ۀہ"),  # heh with yeh above, heh goal
            ("سودان", "ســودان"),  # tatweel
        ],
    )
    def test_letter_variants_fold_alike(self, a: str, b: str) -> None:
        """Persian/Urdu letter variants, hamza seats, harakat and tatweel fold to one form."""
        assert fold(a).text == fold(b).text

    def test_spans_point_at_the_original(self) -> None:
        """Folding away harakat and tatweel keeps the map back to the original characters."""
        text = "قصف والسُّــودان"
        ft = fold(text)
        start = ft.text.index("سودان")
        a, b = ft.span(start, start + len("سودان"))
        assert text[a:b] == "سُّــودان"

    @pytest.mark.parametrize(
        ("text", "start", "ok"),
        [
            ("والسودان", 3, True),
            ("وبالسودان", 4, True),
            ("ولل", 3, True),
            ("مسودان", 1, False),
            ("xسودان", 1, False),
            ("abcdeسودان", 5, False),
            ("ووووووسودان", 6, False),
        ],
    )
    def test_proclitics_before(self, text: str, start: int, ok: bool) -> None:
        """Only a known chain from the start of the word counts as proclitics."""
        assert proclitics_before(text, start) is ok

    def test_proclitic_chains(self) -> None:
        """The chains are conjunction, preposition, article, with ل + ال written لل."""
        assert {"و", "ف", "ب", "ك", "ل", "ال", "وال", "بال", "لل", "ولل", "فبال"} <= PROCLITICS
        assert "لال" not in PROCLITICS
        assert len(PROCLITICS) == 23

    @pytest.mark.parametrize(("key", "out"), [("السودان", "سودان"), ("الم", "الم"), ("alpha", "alpha")])
    def test_stem(self, key: str, out: str) -> None:
        """Only an Arabic article before at least two more letters is taken off."""
        assert stem(key) == out


class TestUnspacedScripts:
    @pytest.mark.parametrize(
        ("title", "hits"),
        [
            ("苏丹内战持续", [("苏丹", "苏丹")]),  # Chinese: inside running text
            ("联合国称苏丹内战持续", [("苏丹", "苏丹")]),
            ("スーダンで内戦が続く", [("スーダン", "スーダン")]),  # Japanese katakana
            ("戦争が続く", [("戦争", "戦争")]),  # a wildcard ends with the term in unspaced scripts
            ("สงครามในซูดานยังคงดำเนินต่อไป", [("ซูดาน", "ซูดาน")]),  # Thai
            ("Sudan苏丹", [("Sudan", "Sudan"), ("苏丹", "苏丹")]),  # a script change is a boundary
            ("F-16战机", [("F-16", "F-16")]),
            ("Sudanese", []),  # spaced scripts keep whole words
        ],
    )
    def test_substring_inside_running_text(self, matcher: Matcher, title: str, hits: list[tuple[str, str]]) -> None:
        """Terms of scripts written without spaces match inside running text."""
        assert sorted(found(matcher, title)) == sorted(hits)

    @pytest.mark.parametrize(
        ("ch", "attached"),
        [("a", True), ("é", True), ("5", True), ("س", True), ("苏", False), ("ス", False), ("ซ", False), (" ", False)],
    )
    def test_attaches(self, ch: str, attached: bool) -> None:
        """Letters of spaced scripts continue a word; unspaced ones and punctuation do not."""
        assert attaches(ch) is attached

    @pytest.mark.parametrize(
        ("key", "rule"),
        [("sudan", Left.WORD), ("苏丹", Left.FREE), ("سودان", Left.PROCLITIC), ("+1", Left.FREE)],
    )
    def test_left_rule(self, key: str, rule: Left) -> None:
        """The boundary before a term depends on the script of its first character."""
        assert left_rule(key) is rule


def test_unless_with_scripts(tmp_path: Path) -> None:
    """Exceptions work in both families: 苏丹 not inside 南苏丹, السودان not inside جنوب السودان."""
    (tmp_path / "r.toml").write_text(
        textwrap.dedent(
            """\
            [rule.r.groups.g]
            terms = [{ term = "苏丹", unless = "南苏丹" }, { term = "السودان", unless = "جنوب السودان" }]
            """
        ),
        encoding="utf-8",
    )
    report = load_rules(tmp_path)
    assert report.errors == ()
    assert report.warnings == ()
    m = Matcher(report.ruleset)
    assert found(m, "南苏丹局势") == []
    assert found(m, "苏丹内战") == [("苏丹", "苏丹")]
    assert found(m, "لاجئون من جنوب السودان") == []
    assert found(m, "الحرب في السودان") == [("السودان", "سودان")]
