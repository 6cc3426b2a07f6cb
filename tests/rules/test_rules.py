"""Tests for daemon.rules: loading, validation errors with file:line:column, last-good reloads."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.errors import RuleError
from daemon.models import Severity
from daemon.rules.load import check_examples, load_rules
from daemon.rules.ruleset import LoadReport
from daemon.util.durations import parse_duration

FULL = """\
[rule.karabakh-fighting]
description = "Fighting or escalation around Nagorno-Karabakh"
enabled = true
threshold = 3.0
severity = { warning = 3.0, critical = 6.0 }
require = ["places", "escalation"]
channels = ["email-desk"]
throttle = "30m"
feeds = ["demo"]
except_tags = ["sport"]
proximity = { groups = ["places", "escalation"], words = 12 }
fields = { title = 3.0, content = 0.0 }

[rule.karabakh-fighting.groups.places]
weight = 1.0
fuzzy = 87
terms = [
  "Nagorno-Karabakh", "Karabakh|Karabagh|Artsakh", "Stepanakert|Khankendi", "Карабах*", "@caucasus-places",
]

[rule.karabakh-fighting.groups.escalation]
weight = 2.0
terms = [
  "shelling",
  "drone*",
  { term = "F-16", weight = 3.0, case = true },
  { regex = "cease-?fire violat\\\\w+" },
  { term = "Karabakh", fuzzy = 0 },
]

[rule.karabakh-fighting.groups.sport]
terms = ["football"]

[rule.karabakh-fighting.exclude]
terms = ["Grand Prix", "recipe"]
groups = ["sport"]

[[rule.karabakh-fighting.examples]]
title = "Shelling reported near Stepanakert"
feed = "demo"
expect = true

[[rule.karabakh-fighting.examples]]
title = "Karabakh recipe: dolma"
expect = false
"""

PLACES = """\
[list.caucasus-places]
terms = ["Talish", "Martuni", { term = "Shusha|Shushi", weight = 1.5 }]
"""

MINIMAL = """\
[rule.minimal.groups.g]
terms = ["alpha"]
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def only_error(report: LoadReport) -> RuleError:
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


class TestLoad:
    def test_full_example_loads_every_key(self, tmp_path: Path) -> None:
        """The documented example file loads into the expected immutable values."""
        write(tmp_path, "k.toml", FULL)
        write(tmp_path, "lists/places.toml", PLACES)
        report = load_rules(tmp_path, channels=["email-desk"])
        assert report.errors == ()
        rule = report.ruleset.get("karabakh-fighting")
        assert rule is not None
        assert rule.threshold == 3.0
        assert rule.severity.classify(2.0) is Severity.INFO
        assert rule.severity.classify(3.0) is Severity.WARNING
        assert rule.severity.classify(6.5) is Severity.CRITICAL
        assert rule.require == ("places", "escalation")
        assert rule.channels == ("email-desk",)
        assert rule.throttle == timedelta(minutes=30)
        assert rule.feeds == frozenset({"demo"})
        assert rule.except_tags == frozenset({"sport"})
        assert rule.proximity is not None
        assert rule.proximity.words == 12
        assert (rule.fields.title, rule.fields.summary, rule.fields.content) == (3.0, 1.0, 0.0)
        assert [g.name for g in rule.groups] == ["places", "escalation", "sport"]
        places, escalation, _ = rule.groups
        assert [t.source for t in places.terms][-3:] == ["Talish", "Martuni", "Shusha|Shushi"]
        assert places.terms[-1].list_name == "caucasus-places"
        assert places.terms[-1].weight == 1.5
        assert all(t.fuzzy == 87 for t in places.terms if t.aliases[0].single_word)
        assert places.terms[3].aliases[0].prefix
        assert places.terms[3].aliases[0].folded == "карабах"
        f16 = escalation.terms[2]
        assert (f16.weight, f16.case, f16.aliases[0].folded, f16.aliases[0].cased) == (
            3.0,
            True,
            "f 16",
            "F 16",
        )
        assert escalation.terms[3].regex == "cease-?fire violat\\w+"
        assert escalation.terms[4].fuzzy is None  # fuzzy = 0 turns it off
        assert [t.source for t in rule.exclude_terms] == ["Grand Prix", "recipe"]
        assert rule.exclude_groups == ("sport",)
        assert [e.expect for e in rule.examples] == [True, False]
        assert rule.examples[0].feed == "demo"
        assert rule.line == 1
        assert rule.path.endswith("k.toml")
        assert set(report.files) == {str(tmp_path / "k.toml"), str(tmp_path / "lists" / "places.toml")}

    def test_defaults(self, tmp_path: Path) -> None:
        """Omitted keys take the documented defaults."""
        write(tmp_path, "m.toml", MINIMAL)
        rule = load_rules(tmp_path).ruleset.rules[0]
        assert (rule.enabled, rule.threshold, rule.require, rule.channels, rule.throttle) == (
            True,
            1.0,
            (),
            (),
            None,
        )
        assert (rule.fields.title, rule.fields.summary, rule.fields.content) == (2.0, 1.0, 0.5)
        assert rule.groups[0].weight == 1.0
        assert rule.severity.classify(100.0) is Severity.INFO

    def test_fixed_severity(self, tmp_path: Path) -> None:
        """A severity name instead of bands gives every firing that severity."""
        write(
            tmp_path,
            "m.toml",
            'severity = "critical"\n'.join(["[rule.s]\n", "[rule.s.groups.g]\nterms=['x']\n"]),
        )
        rule = load_rules(tmp_path).ruleset.rules[0]
        assert rule.severity.classify(0.5) is Severity.CRITICAL

    def test_files_hash_and_version(self, tmp_path: Path) -> None:
        """`files` maps each path to the sha256 of the content in use; version changes with content."""
        path = write(tmp_path, "m.toml", MINIMAL)
        first = load_rules(tmp_path)
        assert first.files[str(path)] == hashlib.sha256(path.read_bytes()).hexdigest()
        write(tmp_path, "m.toml", MINIMAL.replace("alpha", "beta"))
        second = load_rules(tmp_path, previous=first)
        assert second.ruleset.version != first.ruleset.version
        assert second.ruleset is not first.ruleset
        assert first.ruleset.rules[0].groups[0].terms[0].source == "alpha"  # never mutated

    def test_hidden_and_non_toml_files_ignored(self, tmp_path: Path) -> None:
        """Editor backups and hidden files are not rule files."""
        write(tmp_path, "m.toml", MINIMAL)
        write(tmp_path, ".#m.toml", "garbage [")
        write(tmp_path, "m.toml~", "garbage [")
        write(tmp_path, "notes.txt", "garbage [")
        assert load_rules(tmp_path).errors == ()

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A missing rules directory is one error naming it."""
        err = only_error(load_rules(tmp_path / "nope"))
        assert "does not exist" in str(err)

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("2d", 172800),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("1w", 604800),
            ("500ms", 0.5),
        ],
    )
    def test_parse_duration(self, text: str, seconds: float) -> None:
        """Durations accept ms/s/m/h/d/w units and combinations, as config does."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "5", "5x", "m5", "1h 30", "-5m"])
    def test_parse_duration_rejects(self, text: str) -> None:
        """Anything else is a ValueError that shows the expected form."""
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(text)


class TestErrors:
    def test_invalid_toml_has_line_and_column(self, tmp_path: Path) -> None:
        """A TOML syntax error reports the file, line and column from the parser."""
        path = write(tmp_path, "bad.toml", '[rule.x]\nthreshold = 3.0\ndescription "no equals"\n')
        err = only_error(load_rules(tmp_path))
        assert (err.path, err.line, err.column) == (str(path), 3, 13)
        assert str(err).startswith(f"{path}:3:13: invalid TOML")

    def test_unknown_key_suggests_nearest(self, tmp_path: Path) -> None:
        """An unknown key is an error at its line that suggests the closest valid key."""
        write(
            tmp_path,
            "m.toml",
            "[rule.x]\ndescription = 'd'\nthreshhold = 3.0\n[rule.x.groups.g]\nterms = ['a']\n",
        )
        err = only_error(load_rules(tmp_path))
        assert err.reason == "unknown key 'threshhold' (did you mean 'threshold'?)"
        assert (err.line, err.column, err.rule_id) == (3, 1, "x")

    @pytest.mark.parametrize(
        ("snippet", "line", "message"),
        [
            ("threshold = '3'", 2, "threshold: expected a number, got str '3'"),
            ("enabled = 'yes'", 2, "enabled: expected true or false"),
            ("require = 'g'", 2, "require: expected an array of strings"),
            ("threshold = 0", 2, "threshold must be greater than 0"),
            ("require = ['gg']", 2, "require: unknown group 'gg' (did you mean 'g'?)"),
            ("severity = { warning = 6.0, critical = 3.0 }", 2, "severity bands must ascend"),
            (
                "severity = { warning = 1, critcal = 3 }",
                2,
                "unknown key 'critcal' (did you mean 'critical'?)",
            ),
            ("severity = 'urgent'", 2, "expected one of info, warning, critical"),
            ("throttle = '5 minutes'", 2, "expected a duration"),
            ("throttle = 300", 2, "expected a duration string"),
            ("proximity = { groups = ['g'], words = 5 }", 2, "proximity needs at least two groups"),
            ("proximity = { groups = ['g', 'g'], words = 0 }", 2, "words ≥ 1"),
            ("fields = { title = -1 }", 2, "field factor must be ≥ 0"),
            ("fields = { body = 1 }", 2, "unknown key 'body'"),
            ("feeds = [1]", 2, "feeds: expected an array of strings"),
        ],
    )
    def test_rule_level_errors(self, tmp_path: Path, snippet: str, line: int, message: str) -> None:
        """Each wrong value is reported at the line of its key with what was expected."""
        write(tmp_path, "m.toml", f"[rule.x]\n{snippet}\n[rule.x.groups.g]\nterms = ['a']\n")
        err = only_error(load_rules(tmp_path))
        assert message in err.reason
        assert err.line == line

    @pytest.mark.parametrize(
        ("terms", "line", "message"),
        [
            ("[]", 3, "a group needs at least one term"),
            ("'a'", 3, "expected an array of terms"),
            ("[1]", 3, "a term must be a string or an inline table"),
            ("['a|', 'b']", 3, "empty alias"),
            ("['dr*ne']", 3, "'*' is allowed only at the end"),
            ("[{ regex = 'a(b' }]", 3, "invalid regex 'a(b': missing ), unterminated subpattern"),
            ("[{ term = 'a', regex = 'b' }]", 3, "exactly one of `term` or `regex`"),
            ("[{ term = 'a', wieght = 2 }]", 3, "unknown key 'wieght' (did you mean 'weight'?)"),
            ("[{ term = 'a', weight = true }]", 3, "weight: expected a number"),
            ("[{ term = 'a', fuzzy = 101 }]", 3, "fuzzy must be between 0 and 100"),
            ("['@caucasus-place']", 3, "unknown list '@caucasus-place' (did you mean 'caucasus-places'?)"),
        ],
    )
    def test_term_errors(self, tmp_path: Path, terms: str, line: int, message: str) -> None:
        """Term mistakes are errors on the line of the terms array."""
        write(tmp_path, "m.toml", f"[rule.x.groups.g]\nweight = 1\nterms = {terms}\n")
        write(tmp_path, "lists/places.toml", PLACES)
        err = only_error(load_rules(tmp_path))
        assert message in err.reason
        assert err.line == line

    def test_term_error_points_into_multiline_array(self, tmp_path: Path) -> None:
        """In a multi-line terms array the error names the line and column of the bad term."""
        write(tmp_path, "m.toml", '[rule.x.groups.g]\nterms = [\n  "ok",\n  "@nolist",\n]\n')
        err = only_error(load_rules(tmp_path))
        assert (err.line, err.column) == (4, 3)

    def test_group_fuzzy_out_of_range(self, tmp_path: Path) -> None:
        """Group-level fuzzy is range checked at its own line."""
        write(tmp_path, "m.toml", "[rule.x.groups.g]\nterms = ['a']\nfuzzy = -5\n")
        err = only_error(load_rules(tmp_path))
        assert "fuzzy must be between 0 and 100" in err.reason
        assert err.line == 3

    def test_rule_without_groups(self, tmp_path: Path) -> None:
        """A rule needs at least one group; the error is at the rule's header."""
        write(tmp_path, "m.toml", "# comment\n[rule.lonely]\nthreshold = 2.0\n")
        err = only_error(load_rules(tmp_path))
        assert "rule has no groups" in err.reason
        assert err.line == 2

    def test_exclude_group_must_exist(self, tmp_path: Path) -> None:
        """exclude.groups names groups of the same rule."""
        write(tmp_path, "m.toml", MINIMAL + "[rule.minimal.exclude]\ngroups = ['sport']\n")
        err = only_error(load_rules(tmp_path))
        assert "unknown group 'sport'" in err.reason
        assert err.line == 4

    def test_unknown_channel(self, tmp_path: Path) -> None:
        """Channels are checked against the configured names, with a suggestion."""
        write(tmp_path, "m.toml", "[rule.x]\nchannels = ['slak']\n[rule.x.groups.g]\nterms = ['a']\n")
        err = only_error(load_rules(tmp_path, channels=["slack", "email"]))
        assert "unknown channel 'slak' (did you mean 'slack'?)" in err.reason
        assert err.line == 2
        assert load_rules(tmp_path).errors == ()  # channels=None: not checked

    def test_bad_rule_id(self, tmp_path: Path) -> None:
        """Rule ids are restricted to a safe character set."""
        write(tmp_path, "m.toml", '[rule."has space".groups.g]\nterms = ["a"]\n')
        assert "must be letters, digits" in only_error(load_rules(tmp_path)).reason

    def test_unknown_top_level_table(self, tmp_path: Path) -> None:
        """Only `rule` and `list` tables exist at the top level."""
        write(tmp_path, "m.toml", MINIMAL + "[rules.y]\nx = 1\n")
        assert "unknown key 'rules' (did you mean 'rule'?)" in only_error(load_rules(tmp_path)).reason

    def test_list_files_hold_only_lists(self, tmp_path: Path) -> None:
        """A rule in rules/lists/ is an error."""
        write(tmp_path, "lists/l.toml", MINIMAL)
        assert "unknown key 'rule'" in only_error(load_rules(tmp_path)).reason

    def test_lists_cannot_nest(self, tmp_path: Path) -> None:
        """A list may not refer to another list."""
        write(tmp_path, "lists/l.toml", "[list.a]\nterms = ['x']\n[list.b]\nterms = ['@a']\n")
        err = only_error(load_rules(tmp_path))
        assert "cannot refer to other lists" in err.reason
        assert err.line == 4

    def test_duplicate_rule_id_across_files(self, tmp_path: Path) -> None:
        """The second file defining an id is in error; the first keeps its rule."""
        write(tmp_path, "a.toml", MINIMAL)
        b = write(tmp_path, "b.toml", MINIMAL.replace("alpha", "beta"))
        report = load_rules(tmp_path)
        err = only_error(report)
        assert err.path == str(b)
        assert err.line == 1
        assert "already defined" in err.reason
        assert report.ruleset.get("minimal").groups[0].terms[0].source == "alpha"  # type: ignore[union-attr]

    def test_duplicate_id_new_file_never_steals(self, tmp_path: Path) -> None:
        """A new file reusing an id is the one in error, even if it sorts first."""
        write(tmp_path, "z.toml", MINIMAL)
        first = load_rules(tmp_path)
        a = write(tmp_path, "a.toml", MINIMAL.replace("alpha", "beta"))
        report = load_rules(tmp_path, previous=first)
        assert only_error(report).path == str(a)
        assert report.ruleset.rules[0].groups[0].terms[0].source == "alpha"

    def test_non_utf8_file(self, tmp_path: Path) -> None:
        """Undecodable bytes are an error with the line they are on."""
        (tmp_path / "m.toml").write_bytes(b"[rule.x.groups.g]\nterms = ['caf\xe9']\n")
        err = only_error(load_rules(tmp_path))
        assert "not valid UTF-8" in err.reason
        assert err.line == 2

    def test_all_errors_of_a_file_reported(self, tmp_path: Path) -> None:
        """Several mistakes in one file are all reported, not only the first."""
        write(tmp_path, "m.toml", "[rule.x]\nthreshold = 'a'\nenabled = 1\n[rule.x.groups.g]\nterms = []\n")
        assert len(load_rules(tmp_path).errors) == 3


class TestWarnings:
    @pytest.mark.parametrize(
        ("terms", "fragment"),
        [
            ("['—']", "can never match"),
            ("['a', 'A']", "duplicates"),
            ("[{ term = 'Martuni', fuzzy = 70 }]", "also matches common words"),
            ("[{ term = 'Gaza', fuzzy = 80 }]", "short word"),
            ("[{ regex = 'x*' }]", "matches empty text"),
            ("['ab*']", "very short"),
        ],
    )
    def test_likely_mistakes_warn(self, tmp_path: Path, terms: str, fragment: str) -> None:
        """Likely mistakes load but produce a warning."""
        write(tmp_path, "m.toml", f"[rule.x.groups.g]\nterms = ['ok', {terms[1:]}\n")
        report = load_rules(tmp_path)
        assert report.errors == ()
        assert any(fragment in w for w in report.warnings), report.warnings

    def test_fuzzy_87_on_martuni_is_quiet(self, tmp_path: Path) -> None:
        """The recommended threshold raises no common-word warning."""
        write(tmp_path, "m.toml", "[rule.x.groups.g]\nfuzzy = 87\nterms = ['Martuni', 'Stepanakert']\n")
        assert load_rules(tmp_path).warnings == ()


class TestLastGood:
    def test_broken_edit_keeps_previous_version(self, tmp_path: Path) -> None:
        """A file that stops validating keeps its last good rules active and reports the error."""
        path = write(tmp_path, "m.toml", MINIMAL)
        other = write(tmp_path, "o.toml", MINIMAL.replace("minimal", "other"))
        good = load_rules(tmp_path)
        write(tmp_path, "m.toml", MINIMAL.replace('terms = ["alpha"]', 'terms = "alpha"'))
        write(tmp_path, "o.toml", MINIMAL.replace("minimal", "other").replace("alpha", "omega"))
        report = load_rules(tmp_path, previous=good)
        err = only_error(report)
        assert err.path == str(path)
        assert err.line == 2
        assert report.files[str(path)] == good.files[str(path)]
        assert report.ruleset.get("minimal").groups[0].terms[0].source == "alpha"  # type: ignore[union-attr]
        assert report.ruleset.get("other").groups[0].terms[0].source == "omega"  # type: ignore[union-attr]
        assert report.files[str(other)] != good.files[str(other)]

    def test_still_broken_keeps_same_last_good(self, tmp_path: Path) -> None:
        """Reloading again while still broken keeps the same last good version."""
        write(tmp_path, "m.toml", MINIMAL)
        good = load_rules(tmp_path)
        write(tmp_path, "m.toml", "[rule.minimal")
        broken1 = load_rules(tmp_path, previous=good)
        broken2 = load_rules(tmp_path, previous=broken1)
        assert len(broken2.errors) == 1
        assert broken2.ruleset.ids == ("minimal",)

    def test_without_previous_a_broken_file_contributes_nothing(self, tmp_path: Path) -> None:
        """At start-up there is no last good version: the broken file's rules are absent."""
        write(tmp_path, "m.toml", "[rule.minimal")
        write(tmp_path, "o.toml", MINIMAL.replace("minimal", "other"))
        report = load_rules(tmp_path)
        assert len(report.errors) == 1
        assert report.ruleset.ids == ("other",)

    def test_deleted_file_rules_go_away(self, tmp_path: Path) -> None:
        """Deleting a file removes its rules."""
        path = write(tmp_path, "m.toml", MINIMAL)
        good = load_rules(tmp_path)
        path.unlink()
        report = load_rules(tmp_path, previous=good)
        assert report.errors == ()
        assert len(report.ruleset) == 0
        assert report.files == {}

    def test_broken_list_file_keeps_previous_list(self, tmp_path: Path) -> None:
        """Rules using a list keep working with the list's last good version."""
        write(tmp_path, "m.toml", "[rule.x.groups.g]\nterms = ['@caucasus-places']\n")
        write(tmp_path, "lists/places.toml", PLACES)
        good = load_rules(tmp_path)
        write(tmp_path, "lists/places.toml", "[list.caucasus-places]\nterms = 5\n")
        report = load_rules(tmp_path, previous=good)
        assert len(report.errors) == 1
        assert next(t.source for t in report.ruleset.rules[0].groups[0].terms) == "Talish"

    def test_rule_file_falls_back_when_its_list_disappears(self, tmp_path: Path) -> None:
        """A rule file whose list was deleted reports the unknown list and keeps nothing it cannot resolve."""
        write(tmp_path, "m.toml", "[rule.x.groups.g]\nterms = ['@caucasus-places']\n")
        lists = write(tmp_path, "lists/places.toml", PLACES)
        good = load_rules(tmp_path)
        lists.unlink()
        report = load_rules(tmp_path, previous=good)
        assert any("unknown list" in e.reason for e in report.errors)
        assert report.ruleset.ids == ()

    def test_fixing_the_file_takes_the_new_version(self, tmp_path: Path) -> None:
        """Once the file validates again its new content is used and the error clears."""
        write(tmp_path, "m.toml", MINIMAL)
        good = load_rules(tmp_path)
        write(tmp_path, "m.toml", "[rule.minimal")
        broken = load_rules(tmp_path, previous=good)
        write(tmp_path, "m.toml", MINIMAL.replace("alpha", "gamma"))
        fixed = load_rules(tmp_path, previous=broken)
        assert fixed.errors == ()
        assert fixed.ruleset.rules[0].groups[0].terms[0].source == "gamma"


class TestExamples:
    def test_passing_examples(self, tmp_path: Path) -> None:
        """Examples the rule gets right produce no failures."""
        write(tmp_path, "k.toml", FULL)
        write(tmp_path, "lists/places.toml", PLACES)
        assert check_examples(load_rules(tmp_path).ruleset) == []

    def test_failing_example_names_file_and_line(self, tmp_path: Path) -> None:
        """A wrong example is reported with its file, line and the matcher's reasons."""
        examples = "\n[[rule.minimal.examples]]\ntitle = 'beta only'\n\n"
        examples += "[[rule.minimal.examples]]\ntitle = 'alpha'\nexpect = false\n"
        text = MINIMAL + examples
        path = write(tmp_path, "m.toml", text)
        failures = check_examples(load_rules(tmp_path).ruleset)
        assert [(f.index, f.line, f.expected, f.fired) for f in failures] == [
            (0, 4, True, False),
            (1, 7, False, True),
        ]
        assert str(failures[0]).startswith(f"{path}:4: rule 'minimal' example 1 ('beta only'): expected a match")
        assert "no term matched" in str(failures[0])

    def test_example_severity(self, tmp_path: Path) -> None:
        """An example may pin the severity it must reach."""
        text = MINIMAL.replace(
            "[rule.minimal.groups.g]",
            "[rule.minimal]\nseverity = { warning = 2, critical = 4 }\n[rule.minimal.groups.g]",
        )
        write(tmp_path, "m.toml", text + "[[rule.minimal.examples]]\ntitle = 'alpha'\nseverity = 'critical'\n")
        (failure,) = check_examples(load_rules(tmp_path).ruleset)
        assert (failure.expected_severity, failure.severity) == (Severity.CRITICAL, Severity.WARNING)


class TestDocs:
    def test_reference_example_loads_and_scores_as_documented(self, tmp_path: Path) -> None:
        """The complete example in docs/rules.md is valid, its examples pass, and its worked score holds."""
        from daemon.models import Item
        from daemon.rules.matcher import Matcher

        doc = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
        blocks = doc.split("```toml\n")
        rule_text = blocks[1].split("```")[0]
        list_text = blocks[2].split("```")[0]
        write(tmp_path, "karabakh.toml", rule_text)
        write(tmp_path, "lists/caucasus-places.toml", list_text)
        report = load_rules(tmp_path, channels=["email-desk"])
        assert report.errors == ()
        assert check_examples(report.ruleset) == []
        it = Item(feed="wire", key="1", title="Shelling in Martuni", link=None, summary="Martuni shelled overnight")
        (match,) = Matcher(report.ruleset).score(it)
        assert (match.score, match.severity) == (6.0, Severity.WARNING)


class TestLastGoodAcrossFiles:
    def test_rule_file_not_blamed_for_broken_list(self, tmp_path: Path) -> None:
        """Editing a rule file while a list file breaks: the rule edit applies, only the list errs."""
        rules = write(tmp_path, "m.toml", "[rule.x.groups.g]\nterms = ['@caucasus-places']\n")
        lists = write(tmp_path, "lists/places.toml", PLACES)
        good = load_rules(tmp_path)
        write(tmp_path, "m.toml", "[rule.x.groups.g]\nterms = ['@caucasus-places', 'new term']\n")
        write(tmp_path, "lists/places.toml", "[list.caucasus-places\n")
        report = load_rules(tmp_path, previous=good)
        assert only_error(report).path == str(lists)
        assert report.files[str(rules)] != good.files[str(rules)]
        assert report.ruleset.rules[0].groups[0].terms[-1].source == "new term"


class TestErrorPositions:
    @pytest.mark.parametrize(
        ("bad", "column"),
        [
            ('{ term = "Martuni", wieght = 2 }', 12),
            ('{ regex = "cease-?fire violat\\\\w+(" }', 14),
            ('{ term = "Talish", fuzzy = 120 }', 12),
        ],
    )
    def test_term_table_errors_point_at_their_line(self, tmp_path: Path, bad: str, column: int) -> None:
        """Errors inside a term table of a multi-line array point at that term's text."""
        text = f'[rule.x.groups.g]\nterms = [\n  "ok",\n  "fine",\n  {bad},\n  "last",\n]\n'
        write(tmp_path, "m.toml", text)
        err = only_error(load_rules(tmp_path))
        assert (err.line, err.column) == (5, column)
