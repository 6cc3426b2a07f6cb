"""Matcher throughput: generated news items scored against the shipped rules replicated to 50 rules.

Baseline, in the same process over the same texts: lower-case the raw text and run ONE precompiled
``\\b(?:...)\\b`` alternation of every exact alias (``alias\\w*`` for wildcards) — hits, no scoring.
feedwatch: ``Matcher(ruleset).score(item)`` — folding, every hit with its span, scores, require/exclude.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, row
from benchmarks.newsgen import NewsGen, replicate_rules
from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.rules.ruleset import RuleSet

SEED = 20201027
N_RULES = 50
CHUNK = 2_000


def _ruleset(fuzzy_share: float) -> tuple[RuleSet, int]:
    text = replicate_rules(REPO / "rules", N_RULES, SEED, fuzzy_share=fuzzy_share)
    with tempfile.TemporaryDirectory(prefix="feedwatch-bench-") as tmp:
        (Path(tmp) / "bench.toml").write_text(text, encoding="utf-8")
        report = load_rules(Path(tmp))
    if report.errors:
        raise RuntimeError(f"generated rules do not load: {report.errors[0]}")
    return report.ruleset, len(text)


def baseline_pattern(ruleset: RuleSet) -> re.Pattern[str]:
    """One alternation of every exact alias, lower-cased, longest first so the longest one wins."""
    alts = set()
    for rule in ruleset:
        terms = [t for g in rule.groups for t in g.terms] + list(rule.exclude_terms)
        for term in terms:
            for alias in term.aliases:
                if alias.steps:  # a pattern alias: "*" ends a word, "~N" is up to N words
                    alts.add(_pattern_alt(alias.text.lower()))
                    continue
                alts.add(re.escape(alias.text.lower()) + (r"\w*" if alias.prefix else ""))
    return re.compile(r"\b(?:" + "|".join(sorted(alts, key=len, reverse=True)) + r")\b")


def _pattern_alt(text: str) -> str:
    """The baseline's regex for a pattern alias: a word's "*" is ``\\w*``; a gap ``~N`` is up to N words."""
    parts = []
    for word in text.split():
        if re.fullmatch(r"~\d", word):
            parts.append(rf"(?:\w+\s+){{0,{word[1:]}}}")
        else:
            parts.append(re.escape(word.rstrip("*")) + (r"\w*" if word.endswith("*") else "") + r"\s+")
    return "".join(parts).removesuffix(r"\s+")


class _Clock:
    """CPU time of this thread (immune to other processes on the machine) and wall time, summed."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self._t = (0.0, 0.0)

    def __enter__(self) -> _Clock:
        self._t = (time.thread_time(), time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu += time.thread_time() - self._t[0]
        self.wall += time.perf_counter() - self._t[1]


def _baseline(rx: re.Pattern[str], texts: list[str]) -> int:
    findall = rx.findall
    return sum(1 for text in texts if findall(text.lower()))


def _score(matcher: Matcher, items: list[Item]) -> tuple[int, int]:
    score = matcher.score
    fired = hits = 0
    for item in items:
        matches = score(item)
        if matches:
            fired += 1
            hits += sum(len(m.hits) for m in matches)
    return fired, hits


def run(quick: bool) -> dict[str, Any]:
    n = 20_000 if quick else 100_000
    exact, toml_bytes = _ruleset(0.0)
    fuzzy, _ = _ruleset(0.25)
    gen = NewsGen(SEED, exact)
    texts: list[tuple[str, str, str]] = [gen.text() for _ in range(n)]
    raw = [f"{title}\n{summary}" for title, summary, _ in texts]
    items = [Item(feed="bench", key=str(i), title=t, link=None, summary=s) for i, (t, s, _) in enumerate(texts)]
    relevant = sum(1 for *_, kind in texts if kind == "relevant")

    t = time.perf_counter()
    rx = baseline_pattern(exact)
    compile_baseline = time.perf_counter() - t
    t = time.perf_counter()
    m_exact = Matcher(exact)
    compile_exact = time.perf_counter() - t
    t = time.perf_counter()
    m_fuzzy = Matcher(fuzzy)
    compile_fuzzy = time.perf_counter() - t

    # Warm both sides on a slice first (regex caches, folding tables). Then time them in alternating
    # chunks, so a change in machine load hits every side alike; CPU time is what is compared.
    _baseline(rx, raw[:1000])
    _score(m_exact, items[:1000])
    base, exact_t, fuzzy_t = _Clock(), _Clock(), _Clock()
    base_hit_items = exact_fired = exact_hits = fuzzy_fired = fuzzy_hits = 0
    for lo in range(0, n, CHUNK):
        with base:
            base_hit_items += _baseline(rx, raw[lo : lo + CHUNK])
        with exact_t:
            fired, hits = _score(m_exact, items[lo : lo + CHUNK])
        exact_fired += fired
        exact_hits += hits
        # The fuzzy cache starts cold, as after a rule reload; the whole run's cost is counted.
        with fuzzy_t:
            fired, hits = _score(m_fuzzy, items[lo : lo + CHUNK])
        fuzzy_fired += fired
        fuzzy_hits += hits
    base_s, exact_s, fuzzy_s = base.cpu, exact_t.cpu, fuzzy_t.cpu

    base_rate = n / base_s
    exact_rate = n / exact_s
    fuzzy_rate = n / fuzzy_s
    n_terms = sum(len(g.terms) for r in exact for g in r.groups) + sum(len(r.exclude_terms) for r in exact)
    n_aliases = sum(len(t.aliases) for r in exact for g in r.groups for t in g.terms)
    n_fuzzy_terms = sum(1 for r in fuzzy for g in r.groups for t in g.terms if t.fuzzy)
    avg_len = sum(len(x) for x in raw) / n
    return {
        "rows": [
            row(
                "matcher: exact terms (items/s)",
                exact_rate,
                base_rate,
                unit="items/s",
                ratio=exact_rate / base_rate,
                op=">=",
                target=1.0,
                stretch=3.0,
            ),
            row(
                "matcher: fuzzy on 1/4 of rules (items/s)",
                fuzzy_rate,
                base_rate,
                unit="items/s",
                ratio=fuzzy_rate / base_rate,
                op=">=",
                target=0.5,
            ),
        ],
        "details": {
            "items": n,
            "avg_chars_per_item": round(avg_len, 1),
            "generated_relevant_items": relevant,
            "rules": len(exact),
            "terms": n_terms,
            "aliases": n_aliases,
            "fuzzy_terms_in_fuzzy_variant": n_fuzzy_terms,
            "rules_toml_bytes": toml_bytes,
            "baseline_regex_alternatives": rx.pattern.count("|") + 1,
            "timing": "CPU seconds of the benchmark thread (wall seconds beside)",
            "baseline_seconds": [round(base_s, 3), round(base.wall, 3)],
            "baseline_items_with_a_hit": base_hit_items,
            "exact_seconds": [round(exact_s, 3), round(exact_t.wall, 3)],
            "exact_items_fired": exact_fired,
            "exact_hits_reported": exact_hits,
            "fuzzy_seconds": [round(fuzzy_s, 3), round(fuzzy_t.wall, 3)],
            "fuzzy_items_fired": fuzzy_fired,
            "fuzzy_hits_reported": fuzzy_hits,
            "compile_seconds": {
                "baseline_regex": round(compile_baseline, 3),
                "matcher_exact": round(compile_exact, 3),
                "matcher_fuzzy": round(compile_fuzzy, 3),
            },
        },
    }
