"""Validation helpers for rule files: typed getters that collect ``RuleError``s with file:line:column,
a locator from TOML key paths to source positions, and a common-word guard for fuzzy thresholds.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Collection, Mapping
from typing import Any

from daemon.errors import RuleError
from daemon.rules.backtrack import backtrack_risk
from daemon.util.text import fold_pattern
from daemon.util.tomlpos import KeyPath, Locator, close_match, syntax_position

# Words a fuzzy threshold must not let through for an ordinary place or name (checked at load time).
_COMMON_WORDS_TEXT = """
about above after again against along already also although always among another around because
before being below between both bring build business called came cannot capital case center change
children city close come common could country court during early east economic either else enough
even every face fact family father few field final find first following force foreign found from
further general give going government great group hand happen have having head health help here high
himself history home house however human important include increase information interest into issue
itself just keep kind know land large last later least leave less life light like line little local
long made major make many market matter may mean might military million minister money month more
morning most mother much must nation national need never news next night north nothing number office
often once only open order other over own part party past people period person place plan point
police policy political power president press problem program public question quite rather real
really reason report result right river road round said same school second security seem service
several shall should show side since small social some south special start state still story strong
study such system take talk team than that their them then there these they thing think third this
those though three through time today together told toward town trade under until upon used very
want water week well were west what when where which while white whole will with within without
woman women word work world would year young martini talisman marathon cinema mountain station
stadium recipe weather article capital summit border attack forces troops region
"""
_COMMON_WORDS = frozenset(_COMMON_WORDS_TEXT.split())


@functools.lru_cache(maxsize=4096)  # a list's terms are checked again in every fuzzy group that uses it
def common_word_collisions(folded: str, threshold: float) -> tuple[str, ...]:
    """Common English words a fuzzy term would match at ``threshold`` (besides itself)."""
    from rapidfuzz.distance import Indel  # only rules with fuzzy terms need it

    window = max(2, round(len(folded) * 0.25))
    return tuple(
        sorted(
            w
            for w in _COMMON_WORDS
            if w != folded
            and abs(len(w) - len(folded)) <= window
            and Indel.normalized_similarity(folded, w) * 100 >= threshold
        )
    )


class Checker:
    """Collects errors and warnings for one file while its parsed TOML is validated."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.errors: list[RuleError] = []
        self.warnings: list[str] = []
        self.needles: dict[KeyPath, str] = {}  # array element path -> text that identifies it in the source
        self._locator: Locator | None = None

    @property
    def locator(self) -> Locator:
        if self._locator is None:
            self._locator = Locator(self.text)
        return self._locator

    def forget_positions(self) -> None:
        """Let go of the line index of the file (it is built again if a position is asked for later)."""
        self._locator = None

    def line_of(self, where: KeyPath, needle: str | None = None) -> int:
        if needle is None:
            needle = self.needles.get(where)
        return self.locator.find(where, needle)[0]

    def syntax_error(self, exc: tomllib.TOMLDecodeError) -> None:
        message, line, col = syntax_position(exc, self.text)
        self.errors.append(RuleError(f"invalid TOML: {message}", path=self.path, line=line, column=col))

    def error(self, where: KeyPath, message: str, *, needle: str | None = None) -> None:
        if needle is None:  # an element of an array: point at its text if it was registered
            needle = next(
                (self.needles[where[:i]] for i in range(len(where), 0, -1) if where[:i] in self.needles), None
            )
        line, col = self.locator.find(where, needle)
        rule_id = str(where[1]) if len(where) > 1 and where[0] == "rule" else None
        self.errors.append(RuleError(message, path=self.path, line=line, column=col, rule_id=rule_id))

    def warn(self, message: str, line: int | None = None, *, path: str | None = None) -> None:
        """Record a likely mistake as ``path:line: message`` (``path``: another file, e.g. a list's)."""
        path = path or self.path
        self.warnings.append(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    def unknown_key(self, where: KeyPath, key: str, allowed: Collection[str]) -> None:
        self.error((*where, key), f"unknown key {key!r}{close_match(key, allowed)}")

    def known_keys(self, where: KeyPath, body: Mapping[str, Any], allowed: Collection[str]) -> None:
        for key in body:
            if key not in allowed:
                self.unknown_key(where, key, allowed)

    def _type_error(self, where: KeyPath, key: str, expected: str, value: Any) -> None:
        self.error((*where, key), f"{key}: expected {expected}, got {type(value).__name__} {value!r}")

    def table(self, container: Mapping[str, Any], where: KeyPath, key: str) -> dict[str, Any]:
        value = container.get(key, {})
        if not isinstance(value, dict):
            self.error(where, f"{key}: expected a table, got {type(value).__name__}")
            return {}
        return value

    def number(self, container: Mapping[str, Any], where: KeyPath, key: str, default: float | None) -> Any:
        value = container.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self._type_error(where, key, "a number", value)
            return default if default is not None else 0.0
        return float(value)

    def boolean(self, container: Mapping[str, Any], where: KeyPath, key: str, default: bool) -> bool:
        value = container.get(key, default)
        if not isinstance(value, bool):
            self._type_error(where, key, "true or false", value)
            return default
        return value

    def string(self, container: Mapping[str, Any], where: KeyPath, key: str, default: str) -> str:
        value = container.get(key, default)
        if not isinstance(value, str):
            self._type_error(where, key, "a string", value)
            return default
        return value

    def strings(self, container: Mapping[str, Any], where: KeyPath, key: str) -> tuple[str, ...]:
        value = container.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._type_error(where, key, "an array of strings", value)
            return ()
        return tuple(value)

    def names(
        self, container: Mapping[str, Any], where: KeyPath, key: str, valid: Collection[str], kind: str
    ) -> tuple[str, ...]:
        out: list[str] = []
        for name in self.strings(container, where, key):
            if name in valid:
                out.append(name)
            else:
                known = ", ".join(valid) or "none"
                self.error(
                    (*where, key),
                    f"{key}: unknown {kind} {name!r}{close_match(name, valid)} (this rule has: {known})",
                    needle=name,
                )
        return tuple(out)

    def fuzzy(self, container: Mapping[str, Any], where: KeyPath) -> float | None:
        if "fuzzy" not in container:
            return None
        value = self.number(container, where, "fuzzy", None)
        if value is not None and not 0 <= value <= 100:
            self.error((*where, "fuzzy"), f"fuzzy must be between 0 and 100 (0 turns it off), got {value:g}")
            return None
        return value  # type: ignore[no-any-return]

    def check_regex(self, where: KeyPath, pattern: str, case: bool) -> None:
        try:
            rx = re.compile(fold_pattern(pattern, keep_case=case), 0 if case else re.IGNORECASE)
        except re.error as exc:
            at = f" at position {exc.pos}" if exc.pos is not None else ""
            self.error(where, f"invalid regex {pattern!r}: {exc.msg}{at}", needle=None)
            return
        import regex  # here: most packs have no regex terms, and loading rules should not pay for the engine

        try:
            regex.compile(rx.pattern, rx.flags)  # the engine the matcher runs it with
        except regex.error as exc:
            self.error(where, f"invalid regex {pattern!r}: {exc}", needle=None)
            return
        if rx.search("") is not None:
            line = self.line_of(where)
            self.warn(f"regex {pattern!r} matches empty text; it would hit every item", line)
        if (risk := backtrack_risk(rx.pattern, rx.flags)) is not None:
            # A warning only: the matcher's time budget cuts such a regex off for one rule and one item.
            self.warn(f"regex {pattern!r}: {risk}; it runs with a time budget per item", self.line_of(where))
