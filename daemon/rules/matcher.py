"""Score items against a RuleSet: one Aho-Corasick pass over folded text finds every exact term of
every rule, then each rule with hits is judged (exclude, require, proximity, threshold). Pure.

Regex terms run on the ``regex`` engine with a time budget per rule and item, releasing the GIL while
they match: a pattern that backtracks catastrophically costs that rule that item (reported as an
overrun), never the thread or the event loop beside it.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import ahocorasick
import regex
from rapidfuzz import fuzz

from daemon.models import FIELDS, Hit, Item, RuleMatch, Severity
from daemon.rules.ruleset import EXCLUDE_GROUP, Rule, RuleSet, Term
from daemon.util.text import FoldedText, fold, fold_pattern, fold_term, is_word_char, tokenize, word_pattern

__all__ = ["MAX_HITS_PER_TERM", "REGEX_BUDGET", "Evaluation", "Matcher", "Scored"]

if not getattr(ahocorasick, "unicode", True):  # a bytes build would report byte offsets
    raise ImportError("pyahocorasick must be built with unicode support")

MAX_HITS_PER_TERM = 5  # occurrences reported per term; the counted one is always among them
_EXCLUDE = -1  # group index of a rule's exclude terms
_WORD_TAIL = re.compile(r"\w*")
_FUZZY_CACHE_MAX = 100_000
# Seconds all regex terms of one rule may spend on one item. Ordinary patterns need microseconds;
# a tenth of a second is far beyond them and short enough that a feed of hostile titles stays cheap.
REGEX_BUDGET = 0.1


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How one rule judged one item: whether it fired, the score, every hit and the reasons."""

    rule_id: str
    fired: bool
    score: float
    severity: Severity
    hits: tuple[Hit, ...]
    reasons: tuple[str, ...]
    vetoes: tuple[Hit, ...] = ()
    channels: tuple[str, ...] = ()

    def to_match(self) -> RuleMatch | None:
        if not self.fired:
            return None
        return RuleMatch(self.rule_id, self.score, self.severity, self.hits, self.channels)


@dataclass(frozen=True, slots=True)
class Scored:
    """The rules that fired for one item, and those skipped because a regex ran out of its budget."""

    matches: list[RuleMatch]
    overruns: tuple[str, ...] = ()


class _Entry(NamedTuple):
    rule: int
    group: int
    term: int
    alias: str  # alias as written
    cased: str | None  # keep-case fold when the term is case-sensitive
    prefix: bool


class _Raw(NamedTuple):
    """A hit before scoring: positions are in the folded text of ``field``."""

    group: int
    term: int
    alias: str
    field: int
    start: int
    end: int
    fuzzy: float | None


class _FuzzyEntry(NamedTuple):
    rule: int
    group: int
    term: int
    alias: str
    folded: str
    threshold: float
    window: int


class _Scan:
    """Per-item state: folded fields, lazily built tokens, raw hits by rule index."""

    __slots__ = ("folded", "hits", "overrun", "spent", "tokens")

    def __init__(self, folded: list[FoldedText | None]) -> None:
        self.folded = folded
        self.hits: dict[int, list[_Raw]] = defaultdict(list)
        self.tokens: list[list[int] | None] = [None] * len(folded)
        self.spent: dict[int, float] = defaultdict(float)  # regex seconds by rule index
        self.overrun: set[int] = set()  # rules whose regex budget ran out: not judged on this item

    def token_index(self, field: int, pos: int) -> int:
        starts = self.tokens[field]
        if starts is None:
            ft = self.folded[field]
            starts = [t.start for t in tokenize(ft.text)] if ft else []
            self.tokens[field] = starts
        return bisect.bisect_right(starts, pos) - 1


def _is_word(ch: str) -> bool:
    return ch.isalnum() or (ch >= "\u0300" and is_word_char(ch))


class Matcher:
    """Compiled once per RuleSet; ``score``/``evaluate`` are safe to call from several threads."""

    def __init__(self, ruleset: RuleSet, *, regex_budget: float = REGEX_BUDGET) -> None:
        self.ruleset = ruleset
        self.regex_budget = regex_budget
        self.rules = ruleset.rules
        self._index = {r.id: i for i, r in enumerate(self.rules)}
        self._automaton: ahocorasick.Automaton | None = None
        self._regexes: list[tuple[int, int, int, Any, bool]] = []  # Any: regex.Pattern (untyped)
        self._regex_needs: list[frozenset[str] | None] = []  # per regex: literals of which one must occur
        self._fuzzy: list[_FuzzyEntry] = []
        self._fuzzy_cache: dict[str, tuple[tuple[str, int, float], ...]] = {}
        self._fuzzy_token_re: re.Pattern[str] | None = None
        self._needs_case_fold = False
        self._compile()

    # --- compilation -------------------------------------------------------------------------------

    def _terms(self, rule: Rule) -> Iterable[tuple[int, int, Term]]:
        for gi, group in enumerate(rule.groups):
            for ti, term in enumerate(group.terms):
                yield gi, ti, term
        for ti, term in enumerate(rule.exclude_terms):
            yield _EXCLUDE, ti, term

    def _compile(self) -> None:
        words: dict[str, list[_Entry]] = defaultdict(list)
        for ri, rule in enumerate(self.rules):
            for gi, ti, term in self._terms(rule):
                if term.regex is not None:
                    flags = 0 if term.case else regex.IGNORECASE
                    rx = regex.compile(fold_pattern(term.regex, keep_case=term.case), flags)
                    self._regexes.append((ri, gi, ti, rx, term.case))
                    self._needs_case_fold |= term.case
                    continue
                for alias in term.aliases:
                    cased = alias.cased if term.case else None
                    words[alias.folded].append(_Entry(ri, gi, ti, alias.text, cased, alias.prefix))
                    if term.fuzzy and alias.single_word and not alias.prefix:
                        window = max(2, round(len(alias.folded) * 0.25))
                        fe = _FuzzyEntry(ri, gi, ti, alias.text, alias.folded, term.fuzzy, window)
                        self._fuzzy.append(fe)
        if self._fuzzy:
            shortest = min(len(fe.folded) - fe.window for fe in self._fuzzy)
            self._fuzzy_token_re = word_pattern(max(1, shortest))
        if words:
            automaton = ahocorasick.Automaton()
            for key, entries in words.items():
                left = _is_word(key[0])
                right = _is_word(key[-1])
                exact = tuple(e for e in entries if not e.prefix)
                prefix = tuple(e for e in entries if e.prefix)
                automaton.add_word(key, (len(key), left, right, exact, prefix))
            automaton.make_automaton()
            self._automaton = automaton
        self._compile_regex_gates()

    # --- scanning ----------------------------------------------------------------------------------

    def _scan(self, item: Item) -> _Scan:
        folded = [fold(t) if (t := item.field_text(name)) else None for name in FIELDS]
        scan = _Scan(folded)
        for fi, ft in enumerate(folded):
            if ft is None or not ft.text:
                continue
            if self._automaton is not None:
                self._scan_exact(scan, fi, ft)
            if self._regexes:
                self._scan_regex(scan, fi, ft)
            if self._fuzzy:
                self._scan_fuzzy(scan, fi, ft)
        return scan

    def _scan_exact(self, scan: _Scan, fi: int, ft: FoldedText) -> None:
        assert self._automaton is not None
        text = ft.text
        n = len(text)
        hits = scan.hits
        for end, (klen, left, right, exact, prefix) in self._automaton.iter(text):
            start = end - klen + 1
            if left and start > 0 and _is_word(text[start - 1]):
                continue
            stop = end + 1
            if exact and (not right or stop >= n or not _is_word(text[stop])):
                for e in exact:
                    if e.cased is None or self._case_ok(ft, start, stop, e):
                        hits[e.rule].append(_Raw(e.group, e.term, e.alias, fi, start, stop, None))
            if prefix:
                word_end = _word_end(text, stop) if right else stop
                for e in prefix:
                    if e.cased is None or self._case_ok(ft, start, stop, e):
                        hits[e.rule].append(_Raw(e.group, e.term, e.alias, fi, start, word_end, None))

    @staticmethod
    def _case_ok(ft: FoldedText, start: int, stop: int, e: _Entry) -> bool:
        assert e.cased is not None
        written = fold_term(ft.original_text(start, stop), keep_case=True)
        return written.startswith(e.cased) if e.prefix else written == e.cased

    def _compile_regex_gates(self) -> None:
        """Literals each regex needs (any one of them), checked with a plain substring test first.

        Most items match no regex at all, and Python's regex engine tries a pattern at every position;
        a substring test in C rules out nearly every item first. Patterns with no required literal
        always run.
        """
        self._regex_needs = [
            required_literals(rx.pattern, re.IGNORECASE if rx.flags & regex.IGNORECASE else 0, case)
            for _, _, _, rx, case in self._regexes
        ]

    def _scan_regex(self, scan: _Scan, fi: int, ft: FoldedText) -> None:
        cased_ft = fold(ft.original, keep_case=True) if self._needs_case_fold else ft
        for (ri, gi, ti, rx, case), needs in zip(self._regexes, self._regex_needs, strict=True):
            target = cased_ft if case else ft
            if ri in scan.overrun or (needs is not None and not any(lit in target.text for lit in needs)):
                continue
            started = time.perf_counter()
            try:
                # concurrent=True releases the GIL while matching (the text is an immutable str).
                found = list(
                    rx.finditer(target.text, timeout=self.regex_budget - scan.spent[ri] + 1e-6, concurrent=True)
                )
            except TimeoutError:
                scan.overrun.add(ri)
                scan.hits.pop(ri, None)
                continue
            finally:
                scan.spent[ri] += time.perf_counter() - started
            for m in found:
                if m.end() > m.start():
                    # Case-sensitive regexes run on another folding; a negative field index says so.
                    field = -1 - fi if case else fi
                    scan.hits[ri].append(_Raw(gi, ti, rx.pattern, field, m.start(), m.end(), None))

    def _scan_fuzzy(self, scan: _Scan, fi: int, ft: FoldedText) -> None:
        # Whitespace-separated chunks are looked up in a cache of earlier verdicts; news vocabulary
        # repeats, so rapidfuzz runs only on chunks never seen before. Positions are found only for
        # the rare chunks that hold a fuzzy hit.
        assert self._fuzzy_token_re is not None
        cache = self._fuzzy_cache
        positive: dict[str, list[tuple[int, float]]] = {}
        for chunk in set(ft.text.split(" ")):
            found = cache.get(chunk)
            if found is None:
                found = tuple(
                    (word, idx, score)
                    for word in self._fuzzy_token_re.findall(chunk)
                    for idx, score in self._fuzzy_lookup(word)
                )
                if len(cache) >= _FUZZY_CACHE_MAX:
                    cache.clear()
                cache[chunk] = found
            for word, idx, score in found:
                positive.setdefault(word, []).append((idx, score))
        if not positive:
            return
        for tok in tokenize(ft.text):
            for idx, score in positive.get(tok.text, ()):
                fe = self._fuzzy[idx]
                scan.hits[fe.rule].append(_Raw(fe.group, fe.term, fe.alias, fi, tok.start, tok.end, score))

    def _fuzzy_lookup(self, token: str) -> tuple[tuple[int, float], ...]:
        out: list[tuple[int, float]] = []
        for idx, fe in enumerate(self._fuzzy):
            if token == fe.folded or abs(len(token) - len(fe.folded)) > fe.window:
                continue
            score = fuzz.ratio(fe.folded, token, score_cutoff=fe.threshold)
            if score:
                out.append((idx, round(score, 1)))
        return tuple(out)

    # --- judging -----------------------------------------------------------------------------------

    def score(self, item: Item, *, feed_tags: frozenset[str] = frozenset()) -> list[RuleMatch]:
        """The rules that fire for ``item``, in rule order (rules whose regex overran are left out)."""
        return self.score_checked(item, feed_tags=feed_tags).matches

    def score_checked(self, item: Item, *, feed_tags: frozenset[str] = frozenset()) -> Scored:
        """The rules that fire for ``item``, and the applicable rules skipped for a regex overrun."""
        scan = self._scan(item)
        out: list[RuleMatch] = []
        for ri in sorted(scan.hits):
            rule = self.rules[ri]
            if not rule.enabled or rule.not_applicable(item.feed, feed_tags) is not None:
                continue
            match = self._judge(rule, scan).to_match()
            if match is not None:
                out.append(match)
        overruns = tuple(
            self.rules[ri].id
            for ri in sorted(scan.overrun)
            if self.rules[ri].enabled and self.rules[ri].not_applicable(item.feed, feed_tags) is None
        )
        return Scored(out, overruns)

    def evaluate(
        self, item: Item, *, feed_tags: frozenset[str] = frozenset(), all_rules: bool = False
    ) -> list[Evaluation]:
        """Every applicable rule's verdict with reasons; ``all_rules`` adds disabled and filtered-out
        rules (not fired, with the reason they did not apply).
        """
        scan = self._scan(item)
        out: list[Evaluation] = []
        for rule in self.rules:
            skip = "rule is disabled" if not rule.enabled else rule.not_applicable(item.feed, feed_tags)
            if skip is None:
                out.append(self._judge(rule, scan))
            elif all_rules:
                out.append(Evaluation(rule.id, False, 0.0, Severity.INFO, (), (skip,), channels=rule.channels))
        return out

    def evaluate_rule(
        self, rule_id: str, item: Item, *, feed_tags: frozenset[str] = frozenset(), check_feed: bool = True
    ) -> Evaluation:
        """One rule's verdict, ignoring ``enabled`` (and feed filters unless ``check_feed``)."""
        rule = self.rules[self._index[rule_id]]
        skip = rule.not_applicable(item.feed, feed_tags) if check_feed else None
        if skip is not None:
            return Evaluation(rule.id, False, 0.0, Severity.INFO, (), (skip,), channels=rule.channels)
        return self._judge(rule, self._scan(item))

    def _judge(self, rule: Rule, scan: _Scan) -> Evaluation:
        ri = self._index[rule.id]
        if ri in scan.overrun:
            reason = (
                f"a regex term ran past its time budget ({self.regex_budget * 1000:g} ms); rule skipped for this item"
            )
            return Evaluation(rule.id, False, 0.0, Severity.INFO, (), (reason,), channels=rule.channels)
        factors = [rule.fields.get(name) for name in FIELDS]
        raws = _drop_nested([r for r in scan.hits.get(ri, ()) if factors[_field(r)] > 0])
        veto_groups = {i for i, g in enumerate(rule.groups) if g.name in rule.exclude_groups}
        by_term: dict[tuple[int, int], list[_Raw]] = defaultdict(list)
        seen: set[tuple[int, int, int, int]] = set()
        for r in raws:  # an exact and a fuzzy hit of one term on one word count as one
            if (key := (r.group, r.term, r.field, r.start)) not in seen:
                seen.add(key)
                by_term[(r.group, r.term)].append(r)
        hits: list[tuple[int, int, Hit]] = []
        vetoes: list[Hit] = []
        score = 0.0
        for (gi, ti), group_raws in by_term.items():
            group_raws.sort(key=lambda r: (_field(r), r.start))
            if gi == _EXCLUDE or gi in veto_groups:
                vetoes.append(self._hit(rule, scan, group_raws[0], 0.0))
                continue
            group = rule.groups[gi]
            term = group.terms[ti]
            weight = term.weight if term.weight is not None else group.weight
            best = max(group_raws, key=lambda r: (factors[_field(r)], -_field(r), -r.start))
            contribution = weight * factors[_field(best)]
            score += contribution
            shown = [best, *[r for r in group_raws if r is not best][: MAX_HITS_PER_TERM - 1]]
            for r in shown:
                hit = self._hit(rule, scan, r, contribution if r is best else 0.0)
                hits.append((_field(r), hit.start, hit))
        hits.sort(key=lambda h: (h[0], h[1]))
        score = round(score, 6)
        reasons: list[str] = []
        hit_groups = {gi for gi, _ in by_term if gi >= 0 and gi not in veto_groups}
        names = {g.name: i for i, g in enumerate(rule.groups)}
        for v in vetoes:
            reasons.append(f"excluded by {v.term!r} ({v.text!r} in {v.field})")
        for g in rule.require:
            if names[g] not in hit_groups:
                reasons.append(f"required group {g!r} had no hit")
        if rule.proximity is not None and not self._near(rule, scan, raws, names):
            gs = ", ".join(repr(g) for g in rule.proximity.groups)
            reasons.append(f"no hits of groups {gs} within {rule.proximity.words} words in one field")
        if not hits:
            reasons.append("no term matched")
        elif score < rule.threshold - 1e-9:
            reasons.append(f"score {score:g} below threshold {rule.threshold:g}")
        fired = not reasons
        severity = rule.severity.classify(score)
        if fired:
            reasons.append(f"score {score:g} reached threshold {rule.threshold:g}; severity {severity}")
        return Evaluation(
            rule.id, fired, score, severity, tuple(h for _, _, h in hits), tuple(reasons), tuple(vetoes),
            rule.channels,
        )  # fmt: skip

    def _near(self, rule: Rule, scan: _Scan, raws: list[_Raw], names: dict[str, int]) -> bool:
        """Whether some field has a hit of every proximity group within the word window."""
        assert rule.proximity is not None
        wanted = {names[g] for g in rule.proximity.groups}
        for fi in range(len(FIELDS)):
            points = sorted(
                (scan.token_index(fi, r.start), r.group) for r in raws if r.field == fi and r.group in wanted
            )  # case-sensitive regex hits (negative field) use another folding and are left out
            if _window_covers(points, wanted, rule.proximity.words):
                return True
        return False

    def _hit(self, rule: Rule, scan: _Scan, r: _Raw, contribution: float) -> Hit:
        fi = _field(r)
        ft = scan.folded[fi]
        assert ft is not None
        if r.field < 0:
            ft = fold(ft.original, keep_case=True)
        start, end = ft.span(r.start, r.end)
        if r.group == _EXCLUDE:
            group_name, term = EXCLUDE_GROUP, rule.exclude_terms[r.term]
        else:
            group = rule.groups[r.group]
            group_name, term = group.name, group.terms[r.term]
        return Hit(
            group=group_name, term=term.source, alias=r.alias if term.regex is None else term.source,
            field=FIELDS[fi], start=start, end=end, text=ft.original[start:end],
            contribution=round(contribution, 6), fuzzy=r.fuzzy,
        )  # fmt: skip


_MIN_LITERAL = 3


def required_literals(pattern: str, flags: int, case: bool) -> frozenset[str] | None:
    """Strings of which at least one occurs in any text ``pattern`` matches, or None if unknown.

    Walks the parsed pattern's top-level sequence: a run of literal characters is required, and so is
    a group that is an alternation of pure literals. The candidate whose shortest literal is longest
    wins. Case-insensitive literals are lower-cased, like the folded text they are checked against.
    """
    try:
        parsed = re._parser.parse(pattern, flags)  # type: ignore[attr-defined]
    except re.error:
        return None
    if case and flags & re.IGNORECASE:
        return None  # matched against cased text, yet ignoring case: a substring test would not do
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) >= _MIN_LITERAL:
            candidates.append(frozenset({"".join(run)}))
        run.clear()

    for op, av in parsed:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        close_run()
        branch = None
        if name == "BRANCH":  # a non-capturing group (?:a|b), or the whole pattern
            branch = _literal_branch([(op, av)])
        elif name == "SUBPATTERN" and not av[1] and not av[2]:
            branch = _literal_branch(av[3])
        if branch is not None:
            candidates.append(branch)
    close_run()
    candidates = [c for c in candidates if min(len(x) for x in c) >= _MIN_LITERAL]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: min(len(x) for x in c))
    return best if case else frozenset(x.casefold() for x in best)


def _literal_branch(sub: Any) -> frozenset[str] | None:
    """The alternatives of a group like ``(?:fighting|hostilities)`` when each is a pure literal."""
    items = list(sub)
    if len(items) != 1 or str(items[0][0]) != "BRANCH":
        return None
    out = set()
    for alternative in items[0][1][1]:
        chars = []
        for op, av in alternative:
            if str(op) != "LITERAL":
                return None
            chars.append(chr(av))
        out.add("".join(chars))
    return frozenset(out)


def _word_end(text: str, pos: int) -> int:
    m = _WORD_TAIL.match(text, pos)
    return m.end() if m else pos


def _field(r: _Raw) -> int:
    return r.field if r.field >= 0 else -1 - r.field


def _drop_nested(raws: list[_Raw]) -> list[_Raw]:
    """Within one group and field, a hit inside a longer hit of another term is the same mention
    ("Karabakh" inside "Nagorno-Karabakh") and does not count again.
    """
    if len(raws) < 2:
        return raws
    kept: list[_Raw] = []
    for r in sorted(raws, key=lambda r: (r.group, r.field, r.start, -r.end)):
        k = kept[-1] if kept else None
        if k and (k.group, k.field) == (r.group, r.field) and k.term != r.term and r.end <= k.end:
            continue  # sorted by start, so r.start >= k.start
        kept.append(r)
    return kept


def _window_covers(points: list[tuple[int, int]], wanted: set[int], words: int) -> bool:
    """Sliding window over (token index, group) sorted by index: all groups within ``words``."""
    counts: dict[int, int] = defaultdict(int)
    lo = 0
    for pos, group in points:
        counts[group] += 1
        while pos - points[lo][0] > words:
            counts[points[lo][1]] -= 1
            lo += 1
        if all(counts[g] > 0 for g in wanted):
            return True
    return False
