"""Slack Block Kit rendering: escaped, mention-proof and cut to Slack's size limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.models import Alert, AlertKind, Severity
from daemon.render.common import (
    ELLIPSIS,
    Segments,
    clean,
    digest_groups,
    entry_meta,
    fmt_score,
    fmt_time,
    headline,
    link_text_misleads,
    snippet_segments,
    storm_intro,
    term_rows,
)
from daemon.util.urls import host_of, safe_link

# --- Slack Block Kit ---------------------------------------------------------------------------

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_BLOCKS_MAX = 50
SLACK_TEXT_MAX = 40000
SLACK_TITLE_MAX = 300  # a title in a list line; keeps several entries per section
SLACK_URL_MAX = 2000  # longer links are shown unlinked rather than squeezing out the title

SEVERITY_EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}

# & < > are Slack's control characters (<!channel>, <url|text>); a word joiner after "@" stops
# "@here"/"@channel" from ever being parsed as a mention while reading the same.
_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "@": "@\u2060"}
_SLACK_TABLE = str.maketrans(_SLACK_ESCAPES)


def slack_escape(text: str) -> str:
    return text.translate(_SLACK_TABLE)


def _units(text: str) -> int:
    """Length as Slack may count it (UTF-16 code units): never under-counts astral characters."""
    return len(text.encode("utf-16-le")) // 2


def _slack_fit(raw: str, limit: int) -> str:
    """Escaped ``raw`` of at most ``limit`` units, cut between escapes (never inside ``&amp;``)."""
    out = slack_escape(raw)
    if _units(out) <= limit:
        return out
    pieces: list[str] = []
    used = 0
    for ch in raw:
        esc = _SLACK_ESCAPES.get(ch, ch)
        n = _units(esc)
        if used + n > limit - 1:
            break
        pieces.append(esc)
        used += n
    return "".join(pieces).rstrip() + ELLIPSIS


def _slack_segments(segs: Segments, limit: int) -> str:
    """Segments as mrkdwn with *bold* highlights, at most ``limit`` units."""
    out: list[str] = []
    used = 0
    for text, marked in segs:
        wrap = 2 if marked and text.strip() else 0
        esc = slack_escape(text)
        room = limit - used - wrap
        if room <= 1:
            break
        if _units(esc) > room:
            esc = _slack_fit(text, room)
            out.append(f"*{esc}*" if wrap else esc)
            break
        out.append(f"*{esc}*" if wrap else esc)
        used += _units(esc) + wrap
    return "".join(out)


def _slack_link(url: str | None, title: str, limit: int = SLACK_TITLE_MAX) -> str:
    """``<url|title>`` for a safe http(s) URL, otherwise just the escaped title."""
    link = safe_link(url)
    if link is None or len(link) > SLACK_URL_MAX:
        return _slack_fit(title, limit)
    href = slack_escape(link).replace("|", "%7C").replace("@\u2060", "@")
    if link_text_misleads(title, link):  # the title names another site: link the real host instead
        return f"{_slack_fit(title, limit)} <{href}|{slack_escape(host_of(link))}>"
    return f"<{href}|{_slack_fit(title or link, limit)}>"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _header(raw: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _slack_fit(raw, SLACK_HEADER_MAX), "emoji": True},
    }


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(p) for p in parts[:10] if p]}


def _line_sections(lines: Sequence[str]) -> list[tuple[dict[str, Any], int]]:
    """Pack mrkdwn lines into as few sections as fit; each paired with how many lines it holds."""
    out: list[tuple[dict[str, Any], int]] = []
    chunk: list[str] = []
    used = 0
    for line in lines:
        n = _units(line) + 1
        if chunk and used + n > SLACK_SECTION_MAX:
            out.append((_section("\n".join(chunk)), len(chunk)))
            chunk, used = [], 0
        chunk.append(line)
        used += n
    if chunk:
        out.append((_section("\n".join(chunk)), len(chunk)))
    return out


def _slack_entry_line(entry: Alert, bullet: str = "•") -> str:
    return f"{bullet} {_slack_link(entry.link, clean(entry.title))} · {_slack_fit(entry_meta(entry), 200)}"


def _slack_single(alert: Alert) -> list[dict[str, Any]]:
    lead = ""
    if alert.kind is AlertKind.UPDATE:
        change = f": {_slack_fit(clean(alert.change), 300)}" if clean(alert.change) else ""
        lead = f":arrow_right_hook: *Update to story*{change}\n"
    title = clean(alert.title) or "(no title)"
    blocks = [_section(f"{lead}*{_slack_link(alert.link, title, SLACK_SECTION_MAX - 2200)}*")]
    fields = [f"*Severity*\n{SEVERITY_EMOJI[alert.severity]} {alert.severity}"]
    if clean(alert.rule_id):
        fields.append(f"*Rule*\n{_slack_fit(clean(alert.rule_id), SLACK_FIELD_MAX - 10)}")
    if alert.kind not in (AlertKind.OPS, AlertKind.TEST):
        fields.append(f"*Score*\n{fmt_score(alert.score)}")
    if clean(alert.feed):
        fields.append(f"*Feed*\n{_slack_fit(clean(alert.feed), SLACK_FIELD_MAX - 10)}")
    blocks.append({"type": "section", "fields": [_mrkdwn(f) for f in fields]})
    rows = term_rows(alert.hits)
    if rows:
        listed = "\n".join(f"• {row.describe()}" for row in rows)
        blocks.append(_section("*Matched*\n" + _slack_fit(listed, SLACK_SECTION_MAX - 20)))
    snippet = snippet_segments(alert)
    if snippet:
        blocks.append(_section("> " + _slack_segments(snippet, SLACK_SECTION_MAX - 10)))
    context = []
    if alert.published is not None:
        context.append(f"Published {fmt_time(alert.published)}")
    if alert.also_reported_by:
        also = ", ".join(clean(f) for f in alert.also_reported_by)
        context.append("Also reported by " + _slack_fit(also, SLACK_FIELD_MAX))
    if clean(alert.description):
        context.append("Rule: " + _slack_fit(clean(alert.description), SLACK_FIELD_MAX))
    context.append(f"alert {_slack_fit(clean(alert.alert_id), 200)}")
    blocks.append(_context(*context))
    return blocks


def _slack_lists(alert: Alert) -> list[tuple[dict[str, Any], int]]:
    """Storm and digest bodies as (block, entries it lists) pairs, before the block cap."""
    if alert.kind is AlertKind.STORM:
        intro = _section(slack_escape(storm_intro(alert)) + ":")
        return [(intro, 0), *_line_sections([_slack_entry_line(e) for e in alert.entries])]
    out: list[tuple[dict[str, Any], int]] = []
    if clean(alert.title):
        out.append((_section("*" + _slack_fit(clean(alert.title), SLACK_SECTION_MAX - 2) + "*"), 0))
    for rule_id, stories in digest_groups(alert):
        count = sum(len(s) for s in stories)
        heading = f"*{_slack_fit(clean(rule_id), 500)}* · {count} alert{'s' if count != 1 else ''}"
        lines = []
        for story in stories:
            lines.append(_slack_entry_line(story[0]))
            lines += [_slack_entry_line(e, "    ◦") for e in story[1:]]
        out += [({"type": "divider"}, 0), (_section(heading), 0), *_line_sections(lines)]
    return out


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Block Kit message with a plain ``text`` fallback; feed text cannot ping, link or overflow."""
    sev = str(alert.severity).upper()
    if alert.kind is AlertKind.DIGEST:
        heading = f"feedwatch digest · {len(alert.entries)} alerts"
    elif alert.kind is AlertKind.STORM:
        heading = f"{sev} · {clean(alert.rule_id)}: {len(alert.entries)} more items"
    elif alert.kind in (AlertKind.OPS, AlertKind.TEST):
        heading = f"{headline(alert)}: {clean(alert.title)}"
    else:
        heading = f"{'Update · ' if alert.kind is AlertKind.UPDATE else ''}{sev} · {clean(alert.rule_id)}"
    blocks = [_header(heading)]
    if alert.kind in (AlertKind.STORM, AlertKind.DIGEST):
        body = _slack_lists(alert)
        room = SLACK_BLOCKS_MAX - len(blocks) - 1  # one block kept for "... and N more"
        kept, dropped = body[:room], body[room:]
        blocks += [block for block, _ in kept]
        hidden = sum(n for _, n in dropped)
        if hidden:
            blocks.append(_context(f"… and {hidden} more not shown"))
        elif dropped:
            blocks += [block for block, _ in dropped[:1]]
    else:
        blocks += _slack_single(alert)
    fallback = f"{headline(alert)}: {clean(alert.title)}" if clean(alert.title) else headline(alert)
    return {
        "text": _slack_fit(fallback, SLACK_TEXT_MAX),
        "blocks": blocks[:SLACK_BLOCKS_MAX],
        "unfurl_links": False,
        "unfurl_media": False,
    }
