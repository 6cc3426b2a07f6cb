"""Text normalisation for matching: HTML to plain text, Unicode folding with an offset map back to
the original text, and word tokenising. Pure functions; no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from typing import NamedTuple

__all__ = [
    "MARK_CLASS",
    "FoldedText",
    "Token",
    "fold",
    "fold_term",
    "html_to_text",
    "is_word_char",
    "tokenize",
    "word_pattern",
]

# --- character classes -----------------------------------------------------------------------------


def mark_ranges() -> list[tuple[int, int]]:
    """Code point ranges of every combining mark (category M*) in the BMP, from ``unicodedata`` (~15 ms)."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x300, 0x10000):  # the BMP holds the marks of every script news is written in
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return ranges


# mark_ranges() under Unicode 14.0.0 (Python 3.11), written out so that importing this module does not
# walk the BMP; another Unicode version computes its own (tests/util/test_text.py checks this copy).
MARK_RANGES_UNICODE = "14.0.0"
_MARK_RANGES_TEXT = """
    300-36f 483-489 591-5bd 5bf 5c1-5c2 5c4-5c5 5c7 610-61a 64b-65f 670 6d6-6dc 6df-6e4 6e7-6e8 6ea-6ed 711
    730-74a 7a6-7b0 7eb-7f3 7fd 816-819 81b-823 825-827 829-82d 859-85b 898-89f 8ca-8e1 8e3-903 93a-93c
    93e-94f 951-957 962-963 981-983 9bc 9be-9c4 9c7-9c8 9cb-9cd 9d7 9e2-9e3 9fe a01-a03 a3c a3e-a42 a47-a48
    a4b-a4d a51 a70-a71 a75 a81-a83 abc abe-ac5 ac7-ac9 acb-acd ae2-ae3 afa-aff b01-b03 b3c b3e-b44 b47-b48
    b4b-b4d b55-b57 b62-b63 b82 bbe-bc2 bc6-bc8 bca-bcd bd7 c00-c04 c3c c3e-c44 c46-c48 c4a-c4d c55-c56
    c62-c63 c81-c83 cbc cbe-cc4 cc6-cc8 cca-ccd cd5-cd6 ce2-ce3 d00-d03 d3b-d3c d3e-d44 d46-d48 d4a-d4d d57
    d62-d63 d81-d83 dca dcf-dd4 dd6 dd8-ddf df2-df3 e31 e34-e3a e47-e4e eb1 eb4-ebc ec8-ecd f18-f19 f35 f37
    f39 f3e-f3f f71-f84 f86-f87 f8d-f97 f99-fbc fc6 102b-103e 1056-1059 105e-1060 1062-1064 1067-106d
    1071-1074 1082-108d 108f 109a-109d 135d-135f 1712-1715 1732-1734 1752-1753 1772-1773 17b4-17d3 17dd
    180b-180d 180f 1885-1886 18a9 1920-192b 1930-193b 1a17-1a1b 1a55-1a5e 1a60-1a7c 1a7f 1ab0-1ace 1b00-1b04
    1b34-1b44 1b6b-1b73 1b80-1b82 1ba1-1bad 1be6-1bf3 1c24-1c37 1cd0-1cd2 1cd4-1ce8 1ced 1cf4 1cf7-1cf9
    1dc0-1dff 20d0-20f0 2cef-2cf1 2d7f 2de0-2dff 302a-302f 3099-309a a66f-a672 a674-a67d a69e-a69f a6f0-a6f1
    a802 a806 a80b a823-a827 a82c a880-a881 a8b4-a8c5 a8e0-a8f1 a8ff a926-a92d a947-a953 a980-a983 a9b3-a9c0
    a9e5 aa29-aa36 aa43 aa4c-aa4d aa7b-aa7d aab0 aab2-aab4 aab7-aab8 aabe-aabf aac1 aaeb-aaef aaf5-aaf6
    abe3-abea abec-abed fb1e fe00-fe0f fe20-fe2f
"""


def stored_mark_ranges() -> list[tuple[int, int]]:
    """The ranges written out above."""
    pairs = [(a, b or a) for a, _, b in (r.partition("-") for r in _MARK_RANGES_TEXT.split())]
    return [(int(a, 16), int(b, 16)) for a, b in pairs]


def _marks_class() -> str:
    """A regex class body of every combining mark."""
    current = unicodedata.unidata_version == MARK_RANGES_UNICODE
    ranges = stored_mark_ranges() if current else mark_ranges()
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_MARKS = _marks_class()
MARK_CLASS = _MARKS  # the body of a regex class of every combining mark, for patterns built elsewhere
_MARK_RE = re.compile(f"[{_MARKS}]")
# A piece is either a run of ASCII characters not followed by a combining mark (folded in bulk), or one
# character with its combining marks (folded as a unit, so "e" + U+0301 becomes "e", not "e" + nothing).
_PIECE_RE = re.compile(f"(?:[\\x00-\\x7f](?![{_MARKS}]))+|.[{_MARKS}\\u1160-\\u11ff]*", re.DOTALL)
_NONSPACE_RE = re.compile("[^ ]+")
_TOKEN_RE = re.compile(f"[\\w{_MARKS}]+")

# Diacritics in the generic combining blocks are stripped (Latin, Greek), and so are Arabic harakat,
# hamza and madda marks (written or not at will: أ إ آ fold to ا, ؤ to و, ئ to ي). Other scripts' marks
# (Indic vowel signs, Hebrew points) are letters in all but name and are kept.
_STRIPPABLE = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed]"
)
# On Cyrillic, only stress accents and the diaeresis of ё are dropped: й, ў, ї are letters of their own.
_CYRILLIC_DROP = frozenset("\u0300\u0301")

# Letters that carry their "diacritic" in the glyph itself and so do not decompose.
_LETTER_MAP = {
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ı": "i",
    "ŧ": "t",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
}
_LETTER_MAP.update({k.upper(): v.capitalize() for k, v in _LETTER_MAP.items() if k.upper() != k})
# Arabic-script letters that Arabic, Persian and Urdu spell differently for one sound, as search
# engines unify them: Farsi yeh, alef maksura and yeh barree are yeh; keheh is kaf; teh marbuta and the
# Urdu heh forms are heh; alef wasla is alef. Tatweel (a stretching stroke) vanishes, and Arabic-Indic
# and Persian digits become ASCII digits.
_LETTER_MAP.update(
    {
        "\u06cc": "\u064a", "\u0649": "\u064a", "\u06d2": "\u064a",  # ی ى ے → ي
        "\u06a9": "\u0643", "\u06aa": "\u0643",  # ک ڪ → ك
        "\u0629": "\u0647", "\u06c1": "\u0647",  # ة ہ → ه
        "\u0671": "\u0627",  # ٱ → ا
        "\u0640": "",  # tatweel
    }
)  # fmt: skip
_LETTER_MAP.update({chr(0x660 + d): str(d) for d in range(10)})
_LETTER_MAP.update({chr(0x6F0 + d): str(d) for d in range(10)})
_DASHES = "-_\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_QUOTES = {"‘": "'", "’": "'", "‛": "'", "ʼ": "'", "“": '"', "”": '"', "„": '"'}

# Text without combining marks folds character by character through a caching translate table;
# only text with marks (or conjoining Hangul jamo) needs the cluster-wise path.
_NEEDS_CLUSTERS = re.compile(f"[{_MARKS}\\u1100-\\u11ff]")


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds any character on first sight and remembers it."""

    def __init__(self, keep_case: bool) -> None:
        super().__init__()
        self.keep_case = keep_case

    def __missing__(self, key: int) -> str:
        folded = _fold_uncached(chr(key), self.keep_case)
        other = _TABLES[not self.keep_case].get(key)
        if other == folded:  # a character without case: both tables share one string
            folded = other
        if len(self) < 200_000:
            self[key] = folded
        return folded


def is_word_char(ch: str) -> bool:
    """True for letters, digits and combining marks: what a whole-word boundary may not cut through."""
    return ch.isalnum() or (ch >= "\u0300" and _MARK_RE.match(ch) is not None)


# --- folding ---------------------------------------------------------------------------------------

_CLUSTER_CACHE: dict[tuple[str, bool], str] = {}
_CLUSTER_CACHE_MAX = 50_000


def _strip_marks(decomposed: str) -> str:
    out: list[str] = []
    base = ""
    for ch in decomposed:
        if _STRIPPABLE.match(ch):
            if "\u0400" <= base <= "\u052f":
                if ch in _CYRILLIC_DROP or (ch == "\u0308" and base in "еЕ"):
                    continue
                out.append(ch)
            continue
        if not unicodedata.combining(ch):
            base = ch
        out.append(ch)
    return "".join(out)


def _fold_cluster(cluster: str, keep_case: bool) -> str:
    """Fold one base character with its marks; the result may be empty or several characters."""
    if len(cluster) == 1:  # remembered by the translate table, and only there
        return _TABLES[keep_case][ord(cluster)]
    key = (cluster, keep_case)
    cached = _CLUSTER_CACHE.get(key)
    if cached is not None:
        return cached
    result = _fold_uncached(cluster, keep_case)
    if len(_CLUSTER_CACHE) >= _CLUSTER_CACHE_MAX:
        _CLUSTER_CACHE.clear()
    _CLUSTER_CACHE[key] = result
    return result


def _fold_uncached(cluster: str, keep_case: bool) -> str:
    s = unicodedata.normalize("NFKC", cluster)
    if "\u06c0" in s:  # Persian heh with yeh above decomposes to Kurdish ae (ە), not to heh
        s = s.replace("\u06c0", "\u0647")
    if not keep_case:
        s = s.casefold()
    s = unicodedata.normalize("NFC", _strip_marks(unicodedata.normalize("NFD", s)))
    out: list[str] = []
    for ch in s:
        if ch in _DASHES or ch.isspace():
            out.append(" ")
        elif ch in _LETTER_MAP:
            out.append(_LETTER_MAP[ch])
        elif ch in _QUOTES:
            out.append(_QUOTES[ch])
        else:
            cat = unicodedata.category(ch)
            if cat == "Cc":
                out.append(" ")
            elif cat != "Cf":  # soft hyphen, zero-width and direction marks vanish
                out.append(ch)
    return "".join(out)


_TABLES = {False: _FoldTable(keep_case=False), True: _FoldTable(keep_case=True)}
# Plain dicts let CPython take its ASCII-to-ASCII translate fast path.
_ASCII_TABLES = {k: {c: t[c] for c in range(128)} for k, t in _TABLES.items()}


def _byte_table(table: dict[int, str]) -> bytes | None:
    """The same ASCII fold as a ``bytes.translate`` table (a plain lookup, no dict), when every ASCII
    character folds to one ASCII character."""
    if not all(len(v) == 1 and v.isascii() for v in table.values()):
        return None
    return bytes(ord(table[c]) for c in range(128)) + bytes(range(128, 256))


_BYTE_TABLES = {k: _byte_table(t) for k, t in _ASCII_TABLES.items()}


def _fold_with_offsets(text: str, keep_case: bool) -> tuple[str, list[int], list[int]]:
    """The reference fold: folded text plus, per folded character, the original span it came from."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    table = _TABLES[keep_case]
    pos = 0
    for piece in _PIECE_RE.findall(text):
        n = len(piece)
        if piece.isascii():
            out.append(piece.translate(table))
            starts.extend(range(pos, pos + n))
            ends.extend(range(pos + 1, pos + n + 1))
        else:
            folded = _fold_cluster(piece, keep_case)
            if folded:
                out.append(folded)
                starts.extend([pos] * len(folded))
                ends.extend([pos + n] * len(folded))
        pos += n
    raw = "".join(out)
    if "  " not in raw and not raw.startswith(" ") and not raw.endswith(" "):
        return raw, starts, ends
    # Collapse whitespace runs to one space (keeping the first one's span) and trim the ends.
    text_parts: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    prev_end = -1
    for m in _NONSPACE_RE.finditer(raw):
        a, b = m.span()
        if prev_end >= 0:
            text_parts.append(" ")
            new_starts.append(starts[prev_end])
            new_ends.append(ends[prev_end])
        prev_end = b
        text_parts.append(raw[a:b])
        new_starts.extend(starts[a:b])
        new_ends.extend(ends[a:b])
    return "".join(text_parts), new_starts, new_ends


class FoldedText:
    """Folded text with a map back to the original: ``span(s, e)`` gives the original span of
    ``text[s:e]``. The map is built lazily for pure-ASCII input (most texts never produce a hit).
    """

    __slots__ = ("_ends", "_starts", "keep_case", "original", "text")

    def __init__(self, original: str, *, keep_case: bool = False) -> None:
        self.original = original
        self.keep_case = keep_case
        self._starts: list[int] | None
        self._ends: list[int] | None
        if original.isascii():
            table = _BYTE_TABLES[keep_case]
            if table is not None:
                self.text = " ".join(original.encode("ascii").translate(table).decode("ascii").split())
            else:
                self.text = " ".join(original.translate(_ASCII_TABLES[keep_case]).split())
            self._starts = self._ends = None
        elif _NEEDS_CLUSTERS.search(original) is None:
            self.text = " ".join(original.translate(_TABLES[keep_case]).split())
            self._starts = self._ends = None
        else:
            self.text, self._starts, self._ends = _fold_with_offsets(original, keep_case)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering folded ``[start, end)`` (``end > start``)."""
        if self._starts is None or self._ends is None:
            _, self._starts, self._ends = _fold_with_offsets(self.original, self.keep_case)
        return self._starts[start], self._ends[end - 1]

    def original_text(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]

    def __repr__(self) -> str:
        return f"FoldedText({self.text!r})"


def fold(text: str, *, keep_case: bool = False) -> FoldedText:
    """Fold for matching: NFKC, casefold, diacritics stripped (Cyrillic letters such as й kept),
    every dash and underscore a space, soft hyphens and zero-width characters removed, curly quotes
    straightened, whitespace collapsed. ``keep_case`` skips only the casefold (for acronym terms).
    """
    return FoldedText(text, keep_case=keep_case)


def fold_term(text: str, *, keep_case: bool = False) -> str:
    """The folded string of a rule term; folding is the same as for item text."""
    return FoldedText(text, keep_case=keep_case).text


# --- tokens ----------------------------------------------------------------------------------------


class Token(NamedTuple):
    text: str
    start: int
    end: int


def word_pattern(min_length: int) -> re.Pattern[str]:
    """Matches whole word tokens of at least ``min_length`` characters (used as a cheap prefilter)."""
    return re.compile(f"[\\w{_MARKS}]{{{min_length},}}")


def tokenize(folded: str) -> list[Token]:
    """Word tokens (letters, digits, combining marks) of folded text, with their spans in it."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(folded)]


# --- HTML ------------------------------------------------------------------------------------------

SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object"})
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul", "img",
    }
)  # fmt: skip


# A tag whose extent and name html.parser reads exactly as written: a name of letters and digits, ASCII
# whitespace, plain attribute names, quoted values without angle brackets, bare values without quotes,
# slashes or angle brackets. Anything else in a fragment (comments, declarations, a stray "<") goes to
# html.parser itself.
_WS = r"[ \t\n\r\f]"
_SIMPLE_TAG = re.compile(
    rf"<(?:/([a-zA-Z][a-zA-Z0-9]*){_WS}*"
    rf"|([a-zA-Z][a-zA-Z0-9]*)(?:{_WS}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    rf"""(?:{_WS}*={_WS}*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'=<>`/]+))?)*{_WS}*/?)>"""
)


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment: entities decoded, script/style dropped, block boundaries as
    spaces, whitespace collapsed. Plain text passes through (with entities decoded).
    """
    if "<" not in html:
        return " ".join((unescape(html) if "&" in html else html).split())
    text = _simple_html_text(html)
    if text is None:
        # Comments, a stray "<", a script...: html.parser, loaded only when a feed has such markup.
        from daemon.util.htmlparse import extract_text

        text = extract_text(html, skip=SKIP_TAGS, block=BLOCK_TAGS)
    return " ".join(text.split())


def _simple_html_text(html: str) -> str | None:
    """The text ``htmlparse.TextExtractor`` would collect, without its parser, when every "<" opens a simple tag
    and no tag is one whose content is dropped; else None.

    html.parser unescapes each run of text between two tags as a whole, so each run here is too.
    """
    pieces = _SIMPLE_TAG.split(html)  # text, end tag name, start tag name, text, ...
    if "<" in "".join(pieces[::3]):
        return None
    parts: list[str] = []
    for i in range(1, len(pieces), 3):
        name = (pieces[i] or pieces[i + 1]).lower()
        if name in SKIP_TAGS:
            return None
        run = pieces[i - 1]
        parts.append(unescape(run) if "&" in run else run)
        if name in BLOCK_TAGS:
            parts.append(" ")
    run = pieces[-1]
    parts.append(unescape(run) if "&" in run else run)
    return "".join(parts)


# --- regex terms -----------------------------------------------------------------------------------


def fold_pattern(pattern: str, *, keep_case: bool = False) -> str:
    """Rewrite a regex written against ordinary text so it runs on folded text: literal dashes and
    underscores become spaces (``cease-?fire`` → ``cease ?fire``) and literal letters are folded
    (``Łódź`` → ``lodz``). Escapes, character ranges and group names are left alone.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(" " if nxt in "-_" else pattern[i : i + 2])
            i += 2
            continue
        if not in_class and pattern.startswith(("(?P<", "(?P="), i):
            close = pattern.find(">" if pattern[i + 3] == "<" else ")", i)
            close = n - 1 if close < 0 else close
            out.append(pattern[i : close + 1])
            i = close + 1
            continue
        if in_class:
            if ch == "]" and i > class_start:
                in_class = False
                out.append(ch)
            elif ch == "-" and i > class_start and i + 1 < n and pattern[i + 1] != "]":
                out.append(ch)  # a range such as a-z
            else:
                folded = _fold_cluster(ch, keep_case) if not ch.isascii() or ch in _DASHES else ch
                out.append(folded if len(folded) == 1 else ch)
        elif ch == "[":
            in_class = True
            class_start = i + 1
            if pattern.startswith("[^", i):
                class_start += 1
                out.append("[^")
                i += 2
                continue
            out.append(ch)
        elif ch in _DASHES or not ch.isascii():
            folded = _fold_cluster(ch, keep_case)
            out.append(folded if len(folded) <= 1 else f"(?:{re.escape(folded)})")
        else:
            out.append(ch)
        i += 1
    return "".join(out)
