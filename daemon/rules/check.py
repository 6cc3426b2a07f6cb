"""Validation helpers for rule files: typed getters that collect ``RuleError``s with file:line:column,
a locator from TOML key paths to source positions, and a common-word guard for fuzzy thresholds.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import regex
from rapidfuzz.distance import Indel

from daemon.errors import RuleError
from daemon.rules.backtrack import backtrack_risk
from daemon.util.text import fold_pattern

KeyPath = tuple[str | int, ...]

# A bare, "basic" or 'literal' key part; dotted keys are parts joined by dots.
_KEY_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_RE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*")
_PART_RE = re.compile(_KEY_PART)
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_TOML_POS_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")

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


def close_match(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close option exists, else ``""``."""
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def common_word_collisions(folded: str, threshold: float) -> list[str]:
    """Common English words a fuzzy term would match at ``threshold`` (besides itself)."""
    window = max(2, round(len(folded) * 0.25))
    return sorted(
        w
        for w in _COMMON_WORDS
        if w != folded
        and abs(len(w) - len(folded)) <= window
        and Indel.normalized_similarity(folded, w) * 100 >= threshold
    )


class Locator:
    """Maps TOML key paths (``("rule", "x", "groups", "g", "terms")``) to 1-based (line, column).

    A line scanner, not a parser: it follows table headers, arrays of tables, dotted keys, inline
    tables and multi-line arrays/strings well enough to point at the right line of a valid file.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.pos: dict[KeyPath, tuple[int, int]] = {}
        self.extent: dict[KeyPath, tuple[int, int]] = {}  # key -> first and last line of its value
        self._scan()

    @staticmethod
    def _parts(raw: str) -> tuple[str, ...]:
        return tuple(p.strip("\"'") for p in _PART_RE.findall(raw))

    def _scan(self) -> None:
        table: KeyPath = ()
        aot: dict[KeyPath, int] = {}
        open_key: KeyPath | None = None  # a multi-line value in progress
        depth = 0
        ml_delim: str | None = None
        for no, line in enumerate(self.lines, 1):
            if ml_delim is not None:
                if ml_delim in line:
                    ml_delim = None
                continue
            if depth > 0:
                depth += _bracket_balance(line)
                if depth <= 0 and open_key is not None:
                    self.extent[open_key] = (self.extent[open_key][0], no)
                continue
            stripped = line.lstrip()
            col = len(line) - len(stripped) + 1
            if stripped.startswith("["):
                table = self._header(stripped, no, col, aot) or table
                continue
            m = _KEY_RE.match(line)
            if not m or line[m.end() : m.end() + 1] != "=":
                continue
            key = (*table, *self._parts(m.group(1)))
            self.pos.setdefault(key, (no, m.start(1) + 1))
            value = line[m.end() + 1 :]
            self.extent[key] = (no, no)
            vstripped = value.lstrip()
            if vstripped.startswith("{"):
                for km in re.finditer(rf"(?:\{{|,)\s*({_KEY_PART})\s*=", _blank_strings(value)):
                    start = m.end() + 1 + km.start(1)
                    self.pos.setdefault((*key, *self._parts(km.group(1))), (no, start + 1))
            for delim in ('"""', "'''"):
                if vstripped.startswith(delim) and vstripped.count(delim) == 1:
                    ml_delim = delim
            if vstripped.startswith("["):
                depth = _bracket_balance(value)
                if depth > 0:
                    open_key = key

    def _header(self, stripped: str, no: int, col: int, aot: dict[KeyPath, int]) -> KeyPath | None:
        """Record a ``[table]`` or ``[[array.of.tables]]`` header; return the key path it opens."""
        double = stripped.startswith("[[")
        m = _KEY_RE.match(stripped, 2 if double else 1)
        if not m:
            return None
        path = self._parts(m.group(1))
        self.pos.setdefault(path, (no, col))
        if not double:
            return path
        idx = aot.get(path, 0)
        aot[path] = idx + 1
        table: KeyPath = (*path, idx)
        self.pos[table] = (no, col)
        return table

    def find(self, path: KeyPath, needle: str | None = None) -> tuple[int, int | None]:
        """Position of the longest known prefix of ``path``; with ``needle``, the line inside that
        key's value where the needle is written (for elements of multi-line arrays).
        """
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.pos:
                line, col = self.pos[prefix]
                if needle and prefix in self.extent:
                    first, last = self.extent[prefix]
                    for no in range(first, last + 1):
                        hit = self._needle_col(self.lines[no - 1], needle)
                        if hit is not None:
                            return no, hit
                return line, col
            # Arrays of tables are indexed: ("rule", "x", "examples", 2) also tries the bare header.
        return 1, None

    @staticmethod
    def _needle_col(line: str, needle: str) -> int | None:
        # TOML basic strings double backslashes: fall back to the text before the first one.
        head = needle.split("\\", 1)[0]
        forms = [f'"{needle}"', f"'{needle}'", needle] + ([head] if len(head) >= 4 else [])
        for form in forms:
            at = line.find(form)
            if at >= 0:
                return at + 1
        return None


def _blank_strings(text: str) -> str:
    return _STRING_RE.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)


def _bracket_balance(text: str) -> int:
    code = _blank_strings(text).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


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

    def line_of(self, where: KeyPath, needle: str | None = None) -> int:
        if needle is None:
            needle = self.needles.get(where)
        return self.locator.find(where, needle)[0]

    def syntax_error(self, exc: tomllib.TOMLDecodeError) -> None:
        message = str(exc)
        m = _TOML_POS_RE.search(message)
        line: int | None = None
        col: int | None = None
        if m:
            line, col = int(m.group(1)), int(m.group(2))
            message = message[: m.start()]
        elif "end of document" in message:
            line = max(1, len(self.text.splitlines()))
            message = message.replace("(at end of document)", "at end of file").strip()
        self.errors.append(RuleError(f"invalid TOML: {message}", path=self.path, line=line, column=col))

    def error(self, where: KeyPath, message: str, *, needle: str | None = None) -> None:
        if needle is None:  # an element of an array: point at its text if it was registered
            needle = next(
                (self.needles[where[:i]] for i in range(len(where), 0, -1) if where[:i] in self.needles), None
            )
        line, col = self.locator.find(where, needle)
        rule_id = str(where[1]) if len(where) > 1 and where[0] == "rule" else None
        self.errors.append(RuleError(message, path=self.path, line=line, column=col, rule_id=rule_id))

    def warn(self, message: str, line: int | None = None) -> None:
        """Record a likely mistake as ``path:line: message``."""
        self.warnings.append(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")

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
