"""Where words begin and end, per script: the boundary rules whole-word matching follows.

Most scripts separate words with spaces and punctuation, so a term matches only where its first and
last letters do not continue a longer word. Two families need more (docs/rules.md, "Scripts"):

- **unspaced scripts** (Han, kana, Thai, Lao, Khmer, Myanmar) write words without spaces between
  them: a term in these scripts matches anywhere inside running text, and a character of these
  scripts next to a term of another script is a boundary;
- **Arabic script** writes proclitics onto the word (و ف ب ك ل, the article ال, and chains such as
  وال بال لل): an Arabic-script term matches after them, and a leading ال of the term is optional.

Pure functions over folded text (``daemon.util.text.fold``), which has already unified the Arabic
letter variants these rules rely on.
"""

from __future__ import annotations

import re
from enum import IntEnum

from daemon.util.text import is_word_char

__all__ = ["ARTICLE", "Left", "attaches", "is_arabic", "is_unspaced", "left_rule", "proclitics_before", "stem"]

# Scripts written without spaces between words (and their combining marks and iteration signs).
_UNSPACED_RE = re.compile(
    "[\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff\u19e0-\u19ff"  # Khmer
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b\u303c"  # CJK radicals, 々 〆 〇, marks
    "\u3040-\u30ff\u31f0-\u31ff"  # hiragana, katakana
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\uff66-\uff9f"  # half-width katakana
    "\U00020000-\U0003134f]"  # Han extensions B to G
)
_ARABIC_RE = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")

ARTICLE = "ال"
# Proclitic chains, as folded text writes them: an optional conjunction (و ف), an optional
# preposition (ب ك ل) and an optional article (ال; after ل it is written ل: لل). 24 chains in all.
_CONJUNCTIONS = ("", "و", "ف")
_PREPOSITIONS = ("", "ب", "ك", "ل")
PROCLITICS = frozenset(
    c + p + (a if not (p == "ل" and a) else "ل") for c in _CONJUNCTIONS for p in _PREPOSITIONS for a in ("", ARTICLE)
) - {""}
_MAX_PROCLITIC = max(len(p) for p in PROCLITICS)


class Left(IntEnum):
    """What must precede a term's first letter."""

    FREE = 0  # nothing: the term may start inside a word (unspaced scripts)
    WORD = 1  # a word boundary
    PROCLITIC = 2  # a word boundary, or a proclitic chain that starts at one (Arabic script)


def is_unspaced(ch: str) -> bool:
    """True for characters of scripts written without spaces between words."""
    return ch >= "\u0e00" and _UNSPACED_RE.match(ch) is not None


def is_arabic(ch: str) -> bool:
    return ch >= "\u0600" and _ARABIC_RE.match(ch) is not None


def attaches(ch: str) -> bool:
    """Whether ``ch`` continues a word of a spaced script (so a whole-word match may not touch it)."""
    if ch.isalnum():
        return ch < "\u0e00" or _UNSPACED_RE.match(ch) is None
    return ch >= "\u0300" and is_word_char(ch) and _UNSPACED_RE.match(ch) is None


def left_rule(key: str) -> Left:
    """The boundary a term (folded) needs before its first character."""
    first = key[0]
    if not is_word_char(first) or is_unspaced(first):
        return Left.FREE
    return Left.PROCLITIC if is_arabic(first) else Left.WORD


def stem(key: str) -> str:
    """An Arabic-script term without its leading article (``السودان`` → ``سودان``), which matching
    treats as one of the proclitics; other terms unchanged. Two letters are kept at least.
    """
    if key.startswith(ARTICLE) and len(key) >= len(ARTICLE) + 2 and is_arabic(key[len(ARTICLE)]):
        return key[len(ARTICLE) :]
    return key


def proclitics_before(text: str, start: int) -> bool:
    """Whether the letters before ``start`` back to the word's beginning form a proclitic chain."""
    begin = start
    while begin > 0 and start - begin <= _MAX_PROCLITIC and attaches(text[begin - 1]):
        begin -= 1
    if begin > 0 and attaches(text[begin - 1]):
        return False  # more letters than any chain has
    return text[begin:start] in PROCLITICS
