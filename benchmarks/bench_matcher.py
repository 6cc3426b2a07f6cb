"""Matcher throughput against in-run baselines: ~50 rules / ~1,500 terms over generated ~200-char texts.

Baseline: lower-case the text and run one big ``\\b(?:...)\\b`` alternation of every term. Also timed:
the exact-term scan alone with pyahocorasick (what the matcher uses) vs a trie-compressed regex.
Run: ``python benchmarks/bench_matcher.py [--quick]``; ``run(quick)`` returns the numbers as a dict.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.matcher import Matcher, _is_word
from daemon.models import Item
from daemon.rules import RuleSet, load_rules
from daemon.text import fold

_FILLER_TEXT = (
    "the a of to and in said on for was with he it as at by that from his an were are which this be has "
    "had not after have been their its new they first more two one who also government would people year "
    "city officials week minister police report state country told president region border talks court "
    "market news today local forces attack military troops summit weather economy agency capital"
)
_SYLLABLE_TEXT = "ka ra ba kh st ep an ke rt ta li sh ma ru ni go ze vo la de mi ro su te na lo pe vi do"
FILLER = _FILLER_TEXT.split()
SYLLABLES = _SYLLABLE_TEXT.split()


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 5)))


def make_rules(rng: random.Random, n_rules: int = 50, terms_per_rule: int = 30) -> tuple[str, list[str]]:
    """TOML for the rules and the flat list of (alias) patterns the baseline regex uses."""
    parts: list[str] = []
    flat: list[str] = []
    for r in range(n_rules):
        parts.append(f"[rule.r{r}]\nthreshold = 2.0\n")
        for g in ("a", "b"):
            terms: list[str] = []
            for i in range(terms_per_rule // 2):
                kind = rng.random()
                if kind < 0.1:
                    w = _word(rng)
                    terms.append(f'"{w}*"')
                    flat.append(re.escape(w) + r"\w*")
                elif kind < 0.2:
                    w = f"{_word(rng)} {_word(rng)}"
                    terms.append(f'"{w}"')
                    flat.append(re.escape(w))
                elif kind < 0.3:
                    a, b = _word(rng), _word(rng)
                    terms.append(f'"{a}|{b}"')
                    flat += [re.escape(a), re.escape(b)]
                else:
                    w = _word(rng)
                    fuzzy = ", fuzzy = 87" if i == 0 and len(w) >= 7 else ""
                    terms.append(f'{{ term = "{w}"{fuzzy} }}' if fuzzy else f'"{w}"')
                    flat.append(re.escape(w))
            parts.append(f"[rule.r{r}.groups.{g}]\nterms = [{', '.join(terms)}]\n")
    return "\n".join(parts), flat


def make_texts(rng: random.Random, n: int, flat: list[str]) -> list[str]:
    plain = [p.replace("\\", "").replace(r"w*", "") for p in flat]
    texts: list[str] = []
    for _ in range(n):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < 200:
            words.append(rng.choice(FILLER))
        if rng.random() < 0.1:  # one in ten mentions a term or two
            for _ in range(rng.randint(1, 2)):
                words.insert(rng.randrange(len(words)), rng.choice(plain).capitalize())
        text = " ".join(words)
        if rng.random() < 0.3:  # news text is full of curly quotes and dashes
            text = text.replace(" said ", " said “") + "” — " + rng.choice(FILLER)
        texts.append(text[:220])
    return texts


def _trie_regex(words: list[str]) -> str:
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        optional = "" in node
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if optional else body

    return build(trie)


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds) if seconds > 0 else 0.0


def run(quick: bool = False) -> dict[str, Any]:
    rng = random.Random(42)
    toml, flat = make_rules(rng)
    n = 10_000 if quick else 100_000
    texts = make_texts(rng, n, flat)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench.toml").write_text(toml, encoding="utf-8")
        report = load_rules(Path(tmp))
    assert not report.errors, report.errors[:3]
    ruleset: RuleSet = report.ruleset
    n_terms = sum(len(g.terms) for r in ruleset for g in r.groups)

    baseline_rx = re.compile(r"\b(?:" + "|".join(sorted(flat, key=len, reverse=True)) + r")\b")
    t = time.perf_counter()
    baseline_hits = sum(1 for text in texts if baseline_rx.search(text.lower()))
    baseline = time.perf_counter() - t

    matcher = Matcher(ruleset)
    items = [Item(feed="bench", key=str(i), title=text, link=None, summary="") for i, text in enumerate(texts)]
    matcher.score(items[0])  # warm caches the way a running daemon has them
    t = time.perf_counter()
    fired = sum(1 for it in items if matcher.score(it))
    ours = time.perf_counter() - t

    # The exact-term scan alone: fold + pyahocorasick + boundary checks vs fold + trie regex.
    automaton = matcher._automaton
    assert automaton is not None
    t = time.perf_counter()
    for text in texts:
        folded = fold(text).text
        for end, (klen, *_rest) in automaton.iter(folded):
            start = end - klen + 1
            if start > 0 and _is_word(folded[start - 1]):
                continue
    ac = time.perf_counter() - t
    aliases = sorted({a.folded for r in ruleset for g in r.groups for term in g.terms for a in term.aliases})
    trie_rx = re.compile(r"(?<!\w)" + _trie_regex(aliases) + r"(?!\w)")
    t = time.perf_counter()
    for text in texts:
        trie_rx.findall(fold(text).text)
    trie = time.perf_counter() - t

    return {
        "texts": n,
        "rules": len(ruleset),
        "terms": n_terms,
        "baseline_texts_per_s": _rate(n, baseline),
        "matcher_texts_per_s": _rate(n, ours),
        "ratio_vs_baseline": round(baseline / ours, 2),
        "scan_ahocorasick_texts_per_s": _rate(n, ac),
        "scan_trie_regex_texts_per_s": _rate(n, trie),
        "texts_with_baseline_hit": baseline_hits,
        "texts_with_fired_rule": fired,
    }


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv).items():
        print(f"{key:32} {value}")
