"""The rule model: terms, groups, severity bands, examples, rules and the immutable RuleSet.

Built by :mod:`daemon.rules.load`; read by the matcher. The file format is documented in docs/rules.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import NamedTuple

from daemon.errors import RuleError
from daemon.models import Severity

__all__ = [
    "DEFAULT_FIELD_FACTORS",
    "DEFAULT_THRESHOLD",
    "Alias",
    "AliasKey",
    "Example",
    "ExampleFailure",
    "FieldFactors",
    "Group",
    "LoadReport",
    "Proximity",
    "Rule",
    "RuleSet",
    "SeverityBands",
    "Step",
    "Term",
]

DEFAULT_THRESHOLD = 1.0
DEFAULT_GROUP_WEIGHT = 1.0
DEFAULT_FIELD_FACTORS: Mapping[str, float] = MappingProxyType({"title": 2.0, "summary": 1.0, "content": 0.5})
EXCLUDE_GROUP = "exclude"  # the group name reported for hits of `exclude.terms`

# --- the model -------------------------------------------------------------------------------------


class Step(NamedTuple):
    """A later part of a pattern alias: after up to ``gap`` other words, the words ``folded``."""

    gap: int  # 0: right after the previous words
    folded: str
    cased: str
    prefix: bool  # its last word ends in "*"


# Alias.key: the folded text ("*" appended for a prefix), or for a pattern alias its runs and gaps.
AliasKey = str | tuple[str, bool, tuple[tuple[int, str, bool], ...]]


@dataclass(frozen=True, slots=True)
class Alias:
    """One alternative of a term: ``Karabakh`` in ``"Karabakh|Artsakh"``.

    A *pattern* alias (an inner ``*`` or a ``~N`` gap: ``"мирн* договор*"``, ``"halt ~2 fighting"``) is
    its first words (``folded``, ``prefix``: what the automaton finds) followed by ``steps``.
    """

    text: str  # as written, without a trailing "*" (a pattern alias: exactly as written)
    folded: str  # fold_term(text): what is searched for in folded item text
    cased: str  # fold_term(text, keep_case=True): compared for case-sensitive terms
    prefix: bool = False  # written with a trailing "*": matches words that start with it
    steps: tuple[Step, ...] = ()

    @property
    def single_word(self) -> bool:
        return bool(self.folded) and " " not in self.folded and not self.steps

    @property
    def key(self) -> AliasKey:
        """What makes two aliases the same after folding (letter case aside)."""
        if not self.steps:  # most aliases: the folded text itself (a "*" never ends it), nothing to build
            return self.folded + "*" if self.prefix else self.folded
        return self.folded, self.prefix, tuple((s.gap, s.folded, s.prefix) for s in self.steps)


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
    """A named group of terms with its weight: a rule scores the distinct terms of each group."""

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
    """Groups whose hits must lie within ``words`` words of each other."""

    groups: tuple[str, ...]
    words: int


@dataclass(frozen=True, slots=True)
class FieldFactors:
    """How much a hit counts in each field of an item."""

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
    """One watch rule: groups of terms, threshold, severity, routing and feed filters."""

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
    """A loaded RuleSet with the errors and warnings of its files, and the versions in use."""

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
    """A rule's example that did not come out as the rule says it should."""

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
