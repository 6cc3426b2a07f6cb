"""Mail header values built from literal text, folded and encoded by us.

The email package parses a ``str`` assigned to a header, decoding any RFC 2047 encoded word in it, and
CPython 3.11/3.12 then write a decoded CR/LF out as a real line break: a title could add headers or
end the header block. A :class:`LiteralHeader` is a header object (it has ``name`` and ``fold``), so the
policy stores it as it is and asks it to fold itself: feed text never goes through header decoding.
"""

from __future__ import annotations

import re
from typing import Any

LINE_MAX = 76  # RFC 2047 §2: a line holding an encoded word is at most 76 characters
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PLAIN_SAFE = re.compile(r"[\x21-\x7e]+")
_Q_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_EW_OPEN = "=?utf-8?q?"
_EW_CLOSE = "?="


class LiteralHeader(str):
    """A header whose value is exactly this text (no decoding); it folds and encodes itself."""

    name: str

    def __new__(cls, name: str, text: str) -> LiteralHeader:
        value = " ".join(_CONTROL.sub(" ", text).split())  # one line, single spaces: nothing to unfold
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Any) -> str:
        """``Name: value`` plus line ending; plain when the text is plain ASCII, else encoded words."""
        linesep = str(getattr(policy, "linesep", "\n"))
        lines = _fold_plain(self.name, str(self)) or _fold_encoded(self.name, str(self))
        return linesep.join(lines) + linesep


def literal_header(name: str, text: str) -> LiteralHeader:
    return LiteralHeader(name, text)


def _fold_plain(name: str, text: str) -> list[str] | None:
    """Lines broken before spaces (unfolding restores the text), or None when encoding is needed.

    ``=?`` would be read as the start of an encoded word by the receiver, so such text is encoded.
    """
    words = text.split(" ")
    if "=?" in text or not all(_PLAIN_SAFE.fullmatch(w) for w in words if w):
        return None
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) <= LINE_MAX or lines[-1] == f"{name}:":
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    if any(len(line) > LINE_MAX for line in lines):
        return None  # a word too long for a line: encoded words can split it
    return lines


def _q(char: str) -> str:
    if char in _Q_SAFE:
        return char
    if char == " ":
        return "_"
    return "".join(f"={b:02X}" for b in char.encode("utf-8"))


def _fold_encoded(name: str, text: str) -> list[str]:
    """The whole text as Q-encoded UTF-8 words, one per line, split between characters.

    Spaces are encoded inside the words (as ``_``): whitespace *between* encoded words is dropped by
    decoders, so the folding whitespace can never add or remove a space.
    """
    overhead = len(_EW_OPEN) + len(_EW_CLOSE)
    lines: list[str] = []
    prefix = f"{name}: "
    chunk = ""
    for char in text:
        piece = _q(char)
        if chunk and len(prefix) + overhead + len(chunk) + len(piece) > LINE_MAX:
            lines.append(f"{prefix}{_EW_OPEN}{chunk}{_EW_CLOSE}")
            prefix, chunk = " ", ""
        chunk += piece
    lines.append(f"{prefix}{_EW_OPEN}{chunk}{_EW_CLOSE}" if chunk else prefix.rstrip())
    return lines
