"""Our Indel similarity scores equal rapidfuzz's (the library fuzzy terms and story grouping once used),
float for float, so thresholds decide exactly as before."""

from __future__ import annotations

import random

import pytest
from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from daemon.util import similarity

WORDS = [
    "karabakh",
    "karabagh",
    "garabagh",
    "karachi",
    "stepanakert",
    "khankendi",
    "martuni",
    "martini",
    "agdam",
    "adam",
    "lachin",
    "lachine",
    "shusha",
    "shushan",
    "terter",
    "tatar",
    "ceasefire",
    "shelling",
    "blackout",
    "power",
    "cut",
    "city",
    "council",
    "markets",
    "calm",
    "troops",
    "border",
    "attack",
]
EDGE = ["", " ", "a", "ab", "ba", "aaaa", "ağdam", "Karabağ", "naïve café", "x y", "y x", "x  y  x"]


def _mutate(rnd: random.Random, word: str) -> str:
    chars = list(word)
    for _ in range(rnd.randint(1, 3)):
        at = rnd.randrange(len(chars) + 1)
        roll = rnd.random()
        if roll < 0.4 and chars:
            chars.pop(min(at, len(chars) - 1))
        elif roll < 0.8:
            chars.insert(at, rnd.choice("aeghkrzğ"))
        elif chars:
            chars[min(at, len(chars) - 1)] = rnd.choice("aeghkrz")
    return "".join(chars)


def _headline(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 9)))


def test_lcs_length_of_known_pairs() -> None:
    """The longest common subsequence is counted, whichever string is longer."""
    assert similarity.lcs_length("lewenstein", "levenshtein") == 9
    assert similarity.lcs_length("levenshtein", "lewenstein") == 9
    assert similarity.lcs_length("", "abc") == 0
    assert similarity.lcs_length("abc", "xyz") == 0


@pytest.mark.parametrize("cutoff", [0, 50, 80, 85, 87, 87.5, 90, 92.3, 100])
def test_ratio_equals_rapidfuzz(cutoff: float) -> None:
    """Word against misspelt word, at fuzzy-term thresholds: the score and the cut-off verdict are rapidfuzz's."""
    rnd = random.Random(cutoff)
    pairs = [(a, b) for a in EDGE for b in EDGE]
    pairs += [(w, _mutate(rnd, w)) for w in WORDS for _ in range(40)]
    pairs += [(rnd.choice(WORDS), rnd.choice(WORDS)) for _ in range(500)]
    for a, b in pairs:
        assert similarity.ratio(a, b, cutoff) == fuzz.ratio(a, b, score_cutoff=cutoff), (a, b)
        assert similarity.ratio(a, b) == Indel.normalized_similarity(a, b) * 100, (a, b)


def test_token_ratios_equal_rapidfuzz() -> None:
    """Headline against headline (reordered, shortened, extended, unrelated): both token scores are rapidfuzz's."""
    rnd = random.Random(14)
    pairs = [(a, b) for a in EDGE for b in EDGE]
    for _ in range(3000):
        a = _headline(rnd)
        words = a.split()
        rnd.shuffle(words)
        b = rnd.choice([_headline(rnd), " ".join(words[: rnd.randint(0, len(words))]), f"{a} {_headline(rnd)}"])
        pairs.append((a, b))
    for a, b in pairs:
        assert similarity.token_sort_ratio(a, b) == fuzz.token_sort_ratio(a, b), (a, b)
        assert similarity.token_set_ratio(a, b) == fuzz.token_set_ratio(a, b), (a, b)
