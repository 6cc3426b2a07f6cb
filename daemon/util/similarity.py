"""Indel (insert/delete) similarity of short strings, scored the way rapidfuzz's ``fuzz`` scorers score them.

The daemon compares only words (fuzzy terms) and headlines (story grouping): a bit-parallel longest common
subsequence in Python ints settles either in microseconds, so the daemon need not map rapidfuzz's C++
library (~3.5 MB of resident memory) for them. Scores equal rapidfuzz's, float for float (tests compare).
"""

from __future__ import annotations

import functools


def _char_masks(a: str) -> tuple[dict[str, int], int]:
    masks: dict[str, int] = {}
    bit = 1
    for ch in a:
        masks[ch] = masks.get(ch, 0) | bit
        bit <<= 1
    return masks, bit - 1


# A fuzzy spelling is compared with word after word: its masks are built once. Headlines are not kept.
_word_masks = functools.lru_cache(maxsize=256)(_char_masks)


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (Hyyrö's bit-parallel algorithm, one
    bit per character of ``a``: pass the string compared most often first)."""
    if not a or not b:
        return 0
    masks, full = _word_masks(a) if len(a) <= 24 else _char_masks(a)
    row = full  # a 1 bit: that character of ``a`` is not yet in the common subsequence
    get = masks.get
    for ch in b:
        matched = row & get(ch, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def ratio(a: str, b: str, score_cutoff: float = 0.0) -> float:
    """0-100 similarity, 100 * (1 - indel distance / total length): ``rapidfuzz.fuzz.ratio``; 0 below
    ``score_cutoff``."""
    total = len(a) + len(b)
    norm_dist = (total - 2 * lcs_length(a, b)) / total if total else 0.0
    norm_sim = 1.0 - norm_dist
    return norm_sim * 100 if norm_sim >= score_cutoff / 100 else 0.0


def token_sort_ratio(a: str, b: str) -> float:
    """``ratio`` of the strings with their whitespace-separated words sorted: ``fuzz.token_sort_ratio``."""
    return ratio(" ".join(sorted(a.split())), " ".join(sorted(b.split())))


def _from_distance(dist: int, total: int) -> float:
    return (100 - 100 * dist / total) if total else 100.0


def token_set_ratio(a: str, b: str) -> float:
    """Similarity of the words the strings share and the words only one has: ``fuzz.token_set_ratio``
    (100 when one string's words are all in the other)."""
    words_a, words_b = set(a.split()), set(b.split())
    if not words_a or not words_b:
        return 0.0
    common = words_a & words_b
    only_a, only_b = words_a - words_b, words_b - words_a
    if common and (not only_a or not only_b):
        return 100.0
    joined_a, joined_b = " ".join(sorted(only_a)), " ".join(sorted(only_b))
    common_len = len(" ".join(common))
    sep = 1 if common_len else 0
    with_a, with_b = common_len + sep + len(joined_a), common_len + sep + len(joined_b)
    dist = len(joined_a) + len(joined_b) - 2 * lcs_length(joined_a, joined_b)
    result = _from_distance(dist, with_a + with_b)
    if not common_len:
        return result
    # Common words plus one side's own against the common words alone differ only by that side's words.
    return max(
        result,
        _from_distance(sep + len(joined_a), common_len + with_a),
        _from_distance(sep + len(joined_b), common_len + with_b),
    )
