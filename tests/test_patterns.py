"""Tests for pattern aliases: `*` at the end of any word of a phrase, and `~N` word gaps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Evaluation, Matcher
from daemon.rules.pattern import PatternError, parse_alias
from daemon.rules.ruleset import LoadReport, Step


def load(tmp_path: Path, text: str) -> LoadReport:
    (tmp_path / "r.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_rules(tmp_path)


def matcher_for(tmp_path: Path, terms: str) -> Matcher:
    report = load(tmp_path, f"[rule.r.groups.g]\nterms = [{terms}]\n")
    assert report.errors == (), report.errors
    return Matcher(report.ruleset)


def judge(m: Matcher, title: str, summary: str = "") -> Evaluation:
    return m.evaluate_rule("r", Item(feed="demo", key="k", title=title, link=None, summary=summary))


class TestParse:
    @pytest.mark.parametrize(
        ("written", "folded", "prefix", "steps"),
        [
            ("drone*", "drone", True, ()),
            ("Nagorno-Karab*", "nagorno karab", True, ()),
            ("peace talks", "peace talks", False, ()),
            ("мирн* договор*", "мирн", True, (Step(0, "договор", "договор", True),)),
            ("cease*-fire*", "cease", True, (Step(0, "fire", "fire", True),)),
            ("halt ~2 fighting", "halt", False, (Step(2, "fighting", "fighting", False),)),
            ("halt ~2 the fight*", "halt", False, (Step(2, "the fight", "the fight", True),)),
            ("peace deal ~1 sign*", "peace deal", False, (Step(1, "sign", "sign", True),)),
            (
                "cease* ~1 fire ~3 violat*",
                "cease",
                True,
                (Step(1, "fire", "fire", False), Step(3, "violat", "violat", True)),
            ),
        ],
    )
    def test_alias_is_its_anchor_and_steps(
        self, written: str, folded: str, prefix: bool, steps: tuple[Step, ...]
    ) -> None:
        """An alias parses into the words the automaton finds and the steps checked after them."""
        alias = parse_alias(written)
        assert alias is not None
        assert (alias.folded, alias.prefix, alias.steps) == (folded, prefix, steps)

    @pytest.mark.parametrize(
        ("written", "message"),
        [
            ("dr*ne", "'*' is allowed only at the end of a word"),
            ("peace * talks", "'*' is allowed only at the end of a word"),
            ("~2 fighting", "a gap cannot start a phrase"),
            ("halt ~2", "a gap cannot end a phrase"),
            ("halt ~2 ~1 fighting", "two gaps in a row"),
            ("halt ~0 fighting", "gap '~0' in 'halt ~0 fighting' must be ~1 to ~5"),
            ("halt ~6 fighting", "gap '~6' in 'halt ~6 fighting' must be ~1 to ~5"),
            ("halt~2 fighting", "a gap is written '~N' as a word of its own"),
            ("halt ~x fighting", "a gap is written '~N' as a word of its own"),
            ("halt ~ fighting", "a gap is written '~N' as a word of its own"),
        ],
    )
    def test_malformed_alias_is_refused(self, written: str, message: str) -> None:
        """Misplaced wildcards and gaps are errors that say what to write."""
        with pytest.raises(PatternError, match=message.replace("*", r"\*").replace("~", "~")) as caught:
            parse_alias(written)
        assert message in str(caught.value)


# term string, title, expected hit texts (as the item wrote them)
INFLECTED = [
    ('"мирн* договор*"', "Стороны обсудили проект мирного договора", ["мирного договора"]),
    ('"мирн* договор*"', "Мирному договору нет альтернативы", ["Мирному договору"]),
    ('"мирн* договор*"', "Мирный договор подписан", ["Мирный договор"]),
    ('"мирн* договор*"', "Мирный и справедливый договор", []),
    ('"мирн* договор*"', "Мирдоговор", []),
    ('"мирн* договор*"', "Немирный договор", []),  # the anchor still starts at a word boundary
    ('"мирн* угод*"', "Підписання мирної угоди відкладено", ["мирної угоди"]),
    ('"mírov* smlouv*"', "Jednání o mírové smlouvě pokračují", ["mírové smlouvě"]),
    ('"porozumieni* pokojow*"', "Porozumienia pokojowego nie podpisano", ["Porozumienia pokojowego"]),
    ('"barış anlaşma*"', "Barış anlaşması imzalandı", ["Barış anlaşması"]),
    ('"sülh müqavilə*"', "Sülh müqaviləsinin mətni razılaşdırılıb", ["Sülh müqaviləsinin"]),
    ('"խաղաղության պայմանագ*"', "Խաղաղության պայմանագրի նախագիծը", ["Խաղաղության պայմանագրի"]),
    ('"cease* fire*"', "Cease-fire holds in the north", ["Cease-fire"]),
    ('"cease* fire*"', "They ceased fire at dawn", ["ceased fire"]),
    ('"cease* fire*"', "Ceasefire holds", []),  # one word: write "ceasefire" as its own alias
    ('"cease* fire*"', "They ceased. Fire broke out", []),
]

GAPS = [
    ('"halt ~2 fighting"', "Leaders call to halt fighting", ["halt fighting"]),
    ('"halt ~2 fighting"', "Leaders call to halt the fighting", ["halt the fighting"]),
    ('"halt ~2 fighting"', "Leaders call to halt Karabakh fighting", ["halt Karabakh fighting"]),
    ('"halt ~2 fighting"', "Leaders call to halt all the fighting", ["halt all the fighting"]),
    ('"halt ~2 fighting"', "Calls to halt all of the fighting", []),  # three words: beyond ~2
    ('"halt ~2 fighting"', "Talks halt. Fighting resumes", []),  # a gap never crosses a sentence
    ('"halt ~2 fighting"', "Talks halt, and fighting resumes", []),
    ('"halt ~2 fighting"', "Halt Karabakh's fighting now", ["Halt Karabakh's fighting"]),
    ('"halt ~2 fighting"', "Halt the fightings", []),  # the last word is whole
    ('"halt ~2 fight*"', "Halt the fightings", ["Halt the fightings"]),
    ('"halt ~2 fighting"', "Halt the halt the fighting", ["halt the fighting"]),  # the shortest span
    ('"stop* ~1 war"', "Stopping the war in Sudan", ["Stopping the war"]),
    ('"прекрат* ~2 огонь"', "Стороны прекратили всякий огонь", ["прекратили всякий огонь"]),
    ('"وقف ~1 النار"', "دعوات لوقف إطلاق النار في السودان", ["وقف إطلاق النار"]),  # proclitics on the first word
]


class TestMatching:
    @pytest.mark.parametrize(("term", "title", "texts"), INFLECTED + GAPS)
    def test_pattern_hits(self, tmp_path: Path, term: str, title: str, texts: list[str]) -> None:
        """A pattern alias hits exactly the spans its words, completions and gaps allow."""
        ev = judge(matcher_for(tmp_path, term), title)
        assert [h.text for h in ev.hits] == texts

    def test_hit_reports_alias_as_written(self, tmp_path: Path) -> None:
        """The hit names the alias as written and the span as the item wrote it."""
        ev = judge(matcher_for(tmp_path, '"ceasefire|halt ~2 fighting"'), "Envoys: halt the fighting now")
        assert [(h.alias, h.text, h.start, h.end) for h in ev.hits] == [
            ("halt ~2 fighting", "halt the fighting", 8, 25)
        ]

    @pytest.mark.parametrize(
        ("title", "note"),
        [
            (
                "Halt the fighting",
                "'halt ~2 fighting' matched 'Halt the fighting' in title: 1 word in the gap (up to 2)",
            ),
            ("Halt fighting", "'halt ~2 fighting' matched 'Halt fighting' in title: 0 words in the gap (up to 2)"),
            ("Halt all the fighting", "matched 'Halt all the fighting' in title: 2 words in the gap (up to 2)"),
        ],
    )
    def test_gap_is_explained(self, tmp_path: Path, title: str, note: str) -> None:
        """The reasons say how many words the gap took and how many it allows."""
        ev = judge(matcher_for(tmp_path, '"halt ~2 fighting"'), title)
        assert ev.fired
        assert any(note in reason for reason in ev.reasons), ev.reasons

    def test_two_gaps_are_explained_together(self, tmp_path: Path) -> None:
        """An alias with two gaps reports the words both took."""
        ev = judge(matcher_for(tmp_path, '"talks ~1 on ~2 treaty"'), "Talks today on a peace treaty")
        assert "'talks ~1 on ~2 treaty' matched 'Talks today on a peace treaty' in title: 3 words in the gaps " \
            "(up to 1 + 2)" in ev.reasons  # fmt: skip

    @pytest.mark.parametrize(
        ("title", "fired"),
        [("F-16 Jets over the border", True), ("f-16 jets over the border", False), ("F-16 jets", False)],
    )
    def test_case_sensitive_pattern(self, tmp_path: Path, title: str, fired: bool) -> None:
        """With `case = true` every word of a pattern alias must match its letter case."""
        m = matcher_for(tmp_path, '{ term = "F-1* Jet*", case = true }')
        assert judge(m, title).fired is fired

    def test_pattern_alias_is_never_fuzzy(self, tmp_path: Path) -> None:
        """Fuzzy matching leaves pattern aliases exact, like other phrases."""
        m = matcher_for(tmp_path, '{ term = "halt ~1 fighting", fuzzy = 80 }')
        assert not judge(m, "halt the fightin").fired
        assert judge(m, "halt the fighting").fired


UNLESS = """\
[rule.r.groups.g]
terms = [
  { term = "fighting", unless = ["halt ~2 fighting", "end* ~1 fighting"] },
  { term = "договор*", unless = "мирн* договор*" },
]
"""


class TestUnless:
    @pytest.mark.parametrize(
        ("title", "counted"),
        [
            ("Heavy fighting in the north", ["fighting"]),
            ("Calls to halt the fighting", []),
            ("Calls to halt all the fighting", []),
            ("Calls to halt all of the fighting", ["fighting"]),
            ("Talks ended the fighting", []),
            ("Торговый договор продлён", ["договор"]),
            ("Мирного договора не будет", []),
        ],
    )
    def test_pattern_contexts(self, tmp_path: Path, title: str, counted: list[str]) -> None:
        """`unless` phrases take gaps and inner wildcards like terms do."""
        report = load(tmp_path, UNLESS)
        assert report.errors == ()
        assert report.warnings == ()
        ev = judge(Matcher(report.ruleset), title)
        assert [h.alias for h in ev.hits if h.contribution] == counted

    def test_context_is_explained_with_its_span(self, tmp_path: Path) -> None:
        """The note names the whole context span, gap words included."""
        ev = judge(Matcher(load(tmp_path, UNLESS).ruleset), "Calls to halt all the fighting")
        assert (
            "'fighting' not counted in title: 'fighting' is inside 'halt all the fighting' (unless 'halt ~2 fighting')"
            in ev.reasons
        )

    def test_pattern_context_without_the_term_warns(self, tmp_path: Path) -> None:
        """A gapped context none of whose words is the term is still reported as never applying."""
        report = load(tmp_path, '[rule.r.groups.g]\nterms = [{ term = "fighting", unless = "halt ~2 talks" }]\n')
        assert any("unless 'halt ~2 talks' does not contain the term" in w for w in report.warnings)


class TestLoading:
    @pytest.mark.parametrize(
        ("terms", "column", "message"),
        [
            ('["war", "halt ~9 fighting"]', 17, "gap '~9' in 'halt ~9 fighting' must be ~1 to ~5"),
            ('["~1 fighting"]', 10, "a gap cannot start a phrase (in '~1 fighting')"),
            ('["war|halt ~2"]', 10, "a gap cannot end a phrase (in 'halt ~2')"),
            ('[{ term = "x", unless = "a ~2 ~2 x" }]', 33, "two gaps in a row in 'a ~2 ~2 x'"),
            ('["cease*fire"]', 10, "'*' is allowed only at the end of a word (in 'cease*fire')"),
        ],
    )
    def test_bad_pattern_names_file_line_column(self, tmp_path: Path, terms: str, column: int, message: str) -> None:
        """A malformed pattern is an error at the file, line and column of its term."""
        report = load(tmp_path, f"[rule.r.groups.g]\nterms = {terms}\n")
        assert [(e.line, e.column) for e in report.errors] == [(2, column)]
        assert message in str(report.errors[0])
        assert str(report.errors[0]).startswith(f"{tmp_path / 'r.toml'}:2:{column}: ")

    @pytest.mark.parametrize(
        ("term", "warning"),
        [
            ("talks ~1 ab* deal", "wildcard 'ab*' in 'talks ~1 ab* deal' is very short"),
            ("ab* talks", "wildcard 'ab*' in 'ab* talks' is very short"),
            ("peace ab* talks", None),  # the words before it narrow it down
        ],
    )
    def test_short_inner_wildcard_warns(self, tmp_path: Path, term: str, warning: str | None) -> None:
        """A very short wildcard is a warning wherever it stands in the phrase, unless words precede it."""
        report = load(tmp_path, f'[rule.r.groups.g]\nterms = ["{term}"]\n')
        assert report.errors == ()
        found = [w for w in report.warnings if "very short" in w]
        assert found == ([] if warning is None else [f"{tmp_path / 'r.toml'}:2: {warning} and will match many words"])

    def test_patterns_that_fold_alike_are_one_alias(self, tmp_path: Path) -> None:
        """Two spellings of one pattern that fold alike are one alias, and a second term with it is warned about."""
        report = load(
            tmp_path, '[rule.r.groups.g]\nterms = ["Halt ~2 Fighting|halt ~2 fighting", "HALT ~2 FIGHTING"]\n'
        )
        term = report.ruleset.rules[0].groups[0].terms[0]
        assert len(term.aliases) == 1
        assert any("duplicates 'Halt ~2 Fighting|halt ~2 fighting'" in w for w in report.warnings)


def test_docs_example_matches_what_it_says(tmp_path: Path) -> None:
    """The pattern example in docs/rules.md loads and matches the forms its notes name."""
    doc = (Path(__file__).parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    start = doc.index("[rule.peace-process.groups.talks]")
    block = doc[start : doc.index("```", start)].replace("peace-process", "r")
    m = Matcher(load(tmp_path, block).ruleset)
    for title in ("Текст мирного договора", "Мирному договору быть", "Проект мирної угоди", "Barış anlaşması"):
        assert judge(m, title).fired, title
    assert not judge(m, "Мирный и справедливый договор").fired
