"""Rendering helpers shared by every format: cleaning feed text, safe links, highlights, grouping."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.models import Alert, AlertKind, Hit
from daemon.util.durations import format_duration
from daemon.util.urls import host_of

SNIPPET_MAX = 300  # characters of snippet shown around the first highlight
ELLIPSIS = "…"

# C0/C1 controls, line/paragraph separators and bidi overrides (they can disguise a subject or link).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    """One line of feed text: controls and line breaks become spaces, runs of spaces collapse."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


# Something a reader takes for a site: a URL, or a dotted name ending in a 2+ letter label (bank.example).
_SITE = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9])\b")


def link_text_misleads(title: str, link: str) -> bool:
    """True when ``title`` names a site other than the one ``link`` goes to (or a parent of it)."""
    host = host_of(link)
    for m in _SITE.finditer(title):
        named = m.group(1).lower()
        if named != host and not host.endswith("." + named):
            return True
    return False


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary when one is near, with ``…``."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def fmt_score(score: float) -> str:
    return f"{round(score, 2):g}"


def fmt_time(value: datetime) -> str:
    """UTC, minute precision; a naive datetime is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


# --- pieces shared by every format -------------------------------------------------------------

Segments = list[tuple[str, bool]]  # (text, highlighted)


@dataclass(frozen=True, slots=True)
class TermRow:
    """One matched term, folded over all its hits."""

    group: str
    term: str
    found: str  # the original text that matched (first hit)
    alias: str
    fields: tuple[str, ...]
    contribution: float
    fuzzy: float | None

    def describe(self) -> str:
        shown = self.found
        if self.fuzzy is not None:
            shown += f" (≈ {self.alias}, {self.fuzzy:.0f}%)"
        elif self.found.casefold() != self.alias.casefold():
            shown += f" ({self.alias})"
        return f"{shown} [{self.group}] in {', '.join(self.fields)} ({round(self.contribution, 2):+g})"


def term_rows(hits: Iterable[Hit]) -> list[TermRow]:
    """Hits folded per (group, term) in first-seen order, with the fields each term hit."""
    rows: dict[tuple[str, str], TermRow] = {}
    for hit in hits:
        key = (hit.group, hit.term)
        row = rows.get(key)
        if row is None:
            rows[key] = TermRow(
                hit.group,
                hit.term,
                clean(hit.text),
                clean(hit.alias),
                (hit.field,),
                hit.contribution,
                hit.fuzzy,
            )
            continue
        fields = row.fields if hit.field in row.fields else (*row.fields, hit.field)
        rows[key] = TermRow(
            row.group, row.term, row.found, row.alias, fields, row.contribution + hit.contribution, row.fuzzy
        )
    return list(rows.values())


def _segments(text: str, spans: Sequence[tuple[int, int]]) -> Segments:
    """Split ``text`` into plain and highlighted parts; overlapping spans are merged."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: Segments = []
    pos = 0
    for start, end in merged:
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def title_segments(alert: Alert) -> Segments:
    """The title with the spans of title hits marked, when those spans still fit the title."""
    title = clean(alert.title)
    spans = [
        (h.start, h.end)
        for h in alert.hits
        if h.field == "title" and 0 <= h.start < h.end <= len(alert.title) and alert.title[h.start : h.end] == h.text
    ]
    if spans and title == alert.title:
        return _segments(title, spans)
    return _segments(title, _find_spans(title, [h.text for h in alert.hits]))


def _find_spans(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    """Case-insensitive whole-word occurrences of ``needles`` (no casefold: it would shift offsets)."""
    words = sorted({clean(n) for n in needles if clean(n)}, key=len, reverse=True)
    if not words:
        return []
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]


def snippet_segments(alert: Alert, limit: int = SNIPPET_MAX) -> Segments:
    """A short window of the snippet around its first match, matched terms marked."""
    text = clean(alert.snippet)
    if not text:
        return []
    spans = _find_spans(text, [h.text for h in alert.hits])
    if len(text) > limit:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - limit // 4, len(text) - limit))
        if start > 0:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < first else start
        end = start + limit
        window = text[start:end]
        if end < len(text):
            space = window.rfind(" ")
            window = window[:space] if space > limit // 2 else window
        spans = [(s - start, e - start) for s, e in spans if s >= start and e <= start + len(window)]
        segs = _segments(window, spans)
        if start > 0:
            segs.insert(0, (ELLIPSIS, False))
        if start + len(window) < len(text):
            segs.append((ELLIPSIS, False))
        return segs
    return _segments(text, spans)


def storm_window(alert: Alert) -> str:
    """How far back the folded entries reach, e.g. "14 min"."""
    times = [e.created_at for e in alert.entries]
    if not times:
        return "0 s"
    try:
        return format_duration((alert.created_at - min(times)).total_seconds())
    except TypeError:  # naive and aware datetimes mixed: nothing sensible to say
        return "a short while"


def digest_groups(alert: Alert) -> list[tuple[str, list[list[Alert]]]]:
    """Digest entries grouped by rule, then by story; most severe first, then by score."""

    def rank(entries: Sequence[Alert]) -> tuple[int, float]:
        return (-max(e.severity for e in entries), -max(e.score for e in entries))

    by_rule: dict[str, dict[str, list[Alert]]] = {}
    for n, entry in enumerate(alert.entries):
        stories = by_rule.setdefault(entry.rule_id, {})
        stories.setdefault(entry.story_id or f"\x00{n}", []).append(entry)
    out: list[tuple[str, list[list[Alert]]]] = []
    for rule_id, stories in by_rule.items():
        ordered = [sorted(s, key=lambda e: (-e.severity, -e.score)) for s in stories.values()]
        ordered.sort(key=rank)
        out.append((rule_id, ordered))
    out.sort(key=lambda item: (rank([e for s in item[1] for e in s]), item[0]))
    return out


def headline(alert: Alert) -> str:
    """Severity, rule and score, e.g. "CRITICAL · karabakh-fighting · score 7.5"."""
    sev = str(alert.severity).upper()
    if alert.kind is AlertKind.OPS:
        return f"OPS · {sev}"
    if alert.kind is AlertKind.TEST:
        return "TEST"
    if alert.kind is AlertKind.DIGEST:
        return f"DIGEST · {len(alert.entries)} alerts"
    parts = [sev, clean(alert.rule_id)]
    if alert.kind is AlertKind.STORM:
        parts.append(f"{len(alert.entries)} more items")
    else:
        parts.append(f"score {fmt_score(alert.score)}")
    return " · ".join(parts)


def storm_intro(alert: Alert) -> str:
    return f"{len(alert.entries)} more items matched {clean(alert.rule_id)} in the last {storm_window(alert)}"


def entry_meta(entry: Alert) -> str:
    return f"{entry.severity} {fmt_score(entry.score)} · {clean(entry.feed)}"
