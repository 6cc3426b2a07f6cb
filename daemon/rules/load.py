"""Load and validate ``rules/*.toml`` (and ``rules/lists/*.toml``) into an immutable RuleSet.

Errors carry file:line:column; a file that fails keeps its last good version when ``previous`` is given.
Examples written in the rules are checked against the matcher here, at load.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.errors import RuleError
from daemon.models import Item
from daemon.rules.check import Checker
from daemon.rules.parse import parse_rule
from daemon.rules.pattern import forget_shared
from daemon.rules.ruleset import (
    ExampleFailure,
    LoadReport,
    Rule,
    RuleSet,
    Term,
)
from daemon.rules.terms import parse_list
from daemon.util.startup import no_gc


@dataclass
class _FileResult:
    """What validating one rule or list file gave."""

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
    try:
        with no_gc():  # many objects, no garbage: see daemon.util.startup
            return _load_rules(Path(rules_dir), channels, previous)
    finally:
        forget_shared()


def _load_rules(rules_dir: Path, channels: Collection[str] | None, previous: LoadReport | None) -> LoadReport:
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
    results: dict[str, _FileResult] | None = None
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
        results = None  # files fell back: the set in use is validated again
    if results is None:
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
    sources = _Sources({p: t for p, t in in_use.items() if t is not None})
    return LoadReport(ruleset, tuple(errors), tuple(dict.fromkeys(warnings)), files, sources)


class _Sources(Mapping[str, str]):
    """The text of each rule file in use, kept compressed: it is read again only when a file fails
    on reload and falls back to this version, and the daemon holds it for as long as it runs."""

    __slots__ = ("_packed",)

    def __init__(self, texts: Mapping[str, str]) -> None:
        import zlib  # here: loaded by the daemon anyway, and `check` needs it only once the rules are read

        self._packed = {p: zlib.compress(t.encode("utf-8"), 1) for p, t in texts.items()}

    def __getitem__(self, path: str) -> str:
        import zlib

        return zlib.decompress(self._packed[path]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


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
            terms = parse_list(checker, name, body)
            file_lists[p][name] = all_lists[name] = terms
        checker.forget_positions()  # one file's line index at a time
    early = {p for p, (checker, _) in parsed.items() if checker.errors}
    seen_ids: set[str] = set()
    for p in list(parsed):
        checker, doc = parsed.pop(p)  # a file done with is let go (its parsed TOML, its line index)
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
    from daemon.rules.matcher import Matcher  # here: loading rules needs no matcher (the daemon compiles it lazily)

    with no_gc():
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
