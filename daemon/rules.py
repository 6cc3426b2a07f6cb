"""Load and validate ``rules/*.toml`` (and ``rules/lists/*.toml``) into an immutable RuleSet.

Errors carry file:line:column; a file that fails keeps its last good version when ``previous`` is given.
The file format is documented in docs/rules.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.errors import RuleError
from daemon.models import FIELDS, Severity
from daemon.rulecheck import Checker, close_match, common_word_collisions
from daemon.text import fold_term

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
    "parse_duration",
]

DEFAULT_THRESHOLD = 1.0
DEFAULT_GROUP_WEIGHT = 1.0
DEFAULT_FIELD_FACTORS: Mapping[str, float] = MappingProxyType({"title": 2.0, "summary": 1.0, "content": 0.5})
EXCLUDE_GROUP = "exclude"  # the group name reported for hits of `exclude.terms`
_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

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


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    weight: float
    terms: tuple[Term, ...]
    fuzzy: float | None = None


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
    require: tuple[str, ...] = ()
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
            what = (
                "expected a match but the rule did not fire"
                if self.expected
                else "expected no match but it fired"
            )
        else:
            what = f"expected severity {self.expected_severity}, got {self.severity}"
        why = "; ".join(self.reasons)
        return f"{where}rule {self.rule_id!r} example {self.index + 1} ({self.title!r}): {what} ({why})"


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` → timedelta; ValueError otherwise."""
    s = text.strip().lower().replace(" ", "")
    parts = _DURATION_RE.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"expected a duration like '90s', '5m', '1h30m' or '2d', got {text!r}")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


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
    version = hashlib.sha256("".join(f"{p}\0{h}\0" for p, h in sorted(files.items())).encode()).hexdigest()[
        :16
    ]
    ruleset = RuleSet(tuple(rules), MappingProxyType(lists), version)
    sources = {p: t for p, t in in_use.items() if t is not None}
    return LoadReport(ruleset, tuple(errors), tuple(dict.fromkeys(warnings)), files, sources)


def _validate_all(
    rules_dir: Path, order: list[str], in_use: Mapping[str, str | None], channels: Collection[str] | None
) -> dict[str, _FileResult]:
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
            terms = _parse_list(checker, name, body)
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
            rule = _parse_rule(checker, rule_id, body, all_lists, channels)
            if rule is not None:
                rules.append(rule)
        checker.errors.sort(key=lambda e: (e.line or 0, e.column or 0))
        results[p] = _FileResult(file_lists[p], rules, checker.errors, checker.warnings, early=p in early)
    return results


# --- parsing one file ------------------------------------------------------------------------------

_RULE_KEYS = (
    "description", "enabled", "threshold", "severity", "require", "channels", "throttle", "feeds",
    "except_feeds", "tags", "except_tags", "proximity", "fields", "groups", "exclude", "examples",
)  # fmt: skip
_GROUP_KEYS = ("weight", "fuzzy", "terms")
_TERM_KEYS = ("term", "regex", "weight", "case", "fuzzy")
_EXAMPLE_KEYS = ("title", "summary", "content", "feed", "tags", "expect", "severity")


def _parse_list(c: Checker, name: str, body: Any) -> tuple[Term, ...]:
    where = ("list", name)
    if not isinstance(body, dict):
        c.error(where, f"list {name!r} must be a table with `terms`")
        return ()
    c.known_keys(where, body, ("terms",))
    raw = body.get("terms")
    if not isinstance(raw, list) or not raw:
        c.error((*where, "terms"), "expected a non-empty array of terms")
        return ()
    terms: list[Term] = []
    for i, value in enumerate(raw):
        if isinstance(value, str) and value.startswith("@"):
            c.error((*where, "terms", i), f"lists cannot refer to other lists ({value!r})", needle=value)
            continue
        term = _parse_term(c, (*where, "terms", i), value)
        if term is not None:
            terms.append(dataclasses.replace(term, list_name=name))
    return tuple(terms)


def _parse_rule(
    c: Checker,
    rule_id: str,
    body: Any,
    lists: Mapping[str, tuple[Term, ...]],
    channels: Collection[str] | None,
) -> Rule | None:
    w: tuple[str | int, ...] = ("rule", rule_id)
    start_errors = len(c.errors)
    if not _RULE_ID_RE.match(rule_id):
        c.error(w, f"rule id {rule_id!r} must be letters, digits, '-', '_' or '.' (at most 80)")
    if not isinstance(body, dict):
        c.error(w, "a rule must be a table")
        return None
    c.known_keys(w, body, _RULE_KEYS)
    groups: list[Group] = []
    for name, gbody in c.table(body, (*w, "groups"), "groups").items():
        group = _parse_group(c, (*w, "groups", name), name, gbody, lists)
        if group is not None:
            groups.append(group)
    if not groups and "groups" not in body:
        c.error(w, f"rule has no groups: add a [rule.{rule_id}.groups.NAME] table with terms")
    names = [g.name for g in groups]
    exclude = c.table(body, (*w, "exclude"), "exclude")
    c.known_keys((*w, "exclude"), exclude, ("terms", "groups"))
    exclude_terms = _parse_terms(c, (*w, "exclude"), exclude.get("terms", []), lists, None, allow_empty=True)
    exclude_groups = c.names(exclude, (*w, "exclude"), "groups", names, "group")
    require = c.names(body, w, "require", names, "group")
    for g in require:
        if g in exclude_groups:
            c.error((*w, "require"), f"group {g!r} cannot be both required and an exclude group")
    threshold = c.number(body, w, "threshold", DEFAULT_THRESHOLD)
    if threshold <= 0:
        c.error((*w, "threshold"), f"threshold must be greater than 0, got {threshold}")
    rule_channels = _parse_channels(c, w, body, channels)
    throttle = _parse_throttle(c, w, body)
    severity = _parse_severity(c, w, body.get("severity"), threshold)
    proximity = _parse_proximity(c, w, body.get("proximity"), names)
    fields = _parse_fields(c, w, body.get("fields"))
    examples = _parse_examples(c, w, body.get("examples", []))
    description = c.string(body, w, "description", "")
    enabled = c.boolean(body, w, "enabled", True)
    feeds = [frozenset(c.strings(body, w, k)) for k in ("feeds", "except_feeds", "tags", "except_tags")]
    _warn_duplicates(c, rule_id, groups, exclude_terms)
    if len(c.errors) > start_errors:
        return None
    return Rule(
        id=rule_id,
        groups=tuple(groups),
        description=description,
        enabled=enabled,
        threshold=threshold,
        severity=severity,
        require=require,
        channels=rule_channels,
        throttle=throttle,
        feeds=feeds[0],
        except_feeds=feeds[1],
        tags=feeds[2],
        except_tags=feeds[3],
        proximity=proximity,
        fields=fields,
        exclude_terms=exclude_terms,
        exclude_groups=exclude_groups,
        examples=examples,
        path=c.path,
        line=c.line_of(w),
    )


def _parse_channels(
    c: Checker, w: tuple[str | int, ...], body: Mapping[str, Any], channels: Collection[str] | None
) -> tuple[str, ...]:
    names = c.strings(body, w, "channels")
    if channels is not None:
        for ch in names:
            if ch not in channels:
                hint = close_match(ch, channels)
                known = ", ".join(sorted(channels)) or "none"
                c.error((*w, "channels"), f"unknown channel {ch!r}{hint} (configured: {known})", needle=ch)
    return names


def _parse_throttle(c: Checker, w: tuple[str | int, ...], body: Mapping[str, Any]) -> timedelta | None:
    if "throttle" not in body:
        return None
    raw = body["throttle"]
    if not isinstance(raw, str):
        c.error((*w, "throttle"), f"expected a duration string like '30m', got {type(raw).__name__}")
        return None
    try:
        return parse_duration(raw)
    except ValueError as exc:
        c.error((*w, "throttle"), str(exc))
        return None


def _parse_group(
    c: Checker, w: tuple[str | int, ...], name: str, body: Any, lists: Mapping[str, tuple[Term, ...]]
) -> Group | None:
    if not isinstance(body, dict):
        c.error(w, f"group {name!r} must be a table with `terms`")
        return None
    c.known_keys(w, body, _GROUP_KEYS)
    weight = c.number(body, w, "weight", DEFAULT_GROUP_WEIGHT)
    fuzzy = c.fuzzy(body, w)
    if "terms" not in body:
        c.error(w, f"group {name!r} has no `terms`")
        return None
    terms = _parse_terms(c, w, body["terms"], lists, fuzzy, allow_empty=False)
    return Group(name, weight, terms, fuzzy)


def _parse_terms(
    c: Checker,
    w: tuple[str | int, ...],
    raw: Any,
    lists: Mapping[str, tuple[Term, ...]],
    group_fuzzy: float | None,
    *,
    allow_empty: bool,
) -> tuple[Term, ...]:
    if not isinstance(raw, list):
        c.error((*w, "terms"), f"expected an array of terms, got {type(raw).__name__}")
        return ()
    if not raw and not allow_empty:
        c.error((*w, "terms"), "a group needs at least one term")
    terms: list[Term] = []
    for i, value in enumerate(raw):
        tw = (*w, "terms", i)
        if isinstance(value, str) and value.startswith("@"):
            name = value[1:].strip()
            if name not in lists:
                c.error(tw, f"unknown list {value!r}{close_match(name, lists)}", needle=value)
                continue
            terms += [_effective_fuzzy(c, t, group_fuzzy) for t in lists[name]]
            continue
        term = _parse_term(c, tw, value)
        if term is not None:
            terms.append(_effective_fuzzy(c, term, group_fuzzy))
    return tuple(terms)


def _effective_fuzzy(c: Checker, term: Term, group_fuzzy: float | None) -> Term:
    fuzzy = term.fuzzy if term.fuzzy is not None else group_fuzzy
    if not fuzzy or term.regex is not None or term.case:
        return dataclasses.replace(term, fuzzy=None)
    origin = f" (list {term.list_name!r})" if term.list_name else ""
    line = None if term.list_name else term.line
    for alias in term.aliases:
        if alias.single_word and not alias.prefix:
            if len(alias.folded) < 5:
                c.warn(
                    f"fuzzy matching of the short word {alias.text!r}{origin} is unreliable; prefer aliases",
                    line,
                )
            clashes = common_word_collisions(alias.folded, fuzzy)
            if clashes:
                words = ", ".join(clashes)
                c.warn(f"fuzzy {fuzzy:g} on {alias.text!r}{origin} also matches common words: {words}", line)
    return dataclasses.replace(term, fuzzy=fuzzy)


def _parse_term(c: Checker, w: tuple[str | int, ...], value: Any) -> Term | None:
    needle = value if isinstance(value, str) else None
    if isinstance(value, dict):
        needle = next((v for k in ("term", "regex") if isinstance(v := value.get(k), str)), None)
    if needle:
        c.needles[w] = needle
    line = c.line_of(w)
    if isinstance(value, str):
        return _alias_term(c, w, value, line=line)
    if not isinstance(value, dict):
        c.error(w, f"a term must be a string or an inline table, got {type(value).__name__}")
        return None
    c.known_keys(w, value, _TERM_KEYS)
    weight = c.number(value, w, "weight", None) if "weight" in value else None
    case = c.boolean(value, w, "case", False)
    fuzzy = c.fuzzy(value, w)
    if ("term" in value) == ("regex" in value):
        c.error(w, "a term table needs exactly one of `term` or `regex`")
        return None
    if "regex" in value:
        pattern = value["regex"]
        if not isinstance(pattern, str):
            c.error((*w, "regex"), f"expected a string, got {type(pattern).__name__}")
            return None
        c.check_regex((*w, "regex"), pattern, case)
        if fuzzy:
            c.warn("fuzzy has no effect on regex terms", line)
        return Term(pattern, (), pattern, weight, case, None, line=line)
    text = value["term"]
    if not isinstance(text, str):
        c.error((*w, "term"), f"expected a string, got {type(text).__name__}")
        return None
    term = _alias_term(c, w, text, line=line)
    if term is None:
        return None
    if case and fuzzy:
        c.warn(f"fuzzy is ignored for case-sensitive term {text!r}", line)
    return dataclasses.replace(term, weight=weight, case=case, fuzzy=fuzzy)


def _alias_term(c: Checker, w: tuple[str | int, ...], text: str, *, line: int | None) -> Term | None:
    aliases: list[Alias] = []
    for part in text.split("|"):
        raw = part.strip()
        prefix = raw.endswith("*")
        core = raw[:-1].rstrip() if prefix else raw
        if not core:
            c.error(w, f"empty alias in term {text!r}", needle=text)
            return None
        if "*" in core:
            c.error(w, f"'*' is allowed only at the end of an alias (in {text!r}); use a regex", needle=text)
            return None
        folded = fold_term(core)
        if not folded or not any(ch.isalnum() for ch in folded):
            c.warn(f"term {text!r}: alias {core!r} can never match after folding", line)
            continue
        if prefix and len(folded) < 3:
            c.warn(f"wildcard {raw!r} is very short and will match many words", line)
        aliases.append(Alias(core, folded, fold_term(core, keep_case=True), prefix))
    if not aliases:
        return None
    return Term(text, tuple(aliases), line=line)


def _parse_severity(c: Checker, w: tuple[str | int, ...], raw: Any, threshold: float) -> SeverityBands:
    if raw is None:
        return SeverityBands()
    if isinstance(raw, str):
        try:
            return SeverityBands(fixed=Severity.parse(raw))
        except ValueError as exc:
            c.error((*w, "severity"), str(exc))
            return SeverityBands()
    if not isinstance(raw, dict):
        c.error(
            (*w, "severity"), "expected a table like { warning = 3.0, critical = 6.0 } or a severity name"
        )
        return SeverityBands()
    sw = (*w, "severity")
    c.known_keys(sw, raw, ("warning", "critical"))
    warning = c.number(raw, sw, "warning", None) if "warning" in raw else None
    critical = c.number(raw, sw, "critical", None) if "critical" in raw else None
    if warning is not None and critical is not None and warning >= critical:
        c.error(sw, f"severity bands must ascend: warning {warning:g} is not below critical {critical:g}")
    return SeverityBands(warning, critical)


def _parse_proximity(c: Checker, w: tuple[str | int, ...], raw: Any, names: list[str]) -> Proximity | None:
    if raw is None:
        return None
    pw = (*w, "proximity")
    if not isinstance(raw, dict):
        c.error(pw, "expected a table like { groups = ['a', 'b'], words = 12 }")
        return None
    c.known_keys(pw, raw, ("groups", "words"))
    groups = c.names(raw, pw, "groups", names, "group")
    words = raw.get("words")
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        c.error((*pw, "words"), f"expected a whole number of words ≥ 1, got {words!r}")
        return None
    if len(groups) < 2:
        c.error((*pw, "groups"), "proximity needs at least two groups")
        return None
    return Proximity(groups, words)


def _parse_fields(c: Checker, w: tuple[str | int, ...], raw: Any) -> FieldFactors:
    if raw is None:
        return FieldFactors()
    fw = (*w, "fields")
    if not isinstance(raw, dict):
        c.error(fw, "expected a table like { title = 2.0, summary = 1.0, content = 0.5 }")
        return FieldFactors()
    c.known_keys(fw, raw, FIELDS)
    values = {k: c.number(raw, fw, k, DEFAULT_FIELD_FACTORS[k]) for k in FIELDS}
    for k, v in values.items():
        if v < 0:
            c.error((*fw, k), f"field factor must be ≥ 0, got {v:g}")
    return FieldFactors(**values)


def _parse_examples(c: Checker, w: tuple[str | int, ...], raw: Any) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        c.error((*w, "examples"), "expected an array of tables ([[rule.ID.examples]])")
        return ()
    out: list[Example] = []
    for i, ex in enumerate(raw):
        ew = (*w, "examples", i)
        if not isinstance(ex, dict):
            c.error(ew, "an example must be a table")
            continue
        c.known_keys(ew, ex, _EXAMPLE_KEYS)
        sev_raw = c.string(ex, ew, "severity", "")
        severity = None
        if sev_raw:
            try:
                severity = Severity.parse(sev_raw)
            except ValueError as exc:
                c.error((*ew, "severity"), str(exc))
        feed = c.string(ex, ew, "feed", "") or None
        out.append(
            Example(
                title=c.string(ex, ew, "title", ""),
                summary=c.string(ex, ew, "summary", ""),
                content=c.string(ex, ew, "content", ""),
                feed=feed,
                tags=frozenset(c.strings(ex, ew, "tags")),
                expect=c.boolean(ex, ew, "expect", True),
                severity=severity,
                line=c.line_of(ew),
            )
        )
    return tuple(out)


def _warn_duplicates(c: Checker, rule_id: str, groups: list[Group], exclude: tuple[Term, ...]) -> None:
    seen: dict[tuple[str, bool], str] = {}
    for group in groups:
        for term in group.terms:
            for alias in term.aliases:
                key = (alias.folded, alias.prefix)
                if key in seen:
                    where = f"group {seen[key]!r}" if seen[key] != group.name else "the same group"
                    c.warn(
                        f"rule {rule_id!r}: term {alias.text!r} in group {group.name!r} duplicates one in "
                        + where,
                        term.line,
                    )
                else:
                    seen[key] = group.name
    for term in exclude:
        for alias in term.aliases:
            if (alias.folded, alias.prefix) in seen:
                c.warn(f"rule {rule_id!r}: {alias.text!r} is both a term and an exclude term", term.line)


# --- examples --------------------------------------------------------------------------------------


def check_examples(ruleset: RuleSet) -> list[ExampleFailure]:
    """Run every rule's examples through the matcher (ignoring ``enabled``; feed filters apply only
    when the example names a ``feed``) and return the ones that did not come out as expected.
    """
    from daemon.matcher import Matcher  # the matcher depends on this module's types
    from daemon.models import Item

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
