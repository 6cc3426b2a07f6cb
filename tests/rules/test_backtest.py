"""Tests for backtest feedback: the JSONL format and its checks, languages, misses with reasons, reports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.models import Item
from daemon.rules.backtest import ANY_RULE, Case, apply_labels, language_from_why, measure_any, parse_jsonl
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.rules.misses import by_language, by_reason, find_misses
from tests.conftest import CLI, REPO, cli_env

RULES = """\
[rule.war]
threshold = 3.0
require = ["places|actors", "conflict"]
[rule.war.groups.places]
terms = ["Darfur", "Khartoum"]
[rule.war.groups.actors]
terms = ["RSF"]
[rule.war.groups.conflict]
weight = 2.0
terms = ["shelling", "clashes"]
[rule.war.groups.penalty]
weight = -2.0
terms = ["exhibition"]
[rule.war.exclude]
terms = ["football"]

[rule.talks]
threshold = 2.0
[rule.talks.groups.g]
terms = ["ceasefire talks"]
"""


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(RULES, encoding="utf-8")
    report = load_rules(tmp_path / "rules")
    assert report.errors == ()
    return Matcher(report.ruleset)


def case(
    title: str, *, label: bool | None = None, labels: dict[str, bool] | None = None, lang: str | None = None
) -> Case:
    item = Item(feed="cli", key=title, title=title, link=None, summary="")
    return Case(title, item, labels or {}, label, lang)


class TestJsonl:
    def test_every_documented_key_is_read(self) -> None:
        """id, fields, tags, labels, label, lang and the note keys all load without warnings."""
        line = {
            "id": 7, "title": "T", "summary": "S", "content": "C", "link": "https://example.invalid/a",
            "feed": "wire", "tags": ["news"], "labels": {"war": True}, "label": 1, "lang": "fr",
            "why": "x", "note": "y", "source": "z", "borderline": False, "title_is_lede": True,
        }  # fmt: skip
        parsed = parse_jsonl(json.dumps(line), "items.jsonl")
        assert parsed.warnings == []
        (c,) = parsed.cases
        assert (c.id, c.item.title, c.item.content, c.item.feed, c.tags) == ("7", "T", "C", "wire", {"news"})
        assert (c.labels, c.label, c.lang) == ({"war": True}, True, "fr")

    def test_unknown_keys_are_reported_once_per_key(self) -> None:
        """A misspelt key is a warning with a suggestion, the count and the first line; the item still loads."""
        text = '{"titel": "a"}\n\n{"titel": "b", "summery": "c"}\n'
        parsed = parse_jsonl(text, "items.jsonl")
        assert len(parsed.cases) == 2
        assert parsed.warnings == [
            "items.jsonl: unknown key 'titel' (did you mean 'title'?) on 2 item(s) (first at line 1); ignored",
            "items.jsonl: unknown key 'summery' (did you mean 'summary'?) on 1 item(s) (first at line 3); ignored",
        ]

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ('{"title": 5}', 'line 1: "title" must be a string, got int'),
            ('{"label": 2}', 'line 1: "label" must be 1/0 or true/false (should any rule fire?), got 2'),
            ('{"label": "yes"}', "line 1: \"label\" must be 1/0 or true/false (should any rule fire?), got 'yes'"),
            ('{"labels": {"war": 1}}', 'line 1: "labels" must map rule ids to true/false'),
            ('{"tags": "news"}', 'line 1: "tags" must be an array of strings'),
            ('{"id": [1]}', 'line 1: "id" must be a string or a number, got list'),
            ("[1]", "line 1: expected a JSON object"),
            ("{oops}", "line 1: not JSON"),
        ],
    )
    def test_bad_values_name_the_line(self, line: str, message: str) -> None:
        """A value of the wrong type stops with the file and line, rather than being coerced."""
        with pytest.raises(ConfigError) as err:
            parse_jsonl(line, "items.jsonl")
        assert str(err.value).startswith(f"items.jsonl: {message}")

    @pytest.mark.parametrize(("label", "want"), [(1, True), (0, False), (True, True), (False, False), (None, None)])
    def test_item_level_label(self, label: object, want: bool | None) -> None:
        """`label` is 1/0 or true/false: should any rule fire."""
        (c,) = parse_jsonl(json.dumps({"title": "t", "label": label}), "x").cases
        assert c.label is want

    def test_missing_id_is_the_line(self) -> None:
        """Items without an id are named by their line."""
        assert [c.id for c in parse_jsonl('{"title": "a"}\n\n{"title": "b"}', "x").cases] == ["line-1", "line-3"]


class TestLanguage:
    @pytest.mark.parametrize(
        ("why", "lang"),
        [
            ("Arabic; Nov 2020 ceasefire", "Arabic"),
            ("Armenian (classical orthography, Iran); soldiers killed", "Armenian"),
            ("Azerbaijani (Armenian public radio); border fire", "Azerbaijani"),
            ("German", "German"),
            ("Armenian cuisine", None),
            ("Armenian IT; 'corridor' word", None),
            ("Sept 2022 border attack", None),
            ("", None),
        ],
    )
    def test_language_from_why(self, why: str, lang: str | None) -> None:
        """A `why` names the language when its first part (before ';', without parentheses) is a language."""
        assert language_from_why(why) == lang

    def test_lang_field_wins_over_why(self) -> None:
        """An explicit `lang` is used as given."""
        (c,) = parse_jsonl('{"title": "t", "lang": "hy", "why": "Arabic; x"}', "x").cases
        assert c.lang == "hy"


class TestLabelsFile:
    def test_rows_add_and_override_by_id(self) -> None:
        """A labels row adds per-rule labels, overrides label and lang; unknown ids are one warning."""
        items = [Case("a", Item("cli", "a", "t", None, ""), {"war": True, "talks": False}, None, "en"), case("b")]
        rows = [
            Case("a", Item("cli", "a", "", None, ""), {"talks": True}, False, "fr"),
            Case("zz", Item("cli", "zz", "", None, ""), {}, True),
        ]
        merged, warnings = apply_labels(items, rows)
        assert (merged[0].labels, merged[0].label, merged[0].lang) == ({"war": True, "talks": True}, False, "fr")
        assert merged[1] == items[1]
        assert warnings == ["1 label row(s) name ids that are not among the items (first: zz)"]


class TestMisses:
    @pytest.mark.parametrize(
        ("title", "category", "subject", "reason"),
        [
            ("Shelling overnight", "required group missing", "places|actors", "neither group 'places' or 'actors'"),
            ("Darfur football clashes", "excluded", "football", "excluded by 'football'"),
            ("Darfur exhibition of shelling", "below threshold", "short by 1 or less", "score 2 below threshold 3"),
            ("Weather in Paris", "no term matched", "", "no term matched"),
        ],
    )
    def test_false_negative_reasons(
        self, matcher: Matcher, title: str, category: str, subject: str, reason: str
    ) -> None:
        """Each missed positive carries the closest rule's first failure: which group, term or gap."""
        c = case(title, label=True)
        (miss,) = find_misses([(c, matcher.evaluate(c.item, all_rules=True))])
        assert (miss.kind, miss.rule, miss.category, miss.subject) == ("false negative", ANY_RULE, category, subject)
        assert reason in miss.explanation

    def test_closest_rule_is_chosen(self, matcher: Matcher) -> None:
        """The rule nearest its threshold decides the reason of an item-level miss."""
        c = case("Darfur exhibition of shelling", label=True)
        (miss,) = find_misses([(c, matcher.evaluate(c.item, all_rules=True))])
        assert miss.verdict is not None
        assert (miss.verdict.rule_id, miss.verdict.score, miss.verdict.threshold, miss.gap) == ("war", 2.0, 3.0, -1.0)

    def test_false_positive_names_the_rule(self, matcher: Matcher) -> None:
        """A fired negative says which rule fired and what it counted, with signed contributions."""
        c = case("RSF shelling near Khartoum", label=False)
        (miss,) = find_misses([(c, matcher.evaluate(c.item, all_rules=True))])
        assert (miss.kind, miss.category, miss.subject, miss.gap) == ("false positive", "fired", "war", 5.0)
        assert "RSF (actors, title, +2)" in miss.explanation

    def test_per_rule_labels(self, matcher: Matcher) -> None:
        """Per-rule labels give one miss per wrong rule, named."""
        c = case("RSF shelling", labels={"war": True, "talks": True})
        misses = find_misses([(c, matcher.evaluate(c.item, all_rules=True))])
        assert [(m.rule, m.kind, m.category) for m in misses] == [("talks", "false negative", "no term matched")]

    def test_counts_by_reason_and_language(self, matcher: Matcher) -> None:
        """Misses are counted by reason (with subjects) and every label by language."""
        cases = [
            case("Shelling overnight", label=True, lang="English"),
            case("Clashes reported", label=True, lang="English"),
            case("Darfur shelling", label=True, lang="French"),
            case("Khartoum clashes", label=False, lang="French"),
            case("Pas de nouvelles", label=False),
        ]
        results = [(c, matcher.evaluate(c.item, all_rules=True)) for c in cases]
        misses = find_misses(results)
        reasons = [(r.kind, r.category, r.count, r.subjects) for r in by_reason(misses)]
        assert reasons == [
            ("false negative", "required group missing", 2, (("places|actors", 2),)),
            ("false positive", "fired", 1, (("war", 1),)),
        ]
        rows = [(r.lang, r.items, r.tp, r.fp, r.fn, r.tn) for r in by_language(results)]
        assert rows == [("English", 2, 0, 0, 2, 0), ("French", 2, 1, 1, 0, 0), ("unknown", 1, 0, 0, 0, 1)]
        st = measure_any(results)
        assert (st.tp, st.fp, st.fn, st.tn, st.precision, st.recall) == (1, 1, 2, 1, 0.5, 1 / 3)


def feedwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, env=cli_env(), capture_output=True, text=True, check=False)


class TestCommands:
    def test_backtest_lists_misses_with_reasons(self, tmp_path: Path, matcher: Matcher) -> None:
        """backtest --labels lists each miss with score beside threshold and counts by reason and language."""
        items = tmp_path / "items.jsonl"
        items.write_text(
            "\n".join(
                json.dumps(d)
                for d in [
                    {"id": "a", "title": "Shelling overnight", "why": "Arabic; no place named"},
                    {"id": "b", "title": "Darfur exhibition of shelling"},
                    {"id": "c", "title": "RSF shelling near Khartoum"},
                ]
            ),
            encoding="utf-8",
        )
        labels = tmp_path / "labels.jsonl"
        labels.write_text('{"id": "a", "label": 1}\n{"id": "b", "label": true}\n{"id": "c", "label": 0}\n')
        out = feedwatch("backtest", str(items), "--labels", str(labels), "--rules", str(tmp_path / "rules"))
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert "(any rule)                        1         3      0.000   0.000" in text
        assert "  a [Arabic] Shelling overnight" in text
        assert "war score 4 / 3 (reached): required 'places|actors': neither group" in text
        assert "war score 2 / 3 (1 short): score 2 below threshold 3" in text
        assert "war score 8 / 3 (+5): fired: war; counted RSF (actors, title, +2)" in text
        assert "false negative: required group missing" in text
        assert "places|actors 1" in text
        assert "  unknown               2     1     1" in text

    def test_backtest_json_has_misses(self, tmp_path: Path, matcher: Matcher) -> None:
        """--json carries every miss with its reason, and the by-reason and by-language counts."""
        items = tmp_path / "items.jsonl"
        items.write_text('{"id": "a", "title": "Shelling overnight", "label": 1, "lang": "en"}\n')
        out = feedwatch("backtest", "--json", str(items), "--rules", str(tmp_path / "rules"))
        doc = json.loads(out.stdout)
        assert doc["any_rule"]["false_negatives"] == ["a"]
        (miss,) = doc["misses"]
        assert (miss["reason"], miss["subject"], miss["score"], miss["threshold"]) == (
            "required group missing", "places|actors", 4.0, 3.0,
        )  # fmt: skip
        assert doc["by_language"][0]["lang"] == "en"

    def test_score_signs_and_threshold(self, tmp_path: Path, matcher: Matcher) -> None:
        """score prints +4 and -1 (never +-1) and each rule's threshold."""
        out = feedwatch(
            "score", "--rules", str(tmp_path / "rules"), "--title", "Darfur shelling exhibition", "--summary", "RSF"
        )
        assert out.returncode == 0, out.stderr
        assert "war: FIRES info, score 3 (threshold 3)" in out.stdout
        assert "(conflict, title, +4)" in out.stdout
        assert "(penalty, title, -4)" in out.stdout
        assert "+-" not in out.stdout

    def test_score_jsonl_warns_about_unknown_keys(self, tmp_path: Path, matcher: Matcher) -> None:
        """score on a JSONL with a misspelt key warns on stderr and still scores."""
        items = tmp_path / "items.jsonl"
        items.write_text('{"titel": "Darfur shelling"}\n')
        out = feedwatch("score", str(items), "--rules", str(tmp_path / "rules"))
        assert out.returncode == 0
        assert "unknown key 'titel' (did you mean 'title'?) on 1 item(s) (first at line 1); ignored" in out.stderr

    def test_score_feed_json_shape(self) -> None:
        """score FILE.xml --json stays one record per item with its title and rules: [{rule, fired, ...}]."""
        out = feedwatch("score", "seeds/demo.xml", "--json")
        doc = json.loads(out.stdout)
        assert len(doc) >= 2
        for record in doc:
            assert isinstance(record["title"], str)
            assert all({"rule", "fired", "score", "hits", "reasons"} <= set(r) for r in record["rules"])
        assert sum(any(r["fired"] for r in rec["rules"]) for rec in doc) >= 2


def _realnews() -> Path | None:
    return next((p for d in Path(__file__).parents if (p := d / "shared" / "realnews" / "dev.jsonl").is_file()), None)


def test_realnews_dev_set_backtests_directly() -> None:
    """The realnews dev format (id, label, title, summary, source, borderline, why, title_is_lede) loads as is."""
    path = _realnews()
    if path is None:
        pytest.skip("shared/realnews/dev.jsonl not found in any folder above the tests")
    out = feedwatch("backtest", "--json", str(path))
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    doc = json.loads(out.stdout)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert doc["any_rule"]["labelled"] == doc["items"] == len(lines)
    langs = {row["lang"] for row in doc["by_language"]}
    assert {"Arabic", "Russian", "unknown"} <= langs


def test_writing_docs_mention_the_formats() -> None:
    """The JSONL formats are documented where users look for them."""
    text = (REPO / "docs" / "testing-rules.md").read_text(encoding="utf-8")
    for key in ('"labels"', '"label"', '"lang"', '"why"', "title_is_lede"):
        assert key in text
