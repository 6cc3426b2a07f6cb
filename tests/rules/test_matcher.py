"""Tests for daemon.matcher: term forms, folding, fuzzy guards, scoring, rule logic and explanations."""

from __future__ import annotations

import html
import itertools
import textwrap
from pathlib import Path

import pytest

from daemon.models import Hit, Item, Severity
from daemon.rules.load import load_rules
from daemon.rules.matcher import MAX_HITS_PER_TERM, Evaluation, Matcher
from daemon.rules.ruleset import RuleSet
from daemon.util.text import html_to_text


def compile_rules(tmp_path: Path, text: str) -> Matcher:
    (tmp_path / "r.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    report = load_rules(tmp_path)
    assert report.errors == (), report.errors
    return Matcher(report.ruleset)


def one_term(tmp_path: Path, term: str, *, fuzzy: int | None = None) -> Matcher:
    extra = f"fuzzy = {fuzzy}\n" if fuzzy is not None else ""
    return compile_rules(tmp_path, f"[rule.r.groups.g]\n{extra}terms = [{term}]\n")


def item(title: str = "", summary: str = "", content: str = "", feed: str = "demo") -> Item:
    return Item(feed=feed, key="k", title=title, link=None, summary=summary, content=content)


def hits_of(m: Matcher, it: Item) -> list[Hit]:
    matches = m.score(it)
    return list(matches[0].hits) if matches else []


def assert_spans_exact(it: Item, hits: list[Hit]) -> None:
    for h in hits:
        assert it.field_text(h.field)[h.start : h.end] == h.text


class TestTermForms:
    @pytest.mark.parametrize(
        ("term", "text", "hit"),
        [
            ('"Iran"', "Talks in Tirana today", False),
            ('"Iran"', "Iran's foreign minister", True),
            ('"Iran"', "IRAN-backed groups", True),
            ('"Martuni"', "the Martunis region", False),
            ('"Martuni*"', "the Martunis region", True),
            ('"drone*"', "two drones downed", True),
            ('"drone*"', "hydrodrones downed", False),
            ('"Nagorno-Karabakh"', "in Nagorno Karabakh", True),
            ('"Nagorno-Karabakh"', "in Nagorno\u2011Karabakh", True),
            ('"Nagorno Karabakh"', "in Nagorno-Karabakh", True),
            ('"Nagorno-Karabakh"', "in NagornoKarabakh", False),
            ('"Stepanakert|Khankendi"', "sirens in Khankendi", True),
            ('"Карабах*"', "бои в Карабахе", True),
            ('"Карабах"', "бои в Карабахе", False),
            ('"Erdoğan"', "Erdogan said", True),
            ('"Erdogan"', "ERDOĞAN said", True),
            ('"Straße"', "STRASSE closed", True),
            ('"C++"', "written in C++ today", True),
            ('"U.S."', "the U.S. said", True),
            ('"peace talks"', "peace-talks resume", True),
            ('"peace talks"', "peace and talks", False),
        ],
    )
    def test_exact_terms(self, tmp_path: Path, term: str, text: str, hit: bool) -> None:
        """Whole-word, alias, wildcard, phrase and folding behaviour of plain terms."""
        m = one_term(tmp_path, term)
        found = hits_of(m, item(title=text))
        assert bool(found) is hit
        assert_spans_exact(item(title=text), found)

    def test_alias_and_wildcard_reported(self, tmp_path: Path) -> None:
        """A hit names the term as written, the alias that matched and the whole matched word."""
        m = one_term(tmp_path, '"Stepanakert|Khankendi", "drone*"')
        it = item(title="Drones over Khankendi")
        by_term = {h.term: h for h in hits_of(m, it)}
        assert by_term["Stepanakert|Khankendi"].alias == "Khankendi"
        assert by_term["drone*"].text == "Drones"
        assert by_term["drone*"].alias == "drone"

    @staticmethod
    def _variants() -> list[str]:
        bases = ["Nagorno-Karabakh", "nagorno karabakh", "NAGORNO-KARABAKH", "Nágorno-Karabákh"]
        joins = [" ", "-", "\u2011", "\u2013", "\u00ad-", " - ", "_"]
        out = []
        for base, join in itertools.product(bases, joins):
            first, second = base.replace("-", " ").split(" ")
            out.append(first + join + second)
        out += [html_to_text("<p>Nagorno&#8209;<b></b>Karabakh</p>"), html.unescape("Nagorno&ndash;Karabakh")]
        return out

    @pytest.mark.parametrize("variant", _variants())
    def test_every_spelling_variant_hits(self, tmp_path: Path, variant: str) -> None:
        """Case, diacritics, every dash, soft hyphens and entities all match the same term exactly."""
        m = one_term(tmp_path, '"Nagorno-Karabakh"')
        it = item(title=f"Reports from {variant}, officials said")
        (hit,) = hits_of(m, it)
        assert hit.text == it.title[hit.start : hit.end]
        assert hit.text.startswith(variant[:7])

    @pytest.mark.parametrize(
        ("text", "hit"),
        [
            ("F-16 jets", True),
            ("F\u201116 jets", True),
            ("F 16 jets", True),
            ("f-16 jets", False),
            ("F16", False),
        ],
    )
    def test_case_sensitive_acronym(self, tmp_path: Path, text: str, hit: bool) -> None:
        """case = true compares letter case (after the rest of the folding)."""
        m = one_term(tmp_path, '{ term = "F-16", case = true }')
        assert bool(hits_of(m, item(title=text))) is hit

    def test_case_insensitive_by_default(self, tmp_path: Path) -> None:
        """Without case = true an acronym matches in any case."""
        assert hits_of(one_term(tmp_path, '"F-16"'), item(title="an f-16 crashed"))

    @pytest.mark.parametrize(
        ("text", "hit"),
        [
            ("ceasefire violations reported", True),
            ("Cease-fire violated again", True),
            ("cease\u2011fire violation", True),
            ("ceasefire holds", False),
        ],
    )
    def test_regex_terms(self, tmp_path: Path, text: str, hit: bool) -> None:
        """Regex terms run on folded text; a hyphen in the pattern matches any dash or none."""
        m = one_term(tmp_path, r'{ regex = "cease-?fire violat\\w+" }')
        it = item(summary=text)
        found = hits_of(m, it)
        assert bool(found) is hit
        assert_spans_exact(it, found)

    def test_case_sensitive_regex(self, tmp_path: Path) -> None:
        """A case-sensitive regex runs on text that kept its case."""
        m = one_term(tmp_path, r'{ regex = "\\bUN\\b", case = true }')
        assert hits_of(m, item(title="UN envoy"))[0].text == "UN"
        assert not hits_of(m, item(title="un envoy"))


class TestFuzzy:
    @pytest.mark.parametrize(
        ("term", "token", "hit", "score"),
        [
            ("Karabakh", "Karabagh", True, 87.5),
            ("Martuni", "Martini", False, None),
            ("Talish", "Talisman", False, None),
            ("Karabakh", "Karachi", False, None),
            ("Stepanakert", "Stepanakertt", True, 95.7),
            ("Stepanakert", "Stepanakret", True, 90.9),
        ],
    )
    def test_design_numbers_at_87(self, tmp_path: Path, term: str, token: str, hit: bool, score: float | None) -> None:
        """At 87 the measured neighbours split as documented: misspellings hit, other words do not."""
        m = one_term(tmp_path, f'"{term}"', fuzzy=87)
        it = item(title=f"News from {token} today")
        found = hits_of(m, it)
        assert bool(found) is hit
        if hit:
            assert found[0].fuzzy == score
            assert found[0].text == token

    def test_fuzzy_is_opt_in(self, tmp_path: Path) -> None:
        """Without fuzzy a misspelling does not match."""
        assert not hits_of(one_term(tmp_path, '"Karabakh"'), item(title="Karabagh"))

    def test_term_level_fuzzy_and_off_switch(self, tmp_path: Path) -> None:
        """A term may opt in alone, or opt out of its group's fuzzy with 0."""
        m = one_term(tmp_path, '{ term = "Karabakh", fuzzy = 87 }, { term = "Stepanakert", fuzzy = 0 }', fuzzy=87)
        found = hits_of(m, item(title="Karabagh and Stepanakertt"))
        assert [h.term for h in found] == ["Karabakh"]

    def test_fuzzy_ignores_phrases_and_wildcards(self, tmp_path: Path) -> None:
        """Only single-word, non-wildcard aliases are compared fuzzily."""
        m = one_term(tmp_path, '"Nagorno Karabakh", "Stepanak*"', fuzzy=80)
        assert not hits_of(m, item(title="Nagorni Karabagh and Stepenakert"))

    def test_exact_beats_fuzzy_on_the_same_word(self, tmp_path: Path) -> None:
        """A word that matches exactly is an exact hit, not also a fuzzy one."""
        m = one_term(tmp_path, '"Karabakh|Karabagh"', fuzzy=80)
        (hit,) = hits_of(m, item(title="Karabagh"))
        assert hit.fuzzy is None

    def test_fuzzy_non_latin(self, tmp_path: Path) -> None:
        """Fuzzy works on any script."""
        m = one_term(tmp_path, '"Степанакерт"', fuzzy=87)
        assert hits_of(m, item(title="в Степанакерте"))[0].fuzzy == 95.7


RULE = """\
[rule.k]
threshold = 3.0
severity = { warning = 5.0, critical = 8.0 }
require = ["places", "escalation"]
channels = ["desk"]

[rule.k.groups.places]
weight = 1.0
terms = ["Nagorno-Karabakh", "Karabakh", "Martuni", "Talish"]

[rule.k.groups.escalation]
weight = 2.0
terms = ["shelling", { term = "killed", weight = 3.0 }, "drone*"]

[rule.k.groups.sport]
terms = ["football"]

[rule.k.exclude]
terms = ["Grand Prix"]
groups = ["sport"]
"""


def evaluation(m: Matcher, it: Item, rule: str = "k") -> Evaluation:
    return next(e for e in m.evaluate(it) if e.rule_id == rule)


class TestScoring:
    def test_score_is_weight_times_best_field(self, tmp_path: Path) -> None:
        """Each distinct term adds its weight times the factor of the best field it appears in."""
        m = compile_rules(tmp_path, RULE)
        ev = evaluation(m, item(title="Shelling in Martuni", summary="Martuni shelling", content="drones"))
        # shelling: 2 x title 2.0; Martuni: 1 x 2.0; drones: 2 x content 0.5
        assert ev.score == 4.0 + 2.0 + 1.0
        counted = [(h.term, h.field, h.contribution) for h in ev.hits if h.contribution]
        assert sorted(counted) == [
            ("Martuni", "title", 2.0),
            ("drone*", "content", 1.0),
            ("shelling", "title", 4.0),
        ]
        repeats = [h for h in ev.hits if h.contribution == 0.0]
        assert {(h.term, h.field) for h in repeats} == {("Martuni", "summary"), ("shelling", "summary")}

    def test_term_counts_once_however_often(self, tmp_path: Path) -> None:
        """Repeating a term or using several of its aliases does not raise the score."""
        m = compile_rules(tmp_path, RULE.replace('"Martuni"', '"Martuni|Khojavend"'))
        ev = evaluation(m, item(title="Shelling: Martuni, Khojavend, Martuni"))
        assert ev.score == 4.0 + 2.0
        assert len([h for h in ev.hits if h.term == "Martuni|Khojavend"]) == 3

    def test_nested_hit_in_same_group_counts_once(self, tmp_path: Path) -> None:
        """ "Karabakh" inside "Nagorno-Karabakh" is the same mention and is not counted again."""
        m = compile_rules(tmp_path, RULE)
        ev = evaluation(m, item(title="Shelling in Nagorno-Karabakh"))
        assert ev.score == 4.0 + 2.0
        assert [h.term for h in ev.hits if h.group == "places"] == ["Nagorno-Karabakh"]

    def test_hits_per_term_are_capped(self, tmp_path: Path) -> None:
        """At most MAX_HITS_PER_TERM occurrences of one term are reported."""
        m = compile_rules(tmp_path, RULE)
        ev = evaluation(m, item(title="Shelling in Martuni", content=" ".join(["shelling"] * 20)))
        assert len([h for h in ev.hits if h.term == "shelling"]) == MAX_HITS_PER_TERM

    def test_field_factor_zero_ignores_field(self, tmp_path: Path) -> None:
        """A field with factor 0 neither scores nor satisfies require."""
        m = compile_rules(
            tmp_path,
            RULE.replace("[rule.k.groups.places]", "fields = { content = 0 }\n[rule.k.groups.places]"),
        )
        ev = evaluation(m, item(title="Shelling in Martuni", content="killed in Talish"))
        assert ev.score == 6.0
        assert all(h.field != "content" for h in ev.hits)

    @pytest.mark.parametrize(
        ("title", "fired", "severity", "score"),
        [
            ("Shelling in Martuni", True, Severity.WARNING, 6.0),
            ("Shelling kills, killed in Martuni and Talish", True, Severity.CRITICAL, 14.0),
        ],
    )
    def test_severity_bands(self, tmp_path: Path, title: str, fired: bool, severity: Severity, score: float) -> None:
        """Severity comes from the score's band."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title=title))
        assert (ev.fired, ev.severity, ev.score) == (fired, severity, score)

    def test_info_below_warning(self, tmp_path: Path) -> None:
        """A score at the threshold but under warning is info."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(summary="shelling near Martuni"))
        assert (ev.fired, ev.score, ev.severity) == (True, 3.0, Severity.INFO)

    def test_below_threshold(self, tmp_path: Path) -> None:
        """Under the threshold the rule does not fire and says by how much."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(content="shelling near Martuni"))
        assert not ev.fired
        assert ev.reasons == ("score 1.5 below threshold 3",)


class TestRuleLogic:
    def test_require_each_group(self, tmp_path: Path) -> None:
        """A required group without a hit stops the rule whatever the score."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title="Shelling and drones, many killed"))
        assert not ev.fired
        assert "required group 'places' had no hit" in ev.reasons

    def test_exclude_term_vetoes(self, tmp_path: Path) -> None:
        """Any exclude term vetoes, and the veto explains itself."""
        ev = evaluation(
            compile_rules(tmp_path, RULE), item(title="Shelling in Martuni", content="before the Grand Prix")
        )
        assert not ev.fired
        assert ev.reasons == ("excluded by 'Grand Prix' ('Grand Prix' in content)",)
        assert ev.vetoes[0].group == "exclude"

    def test_exclude_group_vetoes_and_does_not_score(self, tmp_path: Path) -> None:
        """An exclude group acts only as a veto."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title="Shelling in Martuni after football"))
        assert not ev.fired
        assert "excluded by 'football'" in ev.reasons[0]
        assert all(h.group != "sport" for h in ev.hits)

    @pytest.mark.parametrize(
        ("title", "fired"),
        [
            ("Shelling reported near Martuni overnight", True),
            ("Martuni " + "quiet " * 10 + "but shelling elsewhere", False),
        ],
    )
    def test_proximity(self, tmp_path: Path, title: str, fired: bool) -> None:
        """Proximity needs a term of each group within N words in one field."""
        text = RULE.replace("channels", 'proximity = { groups = ["places", "escalation"], words = 5 }\nchannels')
        ev = evaluation(compile_rules(tmp_path, text), item(title=title))
        assert ev.fired is fired
        if not fired:
            assert "within 5 words" in ev.reasons[0]

    def test_proximity_is_per_field(self, tmp_path: Path) -> None:
        """Hits in different fields are never near each other."""
        text = RULE.replace("channels", 'proximity = { groups = ["places", "escalation"], words = 5 }\nchannels')
        ev = evaluation(compile_rules(tmp_path, text), item(title="Martuni", summary="shelling"))
        assert not ev.fired

    @pytest.mark.parametrize(
        ("filters", "feed", "tags", "applies"),
        [
            ('feeds = ["wire"]', "wire", set(), True),
            ('feeds = ["wire"]', "blog", set(), False),
            ('except_feeds = ["blog"]', "blog", set(), False),
            ('tags = ["news"]', "wire", {"news", "en"}, True),
            ('tags = ["news"]', "wire", {"en"}, False),
            ('except_tags = ["sport"]', "wire", {"sport"}, False),
            ("enabled = false", "wire", set(), False),
        ],
    )
    def test_feed_filters(self, tmp_path: Path, filters: str, feed: str, tags: set[str], applies: bool) -> None:
        """Feed and tag filters, and enabled = false, decide whether a rule looks at an item at all."""
        m = compile_rules(tmp_path, RULE.replace("channels", f"{filters}\nchannels"))
        it = item(title="Shelling in Martuni", feed=feed)
        assert bool(m.score(it, feed_tags=frozenset(tags))) is applies
        assert bool(m.evaluate(it, feed_tags=frozenset(tags))) is applies
        everything = m.evaluate(it, feed_tags=frozenset(tags), all_rules=True)
        assert len(everything) == 1
        assert everything[0].fired is applies

    def test_all_rules_explains_skips(self, tmp_path: Path) -> None:
        """With all_rules, a skipped rule says why it did not apply."""
        m = compile_rules(tmp_path, RULE.replace("channels", 'feeds = ["wire"]\nchannels'))
        (ev,) = m.evaluate(item(title="x", feed="blog"), all_rules=True)
        assert ev.reasons == ("feed 'blog' is not in feeds ['wire']",)

    def test_no_hits_reason(self, tmp_path: Path) -> None:
        """An item with no term says so."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title="Weather is fine"))
        assert "no term matched" in ev.reasons

    def test_score_returns_rule_match(self, tmp_path: Path) -> None:
        """score() returns RuleMatch values carrying channels and hits for fired rules only."""
        m = compile_rules(tmp_path, RULE + '\n[rule.other.groups.g]\nterms = ["nothing here"]\n')
        (match,) = m.score(item(title="Shelling in Martuni"))
        assert (match.rule_id, match.score, match.severity, match.channels) == (
            "k",
            6.0,
            Severity.WARNING,
            ("desk",),
        )
        assert [h.text for h in match.hits] == ["Shelling", "Martuni"]

    def test_fired_reason(self, tmp_path: Path) -> None:
        """A fired rule explains the score against its threshold and the severity."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title="Shelling in Martuni"))
        assert ev.reasons == ("score 6 reached threshold 3; severity warning",)
        assert ev.to_match() is not None

    def test_empty_ruleset(self) -> None:
        """A matcher with no rules matches nothing."""
        assert Matcher(RuleSet()).score(item(title="anything")) == []


class TestSpans:
    @pytest.mark.parametrize(
        "title",
        [
            "Die Straße nach Martuni: Shelling",
            "ﬁerce shelling — Nagorno\u2011Karabakh",
            "Cafe\u0301 owners killed in Talish",
            "  Shelling\u00ad  near   Mar\u00adtuni  ",
            "“Shelling” in Martuni’s outskirts",
        ],
    )
    def test_span_text_is_original(self, tmp_path: Path, title: str) -> None:
        """original[start:end] == hit.text for every hit, whatever folding did to the text."""
        ev = evaluation(compile_rules(tmp_path, RULE), item(title=title))
        assert ev.hits
        assert_spans_exact(item(title=title), list(ev.hits))


class TestPenalty:
    def test_negative_weight_lowers_score(self, tmp_path: Path) -> None:
        """A negative group weight is a soft penalty: it lowers the score without vetoing."""
        text = RULE + '\n[rule.k.groups.calm]\nweight = -1.0\nterms = ["ceasefire"]\n'
        m = compile_rules(tmp_path, text)
        ev = evaluation(m, item(title="Shelling in Martuni despite ceasefire"))
        assert ev.score == 6.0 - 2.0
        assert ev.fired
        assert [h.contribution for h in ev.hits if h.group == "calm"] == [-2.0]


class TestRegexPrefilter:
    @pytest.mark.parametrize(
        ("regex", "text", "hit"),
        [
            ("(?i)\\\\bcease[- ]?fire violat\\\\w*", "Ceasefire violations reported", True),
            ("\\\\b(\\\\w+) and \\\\1\\\\b", "shelling and shelling again", True),
            ("(?P<verb>halt|stop)\\\\w* (?:\\\\w+ )?fighting", "calls to halt Karabakh fighting", True),
            ("\\\\bwithdraw\\\\w* (?:from )?occupied", "a quiet market report", False),
        ],
    )
    def test_joined_prefilter_never_hides_a_match(self, tmp_path: Path, regex: str, text: str, hit: bool) -> None:
        """The literal prefilter never hides a match, whatever the pattern's shape or the text's case."""
        rules = "".join(
            f'[rule.r{i}]\nthreshold = 1.0\n[rule.r{i}.groups.g]\nterms = [{{ regex = "{rx}" }}]\n'
            for i, rx in enumerate([regex, "\\\\bunrelated\\\\b"])
        )
        m = compile_rules(tmp_path, rules)
        fired = {r.rule_id for r in m.score(item(title=text))}
        assert ("r0" in fired) is hit
        assert "r1" not in fired


@pytest.mark.parametrize(
    ("pattern", "case", "needs"),
    [
        ("\\bwithdraw\\w* (?:from )?occupied", False, {"withdraw"}),
        ("(Talish|Martuni) shelled", False, {" shelled"}),
        ("(Talish|Martuni) hit", False, {"talish", "martuni"}),
        ("\\b(?:halt|stop|end)\\w* (?:\\w+ ){0,2}(?:fighting|hostilities)", False, {"fighting", "hostilities"}),
        ("a|b", False, None),
        ("(?i)Iran", True, None),
        ("F-16 jets", True, {"F-16 jets"}),
    ],
)
def test_required_literals(pattern: str, case: bool, needs: set[str] | None) -> None:
    """Each regex gets the literals a matching text must contain, or None when none is certain."""
    import re

    from daemon.rules.matcher import required_literals

    flags = re.compile(pattern, 0 if case else re.IGNORECASE).flags
    got = required_literals(pattern, flags, case)
    assert (set(got) if got is not None else None) == needs
