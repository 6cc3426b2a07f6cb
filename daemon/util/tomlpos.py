"""Source positions in TOML files: key paths to line:column, syntax error positions, "did you mean".

tomllib returns plain dicts without positions; config and rule files both report their mistakes as
``file:line:column``, so both use this one locator.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Iterable

KeyPath = tuple[str | int, ...]

# A bare, "basic" or 'literal' key part; dotted keys are parts joined by dots.
_KEY_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_RE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*")
_PART_RE = re.compile(_KEY_PART)
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')

_TOML_POS_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def close_match(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close option exists, else ``""``."""
    import difflib  # here: only a mistake needs a suggestion

    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def syntax_position(exc: tomllib.TOMLDecodeError, text: str) -> tuple[str, int | None, int | None]:
    """(message, line, column) of a TOML syntax error; "end of document" points at the last line."""
    message = str(exc)
    m = _TOML_POS_RE.search(message)
    if m:
        return message[: m.start()], int(m.group(1)), int(m.group(2))
    if "end of document" in message:
        line = max(1, len(text.splitlines()))
        return message.replace("(at end of document)", "at end of file").strip(), line, None
    return message, None, None


class Locator:
    """Maps TOML key paths (``("rule", "x", "groups", "g", "terms")``) to 1-based (line, column).

    A line scanner, not a parser: it follows table headers, arrays of tables, dotted keys, inline
    tables and multi-line arrays/strings well enough to point at the right line of a valid file.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.pos: dict[KeyPath, tuple[int, int]] = {}
        self.extent: dict[KeyPath, tuple[int, int]] = {}  # key -> first and last line of its value
        self._blocks: dict[tuple[int, int], tuple[str, list[int]]] = {}  # lines joined, and where each starts
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
                    no = self._needle_line(first, last, needle)
                    if no is not None:
                        hit = self._needle_col(self.lines[no - 1], needle)
                        if hit is not None:
                            return no, hit
                return line, col
            # Arrays of tables are indexed: ("rule", "x", "examples", 2) also tries the bare header.
        return 1, None

    def _needle_line(self, first: int, last: int, needle: str) -> int | None:
        """The first line from ``first`` to ``last`` where ``_needle_col`` finds the needle.

        Every element of a long multi-line array (a term list) asks this of the same lines, so they are
        searched as one text: a few ``str.find`` calls instead of a Python loop over the lines.
        """
        if "\n" in needle or "\r" in needle:  # cannot be on one line: the line by line search says so
            return None
        block = self._blocks.get((first, last))
        if block is None:
            text = "\n".join(self.lines[first - 1 : last])
            starts = [0]
            for no in range(first, last):
                starts.append(starts[-1] + len(self.lines[no - 1]) + 1)
            block = self._blocks[(first, last)] = (text, starts)
        text, starts = block
        found = [at for form in self._forms(needle) if (at := text.find(form)) >= 0]
        return first + bisect.bisect_right(starts, min(found)) - 1 if found else None

    @staticmethod
    def _forms(needle: str) -> list[str]:
        # TOML basic strings double backslashes: fall back to the text before the first one.
        head = needle.split("\\", 1)[0]
        return [f'"{needle}"', f"'{needle}'", needle] + ([head] if len(head) >= 4 else [])

    @staticmethod
    def _needle_col(line: str, needle: str) -> int | None:
        for form in Locator._forms(needle):
            at = line.find(form)
            if at >= 0:
                return at + 1
        return None


def _blank_strings(text: str) -> str:
    return _STRING_RE.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)


def _bracket_balance(text: str) -> int:
    code = _blank_strings(text).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")
