"""Load and validate ``rules/*.toml`` (and ``rules/lists/*.toml``) into an immutable RuleSet.

Errors carry file:line:column; a file that fails keeps its last good version when ``previous`` is given.
The file format is documented in docs/rules.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.errors import RuleError
from daemon.models import Severity
from daemon.rules.check import Checker

__all__ = [
    "DEFAULT_FIELD_FACTORS",
    "DEFAULT_THRESHOLD",
    "Alias",
    "Example",
    "ExampleFailure",
    "FieldFactors",
    "Group",
    "LoadReport",
    "Proximity",
    "Rule",
    "RuleSet",
    "SeverityBands",
    "Term",
    "check_examples",
    "load_rules",
    "no_rules_error",
]

DEFAULT_THRESHOLD = 1.0
DEFAULT_GROUP_WEIGHT = 1.0
DEFAULT_FIELD_FACTORS: Mapping[str, float] = MappingProxyType({"title": 2.0, "summary": 1.0, "content": 0.5})
EXCLUDE_GROUP = "exclude"  # the group name reported for hits of `exclude.terms`

# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alias:
    """One alternative of a term: ``Karabakh`` in ``"Karabakh|Artsakh"``."""

    text: str  # as written, without a trailing "*"
    folded: str  # fold_term(text): what is searched for in folded item text
    cased: str  # fold_term(text, keep_case=True): compared for case-sensitive terms
    prefix: bool = False  # written with a trailing "*": matches words that start with it

    @property
    def single_word(self) -> bool:
        return bool(self.folded) and " " not in self.folded


@dataclass(frozen=True, slots=True)
class Term:
    """A term as written in a group: aliases, or one regular expression."""

    source: str  # as written: "Stepanakert|Khankendi", or the regex pattern
    aliases: tuple[Alias, ...] = ()
    regex: str | None = None  # the pattern as written (compiled by the matcher)
    weight: float | None = None  # None: the group's weight
    case: bool = False
    fuzzy: float | None = None  # effective similarity threshold (term or group); None: exact only
    list_name: str | None = None  # set when the term came from an @list
    line: int | None = None
    unless: tuple[Alias, ...] = ()  # contexts: an occurrence inside one of these does not count
    path: str | None = None  # the file the term is written in, when it is not the rule's (a list file)
    note: str = ""  # free text for readers of the rule (a language, a source); never matched


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    weight: float
    terms: tuple[Term, ...]
    fuzzy: float | None = None
    min_distinct: int = 1  # distinct terms that must match before the group counts at all


@dataclass(frozen=True, slots=True)
class SeverityBands:
    """Score → severity. ``fixed`` wins when set; else score ≥ critical → critical, ≥ warning → warning."""

    warning: float | None = None
    critical: float | None = None
    fixed: Severity | None = None

    def classify(self, score: float) -> Severity:
        if self.fixed is not None:
            return self.fixed
        if self.critical is not None and score >= self.critical - 1e-9:
            return Severity.CRITICAL
        if self.warning is not None and score >= self.warning - 1e-9:
            return Severity.WARNING
        return Severity.INFO


@dataclass(frozen=True, slots=True)
class Proximity:
    groups: tuple[str, ...]
    words: int


@dataclass(frozen=True, slots=True)
class FieldFactors:
    title: float = 2.0
    summary: float = 1.0
    content: float = 0.5

    def get(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass(frozen=True, slots=True)
class Example:
    """An item the rule must (``expect``) or must not match; run by ``check_examples``."""

    title: str
    summary: str = ""
    content: str = ""
    feed: str | None = None
    tags: frozenset[str] = frozenset()
    expect: bool = True
    severity: Severity | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    groups: tuple[Group, ...]
    description: str = ""
    enabled: bool = True
    threshold: float = DEFAULT_THRESHOLD
    severity: SeverityBands = SeverityBands()
    require: tuple[str, ...] = ()  # entries as written: "places" or alternatives "places|actors"
    channels: tuple[str, ...] = ()
    throttle: timedelta | None = None
    feeds: frozenset[str] = frozenset()
    except_feeds: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    except_tags: frozenset[str] = frozenset()
    proximity: Proximity | None = None
    fields: FieldFactors = FieldFactors()
    exclude_terms: tuple[Term, ...] = ()
    exclude_groups: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    path: str = ""
    line: int | None = None

    def not_applicable(self, feed: str, feed_tags: frozenset[str]) -> str | None:
        """Why this rule does not look at items of ``feed``, or None when it does."""
        if self.feeds and feed not in self.feeds:
            return f"feed {feed!r} is not in feeds {sorted(self.feeds)}"
        if feed in self.except_feeds:
            return f"feed {feed!r} is in except_feeds"
        if self.tags and not (self.tags & feed_tags):
            return f"feed has none of the tags {sorted(self.tags)}"
        if self.except_tags & feed_tags:
            return f"feed has excluded tag(s) {sorted(self.except_tags & feed_tags)}"
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All loaded rules; replaced as a whole on reload, never mutated."""

    rules: tuple[Rule, ...] = ()
    lists: Mapping[str, tuple[Term, ...]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    version: str = ""  # digest of the rule files in use

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)


@dataclass(frozen=True, slots=True)
class LoadReport:
    ruleset: RuleSet
    errors: tuple[RuleError, ...] = ()
    warnings: tuple[str, ...] = ()
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)  # path -> sha256 of the version in use
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # path -> text of the version in use

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    rule_id: str
    index: int  # 0-based position in the rule's examples
    title: str
    expected: bool
    fired: bool
    score: float
    reasons: tuple[str, ...]
    path: str = ""
    line: int | None = None
    expected_severity: Severity | None = None
    severity: Severity | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: " if self.line else (f"{self.path}: " if self.path else "")
        if self.expected != self.fired:
            what = "expected a match but the rule did not fire" if self.expected else "expected no match but it fired"
        else:
            what = f"expected severity {self.expected_severity}, got {self.severity}"
        why = "; ".join(self.reasons)
        return f"{where}rule {self.rule_id!r} example {self.index + 1} ({self.title!r}): {what} ({why})"


# --- loading ---------------------------------------------------------------------------------------


@dataclass
class _FileResult:
    lists: dict[str, tuple[Term, ...]]
    rules: list[Rule]
    errors: list[RuleError]
    warnings: list[str]
    early: bool = False  # errors in syntax or lists: other files' errors may follow from these


def _rule_files(rules_dir: Path) -> list[Path]:
    def visible(p: Path) -> bool:
        return p.is_file() and not p.name.startswith((".", "#"))

    files = sorted(p for p in rules_dir.glob("*.toml") if visible(p))
    lists_dir = rules_dir / "lists"
    if lists_dir.is_dir():
        files += sorted(p for p in lists_dir.glob("*.toml") if visible(p))
    return files


def load_rules(
    rules_dir: Path,
    *,
    channels: Collection[str] | None = None,
    previous: LoadReport | None = None,
) -> LoadReport:
    """Read every rule and list file, validate, and build a new RuleSet.

    A file with errors contributes the version it had in ``previous`` (its last good version), or
    nothing; its errors are reported either way. Rule ids and list names are global: a second
    definition is an error in the file that did not have it before (else the later file by name).
    """
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        err = RuleError(f"rules directory {str(rules_dir)!r} does not exist", path=rules_dir)
        return LoadReport(RuleSet(), errors=(err,))
    prev_sources = previous.sources if previous is not None else {}
    current: dict[str, str] = {}
    read_errors: dict[str, RuleError] = {}
    for path in _rule_files(rules_dir):
        key = str(path)
        try:
            current[key] = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            read_errors[key] = RuleError("file is not valid UTF-8", path=key, line=line)
        except OSError as exc:
            read_errors[key] = RuleError(f"cannot read file: {exc.strerror}", path=key)
    # Files that were already in use come first, so a new file cannot steal an existing rule id.
    order = sorted(set(current) | set(read_errors), key=lambda p: (p not in prev_sources, p))
    in_use: dict[str, str | None] = {p: current.get(p, prev_sources.get(p)) for p in order}
    failed: dict[str, list[RuleError]] = {p: [e] for p, e in read_errors.items()}
    # Validate everything; a failing file falls back to its previous text (or nothing) and the whole
    # set is validated again, since its lists may be what other files refer to. Files broken in syntax
    # or lists fall back first, so a rule file is not blamed for a list file's mistake.
    for _ in range(2 * len(order) + 1):
        results = _validate_all(rules_dir, order, in_use, channels)
        broken = [p for p, res in results.items() if res.errors]
        early = [p for p in broken if results[p].early]
        if not broken:
            break
        for p in early or broken:
            failed.setdefault(p, results[p].errors)
            fallback = prev_sources.get(p) if in_use[p] == current.get(p) else None
            if fallback == in_use[p]:  # the previous version is the same text: nothing to fall back to
                fallback = None
            in_use[p] = fallback
    results = _validate_all(rules_dir, order, in_use, channels)
    rules: list[Rule] = []
    lists: dict[str, tuple[Term, ...]] = {}
    warnings: list[str] = []
    for p in order:
        if p in results:
            rules += results[p].rules
            lists.update(results[p].lists)
            warnings += results[p].warnings
    errors = [e for p in order for e in failed.get(p, [])]
    files = {p: hashlib.sha256(t.encode("utf-8")).hexdigest() for p, t in in_use.items() if t is not None}
    version = hashlib.sha256("".join(f"{p}\0{h}\0" for p, h in sorted(files.items())).encode()).hexdigest()[:16]
    ruleset = RuleSet(tuple(rules), MappingProxyType(lists), version)
    sources = {p: t for p, t in in_use.items() if t is not None}
    return LoadReport(ruleset, tuple(errors), tuple(dict.fromkeys(warnings)), files, sources)


def _validate_all(
    rules_dir: Path, order: list[str], in_use: Mapping[str, str | None], channels: Collection[str] | None
) -> dict[str, _FileResult]:
    from daemon.rules.parse import parse_rule
    from daemon.rules.terms import parse_list  # it builds this module's types

    lists_dir = str(rules_dir / "lists")
    parsed: dict[str, tuple[Checker, dict[str, Any]]] = {}
    results: dict[str, _FileResult] = {}
    for p in order:
        text = in_use[p]
        if text is None:
            continue
        checker = Checker(p, text)
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            checker.syntax_error(exc)
            results[p] = _FileResult({}, [], checker.errors, checker.warnings, early=True)
            continue
        allowed = ("list",) if str(Path(p).parent) == lists_dir else ("rule", "list")
        for key in doc:
            if key not in allowed:
                checker.unknown_key((), key, allowed)
        parsed[p] = (checker, doc)
    # Lists first: every rule file may use every list.
    all_lists: dict[str, tuple[Term, ...]] = {}
    file_lists: dict[str, dict[str, tuple[Term, ...]]] = {}
    for p, (checker, doc) in parsed.items():
        file_lists[p] = {}
        for name, body in checker.table(doc, ("list",), "list").items():
            if name in all_lists:
                checker.error(("list", name), f"list {name!r} is already defined in another file")
                continue
            terms = parse_list(checker, name, body)
            file_lists[p][name] = all_lists[name] = terms
    early = {p for p, (checker, _) in parsed.items() if checker.errors}
    seen_ids: set[str] = set()
    for p, (checker, doc) in parsed.items():
        rules: list[Rule] = []
        for rule_id, body in checker.table(doc, ("rule",), "rule").items():
            if rule_id in seen_ids:
                checker.error(("rule", rule_id), f"rule id {rule_id!r} is already defined in another file")
                continue
            seen_ids.add(rule_id)
            rule = parse_rule(checker, rule_id, body, all_lists, channels)
            if rule is not None:
                rules.append(rule)
        checker.errors.sort(key=lambda e: (e.line or 0, e.column or 0))
        results[p] = _FileResult(file_lists[p], rules, checker.errors, checker.warnings, early=p in early)
    return results


# --- examples --------------------------------------------------------------------------------------


def check_examples(ruleset: RuleSet) -> list[ExampleFailure]:
    """Run every rule's examples through the matcher (ignoring ``enabled``; feed filters apply only
    when the example names a ``feed``) and return the ones that did not come out as expected.
    """
    from daemon.models import Item
    from daemon.rules.matcher import Matcher  # the matcher depends on this module's types

    matcher = Matcher(ruleset)
    failures: list[ExampleFailure] = []
    for rule in ruleset.rules:
        for i, ex in enumerate(rule.examples):
            item = Item(
                feed=ex.feed or "", key=f"example-{i}", title=ex.title, link=None,
                summary=ex.summary, content=ex.content,
            )  # fmt: skip
            ev = matcher.evaluate_rule(rule.id, item, feed_tags=ex.tags, check_feed=ex.feed is not None)
            severity_ok = ex.severity is None or not ev.fired or ev.severity == ex.severity
            if ev.fired != ex.expect or not severity_ok:
                failures.append(
                    ExampleFailure(
                        rule.id, i, ex.title, ex.expect, ev.fired, ev.score, ev.reasons, rule.path,
                        ex.line, ex.severity, ev.severity if ev.fired else None,
                    )
                )  # fmt: skip
    return failures


def no_rules_error(rules_dir: Path) -> RuleError:
    """The error for a rules folder without any rule: fatal at start, and for `feedwatch check`."""
    return RuleError(
        "no rules: the folder has no rule file (*.toml with a [rule.ID] table); "
        "`feedwatch init DIR` writes an example, docs/rules.md explains the format",
        path=rules_dir,
    )
