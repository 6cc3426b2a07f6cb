"""Score items against a RuleSet: one Aho-Corasick pass over folded text finds every exact term of
every rule (and the contexts of its ``unless`` exceptions), then each rule with hits is judged by
``daemon.rules.judge``. Word boundaries follow the script of the term (``daemon.util.scripts``). Pure.

Regex terms run on the ``regex`` engine with a time budget per rule and item, releasing the GIL while
they match: a pattern that backtracks catastrophically costs that rule that item (reported as an
overrun), never the thread or the event loop beside it.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

import ahocorasick

from daemon.models import Item, RuleMatch
from daemon.rules.judge import EXCLUDE, MAX_HITS_PER_TERM, Evaluation, Raw, Scan, fires, judge, not_applied
from daemon.rules.pattern import cased_regex, tail_regex
from daemon.rules.ruleset import Alias, Rule, RuleSet, Term
from daemon.rules.sre import required_literals
from daemon.util.scripts import Left, attaches, left_rule, proclitics_before, stem
from daemon.util.text import FoldedText, fold, fold_pattern, fold_term, tokenize, word_pattern

__all__ = ["MAX_HITS_PER_TERM", "REGEX_BUDGET", "Evaluation", "Matcher", "Scored", "required_literals"]

if not getattr(ahocorasick, "unicode", True):  # a bytes build would report byte offsets
    raise ImportError("pyahocorasick must be built with unicode support")

_PROCLITIC = Left.PROCLITIC
# The rest of a word after a wildcard's prefix: word characters, but not those of unspaced scripts.
_WORD_TAIL = re.compile(r"[^\W\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff]*")
# Chunks of text the fuzzy scan remembers as settled before it starts afresh. News adds about eight new
# chunks an item; each takes about 100 bytes to remember, so 100,000 held some 10 MB after a few weeks.
_FUZZY_CACHE_MAX = 30_000
# Characters of folded text, commonest first (folded text is lower case, its dashes spaces).
_COMMON_CHARS = " etaoinsrhldcumfpgwybvkxjqz.,0123456789'\":;()?!/&%$+#@*=[]|<>~^`{}\\_"
# Seconds all regex terms of one rule may spend on one item. Ordinary patterns need microseconds;
# a tenth of a second is far beyond them and short enough that a feed of hostile titles stays cheap.
REGEX_BUDGET = 0.1


@dataclass(frozen=True, slots=True)
class Scored:
    """The rules that fired for one item, and those skipped because a regex ran out of its budget."""

    matches: list[RuleMatch]
    overruns: tuple[str, ...] = ()


# An automaton key's payload is one flat tuple: the key's length, its left rule (daemon.util.scripts),
# whether a word may continue after it, its pattern entries (_Tailed), how many values its exact entries
# take, then its exact entries and its prefix entries, three values each: the target (rule, group, term,
# and whether it is an ``unless`` phrase of the term), the alias as written, and its keep-case fold for a
# case-sensitive term (else None). A pack repeats a list's spellings in every rule that names the list,
# and one target serves every alias of a term: a tuple per entry, and tuples in a tuple per key, took
# twice the memory, and scanning reads this as fast.
_Target = tuple[int, int, int, bool]
_EXACT = 5  # where the entries start


class _Tailed(NamedTuple):
    """A pattern alias's entry: the rest of a hit is verified where the anchor ends."""

    rule: int
    group: int
    term: int
    alias: str  # alias as written
    context: bool  # an ``unless`` phrase of the term, not the term
    tail: re.Pattern[str]
    cased_rx: re.Pattern[str] | None  # a case-sensitive pattern alias: the whole hit, case kept


class _FuzzyEntry(NamedTuple):
    rule: int
    group: int
    term: int
    alias: str
    folded: str
    threshold: float
    window: int


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
        self._fuzzy_terms: list[tuple[str, float, int, tuple[int, ...]]] = []  # (folded, threshold, window, entries)
        # Chunks whose fuzzy verdict is known, and the verdicts that found something (see _scan_fuzzy).
        self._fuzzy_known: tuple[set[str], dict[str, tuple[tuple[str, int, float], ...]]] = (set(), {})
        self._fuzzy_token_re: re.Pattern[str] | None = None
        self._ratio: Any = None  # rapidfuzz's fuzz.ratio, bound when the pack has fuzzy terms
        self._needs_case_fold = False
        # Per rule, its ``require`` entries as sets of group indices (any one of which must count).
        self._requires = [_required_groups(rule) for rule in self.rules]
        self._compile()

    # --- compilation -------------------------------------------------------------------------------

    def _terms(self, rule: Rule) -> Iterable[tuple[int, int, Term]]:
        for gi, group in enumerate(rule.groups):
            for ti, term in enumerate(group.terms):
                yield gi, ti, term
        for ti, term in enumerate(rule.exclude_terms):
            yield EXCLUDE, ti, term

    def _compile(self) -> None:
        words: dict[str, list[Any]] = {}  # per key, its automaton payload while it is built (see _add)
        targets: dict[_Target, _Target] = {}  # one tuple for each
        for ri, rule in enumerate(self.rules):
            for gi, ti, term in self._terms(rule):
                if term.regex is not None:
                    import regex  # here: a pack without regex terms need not load the engine (~1.3 MB)

                    flags = 0 if term.case else regex.IGNORECASE
                    rx = regex.compile(fold_pattern(term.regex, keep_case=term.case), flags)
                    self._regexes.append((ri, gi, ti, rx, term.case))
                    self._needs_case_fold |= term.case
                    continue
                for alias in term.aliases:
                    _add(words, targets, (ri, gi, ti, False), alias, term.case)
                    if term.fuzzy and alias.single_word and not alias.prefix:
                        window = max(2, round(len(alias.folded) * 0.25))
                        fe = _FuzzyEntry(ri, gi, ti, alias.text, alias.folded, term.fuzzy, window)
                        self._fuzzy.append(fe)
                for alias in term.unless:
                    _add(words, targets, (ri, gi, ti, True), alias, False)
        if self._fuzzy:
            from rapidfuzz import fuzz  # here: a pack without fuzzy terms never maps its C++ library

            self._ratio = fuzz.ratio
            shortest = min(len(fe.folded) - fe.window for fe in self._fuzzy)
            self._fuzzy_token_re = word_pattern(max(1, shortest))
            # Shared lists repeat one spelling in many rules: each spelling is compared (and
            # threshold) once per word, and the verdict goes to every entry that has it.
            same: dict[tuple[str, float, int], list[int]] = defaultdict(list)
            for idx, fe in enumerate(self._fuzzy):
                same[(fe.folded, fe.threshold, fe.window)].append(idx)
            self._fuzzy_terms = [(f, t, w, tuple(ix)) for (f, t, w), ix in same.items()]
        if words:
            automaton = ahocorasick.Automaton()
            # pyahocorasick looks a character up among a node's children one by one, in the order they
            # were added: at the root a space or a comma, which no term starts with, was compared with
            # every first letter of every term. Keys that never match (they end in NUL, which folded
            # text never holds: fold makes every control character a space) put the commonest
            # characters of folded text first; matches are the same, as the new nodes end no term.
            for ch in _COMMON_CHARS:
                automaton.add_word(ch + "\x00", (2, Left.FREE, False, (), 0))
            for key in list(words):
                payload = words.pop(key)  # each list let go as soon as its tuple is made
                payload[3] = tuple(payload[3])
                automaton.add_word(key, tuple(payload))
            automaton.make_automaton()
            self._automaton = automaton
        self._compile_regex_gates()

    # --- scanning ----------------------------------------------------------------------------------

    def _scan(self, item: Item) -> Scan:
        folded = [fold(t) if t else None for t in (item.title, item.summary, item.content)]  # models.FIELDS
        scan = Scan(folded)
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

    def _scan_exact(self, scan: Scan, fi: int, ft: FoldedText) -> None:
        assert self._automaton is not None
        text = ft.text
        n = len(text)
        hits = scan.hits
        for end, payload in self._automaton.iter(text):
            start = end - payload[0] + 1
            # A term starting inside a word is no hit, unless the script attaches proclitics.
            left = payload[1]
            if (
                left
                and start > 0
                and attaches(text[start - 1])
                and (left is not _PROCLITIC or not proclitics_before(text, start))
            ):
                continue
            stop = end + 1
            exact_end = _EXACT + payload[4]
            if exact_end > _EXACT and (not payload[2] or stop >= n or not attaches(text[stop])):
                it = islice(payload, _EXACT, exact_end)
                for (ri, gi, ti, context), alias, cased in zip(it, it, it, strict=True):  # three at a time
                    if cased is None or self._case_ok(ft, start, stop, cased, False):
                        hits[ri].append(Raw(gi, ti, alias, fi, start, stop, None, context))
            if len(payload) > exact_end:
                word_end = _word_end(text, stop) if payload[2] else stop
                it = islice(payload, exact_end, None)
                for (ri, gi, ti, context), alias, cased in zip(it, it, it, strict=True):
                    if cased is None or self._case_ok(ft, start, stop, cased, True):
                        hits[ri].append(Raw(gi, ti, alias, fi, start, word_end, None, context))
            if payload[3]:
                self._scan_tails(scan, fi, ft, start, stop, payload[3])

    @staticmethod
    def _scan_tails(scan: Scan, fi: int, ft: FoldedText, start: int, stop: int, tailed: tuple[_Tailed, ...]) -> None:
        """Pattern aliases whose first words were found at ``start:stop``: the rest is checked right after."""
        for e in tailed:
            m = e.tail.match(ft.text, stop)
            if m is None:
                continue
            if e.cased_rx is None or e.cased_rx.fullmatch(fold_term(ft.original_text(start, m.end()), keep_case=True)):
                scan.hits[e.rule].append(Raw(e.group, e.term, e.alias, fi, start, m.end(), None, e.context))

    @staticmethod
    def _case_ok(ft: FoldedText, start: int, stop: int, cased: str, prefix: bool) -> bool:
        written = fold_term(ft.original_text(start, stop), keep_case=True)
        cased = stem(cased)
        return written.startswith(cased) if prefix else written == cased

    def _compile_regex_gates(self) -> None:
        """Literals each regex needs (any one of them), checked with a plain substring test first.

        Most items match no regex at all, and Python's regex engine tries a pattern at every position;
        a substring test in C rules out nearly every item first. Patterns with no required literal
        always run.
        """
        self._regex_needs = [
            required_literals(rx.pattern, re.IGNORECASE if rx.flags & re.IGNORECASE else 0, case)  # same bit
            for _, _, _, rx, case in self._regexes
        ]

    def _scan_regex(self, scan: Scan, fi: int, ft: FoldedText) -> None:
        cased_ft = fold(ft.original, keep_case=True) if self._needs_case_fold else ft
        for (ri, gi, ti, rx, case), needs in zip(self._regexes, self._regex_needs, strict=True):
            target = cased_ft if case else ft
            if ri in scan.overrun:
                continue
            if needs is not None:
                for lit in needs:  # a plain loop: twice as fast as any() over a generator here
                    if lit in target.text:
                        break
                else:
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
                    scan.hits[ri].append(Raw(gi, ti, rx.pattern, field, m.start(), m.end(), None))

    def _scan_fuzzy(self, scan: Scan, fi: int, ft: FoldedText) -> None:
        # Whitespace-separated chunks never seen before are compared with the fuzzy spellings; news vocabulary
        # repeats, so set operations in C settle nearly every chunk, and only the rare chunks that hold a
        # fuzzy hit are kept with their verdict. Positions are found only for those. The two collections
        # are swapped out together when full, never cleared, so a call beside another thread sees a
        # consistent pair. Every chunk holding a word contributes that word's same list of entries, so
        # the order chunks are visited in changes nothing.
        assert self._fuzzy_token_re is not None
        seen, found_in = self._fuzzy_known
        if len(seen) >= _FUZZY_CACHE_MAX:
            seen, found_in = self._fuzzy_known = (set(), {})
        chunks = ft.text.split(" ")
        for chunk in () if seen.issuperset(chunks) else set(chunks) - seen:
            found = tuple(
                (word, idx, score)
                for word in self._fuzzy_token_re.findall(chunk)
                for idx, score in self._fuzzy_lookup(word)
            )
            seen.add(chunk)
            if found:
                found_in[chunk] = found
        if found_in.keys().isdisjoint(chunks):
            return
        hit_chunks = found_in.keys() & set(chunks)
        positive: dict[str, list[tuple[int, float]]] = {}
        for chunk in hit_chunks:
            for word, idx, score in found_in[chunk]:
                positive.setdefault(word, []).append((idx, score))
        for tok in tokenize(ft.text):
            for idx, score in positive.get(tok.text, ()):
                fe = self._fuzzy[idx]
                scan.hits[fe.rule].append(Raw(fe.group, fe.term, fe.alias, fi, tok.start, tok.end, score))

    def _fuzzy_lookup(self, token: str) -> tuple[tuple[int, float], ...]:
        out: list[tuple[int, float]] = []
        for folded, threshold, window, indices in self._fuzzy_terms:
            if token == folded or abs(len(token) - len(folded)) > window:
                continue
            score = self._ratio(folded, token, score_cutoff=threshold)
            if score:
                out += [(idx, round(score, 1)) for idx in indices]
        out.sort()  # entry order, as if each entry had been compared on its own
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
            raws = scan.hits[ri]
            if self._requires[ri]:
                # A group counts only with a hit of its own (not an ``unless`` context): most rules with a
                # hit on an item have none in a required group, and need no judging at all.
                groups = {r.group for r in raws if not r.context}
                if any(groups.isdisjoint(need) for need in self._requires[ri]):
                    continue
            if fires(rule, scan, raws):
                match = judge(rule, scan, raws).to_match()
                if match is not None:
                    out.append(match)
        if not scan.overrun:
            return Scored(out)
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
        for ri, rule in enumerate(self.rules):
            skip = "rule is disabled" if not rule.enabled else rule.not_applicable(item.feed, feed_tags)
            if skip is None:
                out.append(self._judge(ri, rule, scan))
            elif all_rules:
                out.append(not_applied(rule, skip))
        return out

    def evaluate_rule(
        self, rule_id: str, item: Item, *, feed_tags: frozenset[str] = frozenset(), check_feed: bool = True
    ) -> Evaluation:
        """One rule's verdict, ignoring ``enabled`` (and feed filters unless ``check_feed``)."""
        rule = self.rules[self._index[rule_id]]
        skip = rule.not_applicable(item.feed, feed_tags) if check_feed else None
        if skip is not None:
            return not_applied(rule, skip)
        return self._judge(self._index[rule_id], rule, self._scan(item))

    def _judge(self, ri: int, rule: Rule, scan: Scan) -> Evaluation:
        if ri in scan.overrun:
            budget = f"{self.regex_budget * 1000:g} ms"
            return not_applied(rule, f"a regex term ran past its time budget ({budget}); rule skipped for this item")
        return judge(rule, scan, scan.hits.get(ri, []))


def _required_groups(rule: Rule) -> tuple[frozenset[int], ...]:
    names = {g.name: i for i, g in enumerate(rule.groups)}
    return tuple(frozenset(names[g] for g in entry.split("|") if g in names) for entry in rule.require)


def _add(
    words: dict[str, list[Any]], targets: dict[_Target, _Target], target: _Target, alias: Alias, case: bool
) -> None:
    """Adds the entry of one alias (or ``unless`` phrase) of a term to its key's payload, a list laid out
    as the tuple it becomes (its pattern entries a list too). Lists grow in place: building each payload
    as a longer tuple left thousands of discarded ones in the interpreter's tuple free lists."""
    key = stem(alias.folded)
    payload = words.get(key)
    if payload is None:
        payload = words[key] = [len(key), left_rule(key), attaches(key[-1]), [], 0]
    target = targets.setdefault(target, target)
    if alias.steps:
        ri, gi, ti, context = target
        cased_rx = cased_regex(alias) if case else None
        payload[3].append(_Tailed(ri, gi, ti, alias.text, context, tail_regex(alias), cased_rx))
    elif alias.prefix:
        payload += (target, alias.text, alias.cased if case else None)
    else:
        exact_end = _EXACT + payload[4]
        payload[exact_end:exact_end] = (target, alias.text, alias.cased if case else None)
        payload[4] += 3


def _word_end(text: str, pos: int) -> int:
    m = _WORD_TAIL.match(text, pos)
    return m.end() if m else pos
