"""Which story an item belongs to: same canonical URL, or a similar title naming the same things.

Pure: candidates come in as values, the decision goes out as a value. Title similarity alone would
merge "Shelling reported in Martuni" with "Shelling reported in Talish" (a high ratio), so two titles
that each name something the other does not (capitalised words past the first) are never merged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_PREFIX = re.compile(r"^\s*(update[sd]?|updated|breaking|exclusive|watch|live|corrected?)\s*[:\-–—|]\s*", re.I)
_CREDIT = re.compile(r"\s*(?:©|\(c\)|photo:|credit:|picture:).*$", re.I)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to"}
    | {"with", "after", "over", "amid", "says", "said", "new", "update", "updated", "breaking", "photo", "video"}
)


MIN_SUBSET_WORDS = 7


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """A recent story an item may belong to."""

    id: int
    canonical_url: str | None
    title: str
    last_seen: datetime


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def title_key(title: str) -> str:
    """Folded, prefix-free, punctuation-free title used for similarity."""
    stripped = _CREDIT.sub("", _PREFIX.sub("", title))
    return " ".join(_WORD.findall(_fold(stripped)))


def named_things(title: str) -> frozenset[str]:
    """Capitalised words after the first word: places, people, organisations in a headline."""
    words = _WORD.findall(_CREDIT.sub("", _PREFIX.sub("", title)))
    out = set()
    for word in words[1:]:
        if word[:1].isupper() and len(word) > 1:
            folded = _fold(word)
            if folded not in _STOP:
                out.add(folded)
    return frozenset(out)


def similarity(a: str, b: str) -> float:
    """0–100; 0 when each title names something the other does not."""
    things_a, things_b = named_things(a), named_things(b)
    if things_a - things_b and things_b - things_a:
        return 0.0
    from rapidfuzz import fuzz  # here: a cycle without a match compares no titles and need not load it

    key_a, key_b = title_key(a), title_key(b)
    score = float(fuzz.token_sort_ratio(key_a, key_b))
    # One headline extending the other (a wire update adding a clause) counts as the same story,
    # but only for long headlines: short ones are subsets of too many others.
    if min(len(key_a.split()), len(key_b.split())) >= MIN_SUBSET_WORDS:
        score = max(score, float(fuzz.token_set_ratio(key_a, key_b)))
    return score


def find_story(
    title: str,
    canonical: str | None,
    candidates: Sequence[StoryCandidate],
    *,
    now: datetime,
    window: float,
    threshold: float,
) -> StoryCandidate | None:
    """The existing story this item belongs to, or None for a new story."""
    recent = [c for c in candidates if (now - c.last_seen).total_seconds() <= window]
    if canonical:
        for c in recent:
            if c.canonical_url == canonical:
                return c
    if not title_key(title):
        return None
    best: StoryCandidate | None = None
    best_score = threshold
    for c in recent:
        score = similarity(title, c.title)
        if score >= best_score:
            best, best_score = c, score
    return best
