"""Labelled items for ``score`` and ``backtest``: the JSONL format (docs/testing-rules.md) checked key by
key, each item's language, and precision and recall per rule and for "any rule". Pure: callers read
the files and pass their text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from daemon.errors import ConfigError
from daemon.models import Hit, Item
from daemon.rules.judge import Evaluation
from daemon.util.tomlpos import close_match

__all__ = [
    "ANY_RULE",
    "Case",
    "Parsed",
    "RuleStats",
    "apply_labels",
    "highlight",
    "item_from",
    "language_from_why",
    "measure",
    "measure_any",
    "parse_jsonl",
]

ANY_RULE = "(any rule)"  # the row of item-level labels: should any rule fire?
ITEM_KEYS = ("id", "title", "summary", "content", "link", "feed", "tags")
LABEL_KEYS = ("labels", "label", "lang")
NOTE_KEYS = ("why", "note", "source", "borderline", "title_is_lede")  # kept for people, never matched
KNOWN_KEYS = ITEM_KEYS + LABEL_KEYS + NOTE_KEYS

# English names of the languages news is written in: a `why` that starts with one names the language.
_LANGUAGE_NAMES = """
afrikaans albanian amharic arabic armenian azerbaijani basque belarusian bengali bosnian bulgarian
burmese catalan chinese croatian czech danish dari dutch english estonian farsi filipino finnish
french georgian german greek gujarati hausa hebrew hindi hungarian icelandic indonesian irish italian
japanese kazakh khmer korean kurdish kyrgyz lao latvian lithuanian macedonian malay maltese marathi
mongolian nepali norwegian pashto persian polish portuguese punjabi romanian russian serbian sinhala
slovak slovenian somali spanish swahili swedish tagalog tajik tamil telugu thai tigrinya turkish
turkmen ukrainian urdu uyghur uzbek vietnamese welsh yoruba zulu
"""
_LANGUAGES = frozenset(_LANGUAGE_NAMES.split())
_PARENS = re.compile(r"\([^)]*\)")


@dataclass(frozen=True, slots=True)
class Case:
    """An item to score, with what it should do: ``labels`` per rule, ``label`` for "any rule"."""

    id: str
    item: Item
    labels: Mapping[str, bool] = field(default_factory=dict)
    label: bool | None = None
    lang: str | None = None  # as given in `lang`, or the language `why` starts with; None: unknown
    why: str = ""
    tags: frozenset[str] = frozenset()  # feed tags, for rules with tags / except_tags

    @property
    def labelled(self) -> bool:
        return self.label is not None or bool(self.labels)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A backtest corpus as read: its labelled cases and warnings about its lines."""

    cases: list[Case]
    warnings: list[str]


def language_from_why(why: str) -> str | None:
    """``"Arabic; Nov 2020 ceasefire"`` → ``"Arabic"``: the text before the first ``;``, parentheses
    removed, when it is a language name; ``"Armenian cuisine"`` names no language.
    """
    head = _PARENS.sub("", why.split(";", 1)[0]).strip()
    return head if head.lower() in _LANGUAGES else None


def parse_jsonl(text: str, source: str) -> Parsed:
    """Items (or label rows) from JSON lines; errors name the line, unknown keys become warnings."""
    cases: list[Case] = []
    unknown: dict[str, list[int]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"line {lineno}: not JSON: {exc.msg}", path=source) from None
        if not isinstance(data, dict):
            raise ConfigError(f"line {lineno}: expected a JSON object", path=source)
        for key in data:
            if key not in KNOWN_KEYS:
                unknown.setdefault(key, []).append(lineno)
        try:
            cases.append(_case(data, lineno))
        except ValueError as exc:
            raise ConfigError(f"line {lineno}: {exc}", path=source) from None
    warnings = [
        f"{source}: unknown key {key!r}{close_match(key, KNOWN_KEYS)} on {len(lines)} item(s) "
        f"(first at line {lines[0]}); ignored"
        for key, lines in unknown.items()
    ]
    return Parsed(cases, warnings)


def _case(data: Mapping[str, Any], lineno: int) -> Case:
    for key in ("title", "summary", "content", "link", "feed", "lang", "why", "note", "source"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f'"{key}" must be a string, got {type(data[key]).__name__}')
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
        raise ValueError(f'"id" must be a string or a number, got {type(ident).__name__}')
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, bool) for v in labels.values()):
        raise ValueError('"labels" must map rule ids to true/false')
    label = data.get("label")
    if label is not None:
        if label not in (0, 1) or isinstance(label, float):
            raise ValueError(f'"label" must be 1/0 or true/false (should any rule fire?), got {label!r}')
        label = bool(label)
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError('"tags" must be an array of strings')
    case_id = str(ident) if ident is not None and ident != "" else f"line-{lineno}"
    why = data.get("why") or ""
    lang = data.get("lang") or language_from_why(why)
    return Case(case_id, item_from(data, case_id), labels, label, lang, why, frozenset(tags))


def item_from(data: Mapping[str, Any], ident: str) -> Item:
    return Item(
        feed=str(data.get("feed") or "cli"),
        key=ident,
        title=str(data.get("title") or ""),
        link=data.get("link") if isinstance(data.get("link"), str) else None,
        summary=str(data.get("summary") or ""),
        content=str(data.get("content") or ""),
    )


def apply_labels(cases: Sequence[Case], rows: Sequence[Case]) -> tuple[list[Case], list[str]]:
    """Cases with labels (and languages) from a labels file's rows, matched by id: a row's per-rule
    labels add to and override the item's, its ``label`` and ``lang`` replace the item's.
    """
    by_id = {r.id: r for r in rows}
    out = []
    for case in cases:
        row = by_id.pop(case.id, None)
        if row is None:
            out.append(case)
            continue
        out.append(
            replace(
                case,
                labels={**case.labels, **row.labels},
                label=row.label if row.label is not None else case.label,
                lang=row.lang or case.lang,
                why=row.why or case.why,
            )
        )
    warnings = []
    if by_id:
        first = ", ".join(list(by_id)[:3])
        warnings.append(f"{len(by_id)} label row(s) name ids that are not among the items (first: {first})")
    return out, warnings


def highlight(text: str, hits: Iterable[Hit], field: str, *, start: str = "[", end: str = "]") -> str:
    """``text`` with every hit of ``field`` wrapped in markers (non-overlapping, left to right)."""
    spans = sorted({(h.start, h.end) for h in hits if h.field == field})
    out, pos = [], 0
    for s, e in spans:
        if s < pos:
            continue
        out += [text[pos:s], start, text[s:e], end]
        pos = e
    out.append(text[pos:])
    return "".join(out)


class Confusion:
    """Precision and recall from the counts of a confusion matrix (``tp``, ``fp``, ``fn``)."""

    __slots__ = ()
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass(slots=True)
class RuleStats(Confusion):
    """One rule's counts over a backtest corpus."""

    fired: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def add(self, case_id: str, fired: bool, want: bool | None) -> None:
        self.fired += fired
        if want is None:
            return
        if fired and want:
            self.tp += 1
        elif fired:
            self.fp += 1
            self.false_positives.append(case_id)
        elif want:
            self.fn += 1
            self.false_negatives.append(case_id)
        else:
            self.tn += 1


def measure(rule_ids: Sequence[str], results: Iterable[tuple[Case, Sequence[Evaluation]]]) -> dict[str, RuleStats]:
    """Per-rule counts and, where a case carries a label for the rule, the confusion matrix."""
    stats = {rid: RuleStats() for rid in rule_ids}
    for case, evaluations in results:
        fired = {e.rule_id for e in evaluations if e.fired}
        for rid, st in stats.items():
            st.add(case.id, rid in fired, case.labels.get(rid))
    return stats


def measure_any(results: Iterable[tuple[Case, Sequence[Evaluation]]]) -> RuleStats:
    """Item-level labels: did any rule fire when one should, and none when none should?"""
    st = RuleStats()
    for case, evaluations in results:
        st.add(case.id, any(e.fired for e in evaluations), case.label)
    return st
