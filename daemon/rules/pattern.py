"""Alias patterns: a ``*`` at the end of any word of a phrase (``"мирн* договор*"``) and bounded word gaps
(``"halt ~2 fighting"``). Parsed from one alias of a term string; compiled into the check that verifies
a candidate hit. Pure.

An alias is its *anchor* — the words up to the first inner ``*`` or gap, which the matcher's
Aho-Corasick automaton finds like any phrase — followed by *steps* ("then, after up to N other words,
these words"). Each candidate hit of the anchor is verified by one regular expression anchored where
the anchor ended, so matching stays one pass over the text plus a cheap check per candidate.
"""

from __future__ import annotations

import re

from daemon.rules.ruleset import Alias, Step
from daemon.util.scripts import attaches, stem
from daemon.util.text import MARK_CLASS, fold_term

__all__ = ["MAX_GAP", "PatternError", "cased_regex", "forget_shared", "gap_words", "parse_alias", "tail_regex"]

MAX_GAP = 5  # longer distances are what `proximity` is for
_GAP_RE = re.compile(r"~(\d+)")
_ALNUM_RE = re.compile(r"[^\W_]")  # a character for which str.isalnum() is true
_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff"
# A character that continues a word of a spaced script (daemon.util.scripts.attaches, as a class).
_CONTINUES = f"(?:[^\\W{_UNSPACED}]|[{MARK_CLASS}])"
# One word inside a gap: a word character, and no sentence or clause punctuation at its end, so a gap
# does not reach across "halt. Fighting" or "halt, he said, the fighting". The split is deterministic
# (the first word character), so the pattern cannot backtrack badly.
_GAP_WORD = r"[^\w .!?;:,]*\w[^ .!?;:,]*"


# One string object per spelling while rules load: most spellings fold to themselves, and lists shared by
# rules repeat them, so sharing saves a few hundred KB in a large pack for as long as it is loaded. A
# plain dict, emptied when loading ends, rather than sys.intern: thousands of interned spellings would
# grow the interpreter's table of interned strings for good (by about 1 MB in the daemon).
_SHARED: dict[str, str] = {}


def _share(text: str) -> str:
    return _SHARED.setdefault(text, text)


def forget_shared() -> None:
    """Let go of the strings shared while rules loaded (``load_rules`` calls it when it is done)."""
    _SHARED.clear()


class PatternError(ValueError):
    """An alias that is not well formed; the message says what to write instead."""


def parse_alias(raw: str) -> Alias | None:
    """The alias ``raw`` (one alternative of a term string), or None when folding leaves nothing to match."""
    runs: list[Step] = []  # runs of words, each ending at a "*" or before a gap
    words: list[tuple[str, str]] = []
    pending = 0  # the gap before the next run
    last_gap = False
    for folded, cased in _tokens(raw):
        if "~" in folded:
            n = _gap(folded, raw, first=not runs and not words, after_gap=last_gap)
            if words:
                runs.append(_run(pending, words, False))
                words = []
            pending, last_gap = n, True
            continue
        star = folded.endswith("*")
        core_f, core_c = (folded[:-1], cased[:-1]) if star else (folded, cased)
        if not core_f or "*" in core_f:
            raise PatternError(f"'*' is allowed only at the end of a word (in {raw!r}); use a regex")
        words.append((core_f, core_c))
        last_gap = False
        if star:
            runs.append(_run(pending, words, True))
            words, pending = [], 0
    if last_gap:
        raise PatternError(f"a gap cannot end a phrase (in {raw!r}): write the word that follows it")
    if words:
        runs.append(_run(pending, words, False))
    if not any(_ALNUM_RE.search(r.folded) for r in runs):
        return None
    first, steps = runs[0], tuple(runs[1:])
    text = raw if steps else (raw[:-1].rstrip() if first.prefix else raw)
    return Alias(_share(text), first.folded, first.cased, first.prefix, steps)


def _run(gap: int, words: list[tuple[str, str]], prefix: bool) -> Step:
    folded = _share(" ".join(f for f, _ in words))
    return Step(gap, folded, _share(" ".join(c for _, c in words)), prefix)


def _tokens(raw: str) -> list[tuple[str, str]]:
    """The folded words of ``raw`` (dashes fold to spaces), each with its case-keeping folding."""
    if raw.isascii():
        # ASCII folds character by character, so folding the whole phrase splits into the same words
        # as folding word by word (most aliases; half the work).
        pairs = zip(fold_term(raw).split(" "), fold_term(raw, keep_case=True).split(" "), strict=True)
        return [(f, c) for f, c in pairs if f]
    out: list[tuple[str, str]] = []
    for part in raw.split():
        folded = fold_term(part).split(" ")
        cased = fold_term(part, keep_case=True).split(" ")
        if len(cased) != len(folded):  # a compatibility form that folds to spaces differently: rare
            cased = folded
        out += [(f, c) for f, c in zip(folded, cased, strict=True) if f]
    return out


def _gap(token: str, raw: str, *, first: bool, after_gap: bool) -> int:
    m = _GAP_RE.fullmatch(token)
    if m is None:
        raise PatternError(
            f"a gap is written '~N' as a word of its own, N from 1 to {MAX_GAP} (got {token!r} in {raw!r})"
        )
    n = int(m[1])
    if not 1 <= n <= MAX_GAP:
        raise PatternError(f"gap {token!r} in {raw!r} must be ~1 to ~{MAX_GAP}; for longer distances use `proximity`")
    if first:
        raise PatternError(f"a gap cannot start a phrase (in {raw!r}): write the word before it")
    if after_gap:
        raise PatternError(f"two gaps in a row in {raw!r}: write one")
    return n


def tail_regex(alias: Alias, *, cased: bool = False) -> re.Pattern[str]:
    """Matches, where the anchor ends, the rest of a hit: the anchor word's completion, then each step."""
    return re.compile(_tail(alias, cased))


def cased_regex(alias: Alias) -> re.Pattern[str]:
    """Matches a whole hit, folded keeping case, for a case-sensitive pattern alias (``fullmatch``)."""
    return re.compile(re.escape(stem(alias.cased)) + _tail(alias, True))


def _tail(alias: Alias, cased: bool) -> str:
    parts: list[str] = []
    prefix = alias.prefix
    for step in alias.steps:
        if prefix:
            parts.append(f"{_CONTINUES}*")
        parts.append(" ")
        if step.gap:
            parts.append(f"(?:{_GAP_WORD} ){{0,{step.gap}}}?")  # lazy: the closest hit, the shortest span
        parts.append(re.escape(step.cased if cased else step.folded))
        prefix = step.prefix
    if prefix:
        parts.append(f"{_CONTINUES}*")
    elif alias.steps and attaches(alias.steps[-1].folded[-1]):
        parts.append(f"(?!{_CONTINUES})")
    return "".join(parts)


def gap_words(alias: Alias, folded_hit: str) -> int:
    """How many other words the gaps of ``alias`` took in a hit (its folded text)."""
    written = len(alias.folded.split(" ")) + sum(len(s.folded.split(" ")) for s in alias.steps)
    return max(0, len(folded_hit.split(" ")) - written)
