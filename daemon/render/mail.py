"""Mail-shaped renderings: the plain text body, the HTML body and the subject line."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from daemon.models import Alert, AlertKind
from daemon.render.common import (
    Segments,
    clean,
    digest_groups,
    entry_meta,
    fmt_time,
    headline,
    link_text_misleads,
    snippet_segments,
    storm_intro,
    term_rows,
    title_segments,
    truncate,
)
from daemon.util.urls import host_of, safe_link

SUBJECT_PREFIX = "[feedwatch]"
SUBJECT_MAX = 200  # characters; long enough to read, short enough for every client
_BLANK_RUNS = re.compile(r"\n{3,}")


# --- plain text --------------------------------------------------------------------------------


def _text_segments(segs: Segments) -> str:
    return "".join(f"*{t}*" if marked else t for t, marked in segs)


def render_text(alert: Alert) -> str:
    """Plain text body (the text/plain part of mail, the console)."""
    lines = [headline(alert), ""]
    if alert.kind is AlertKind.STORM:
        lines += [storm_intro(alert) + ":", ""]
        lines += _text_entry_lines(alert.entries)
    elif alert.kind is AlertKind.DIGEST:
        if clean(alert.title):
            lines += [clean(alert.title), ""]
        for rule_id, stories in digest_groups(alert):
            count = sum(len(s) for s in stories)
            lines += [f"== {clean(rule_id)} ({count} alert{'s' if count != 1 else ''}) ==", ""]
            for story in stories:  # every story: a digest stands for all the alerts it replaced
                lines += _text_entry_lines(story[:1])
                lines += [f"      also: {clean(e.feed)}: {clean(e.title)}" for e in story[1:]]
            lines.append("")
    else:
        lines += _text_single(alert)
    lines += ["", f"alert {clean(alert.alert_id)}"]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def _update_note(alert: Alert) -> str:
    note = "Update to story"
    if alert.thread_id and alert.thread_id != alert.alert_id:
        note += f" (first alert {clean(alert.thread_id)})"
    return f"{note}: {clean(alert.change)}" if clean(alert.change) else f"{note}:"


def _text_single(alert: Alert) -> list[str]:
    lines: list[str] = []
    if alert.kind is AlertKind.UPDATE:
        lines.append(_update_note(alert))
    lines.append(clean(alert.title))
    link = safe_link(alert.link)
    if link:
        lines.append(link)
    lines.append("")
    meta = [f"Feed: {clean(alert.feed)}"] if clean(alert.feed) else []
    if alert.published is not None:
        meta.append(f"Published: {fmt_time(alert.published)}")
    if meta:
        lines.append(" · ".join(meta))
    if alert.also_reported_by:
        lines.append("Also reported by: " + ", ".join(clean(f) for f in alert.also_reported_by))
    rows = term_rows(alert.hits)
    if rows:
        lines += ["", "Matched:"] + [f"  - {row.describe()}" for row in rows]
    snippet = snippet_segments(alert)
    if snippet:
        lines += ["", "  " + _text_segments(snippet)]
    if clean(alert.description):
        lines += ["", f"Rule: {clean(alert.description)}"]
    return lines


def _text_entry_lines(entries: Sequence[Alert]) -> list[str]:
    lines: list[str] = []
    for entry in entries:
        lines.append(f"  - {clean(entry.title)} [{entry_meta(entry)}]")
        link = safe_link(entry.link)
        if link:
            lines.append(f"    {link}")
    return lines


# --- HTML --------------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_segments(segs: Segments) -> str:
    return "".join(f"<mark>{_e(t)}</mark>" if marked else _e(t) for t, marked in segs)


def _html_link(url: str | None, inner_html: str, title: str) -> str:
    """The title linked; when the title names another site, the title plain and the real host linked."""
    link = safe_link(url)
    if link is None:
        return inner_html
    if link_text_misleads(title, link):
        return f'{inner_html} <a href="{_e(link)}">{_e(host_of(link))}</a>'
    return f'<a href="{_e(link)}">{inner_html}</a>'


def render_html(alert: Alert) -> str:
    """HTML body for mail: every feed string escaped, links only to http(s), matches in ``<mark>``."""
    body = [f'<p style="color:#555">{_e(headline(alert))}</p>']
    if alert.kind is AlertKind.STORM:
        body.append(f"<p>{_e(storm_intro(alert))}:</p>")
        body.append(_html_entry_list(alert.entries))
    elif alert.kind is AlertKind.DIGEST:
        body += _html_digest(alert)
    else:
        body += _html_single(alert)
    body.append(f'<p style="color:#888;font-size:small">alert {_e(clean(alert.alert_id))}</p>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        '<body style="font-family:sans-serif">\n' + "\n".join(body) + "\n</body></html>\n"
    )


def _html_digest(alert: Alert) -> list[str]:
    out = [f"<h2>{_e(clean(alert.title))}</h2>"] if clean(alert.title) else []
    for rule_id, stories in digest_groups(alert):
        out.append(f"<h3>{_e(clean(rule_id))}</h3><ul>")
        for story in stories:
            first, rest = story[0], story[1:]
            item = (
                f"{_html_link(first.link, _e(clean(first.title)), first.title)} <small>{_e(entry_meta(first))}</small>"
            )
            if rest:
                also = (
                    f"<li>{_html_link(e.link, _e(clean(e.title)), e.title)} <small>{_e(clean(e.feed))}</small></li>"
                    for e in rest
                )
                item += "<ul>" + "".join(also) + "</ul>"
            out.append(f"<li>{item}</li>")
        out.append("</ul>")
    return out


def _html_single(alert: Alert) -> list[str]:
    out: list[str] = []
    if alert.kind is AlertKind.UPDATE:
        out.append(f"<p><strong>{_e(_update_note(alert))}</strong></p>")
    out.append(f"<h2>{_html_link(alert.link, _html_segments(title_segments(alert)), alert.title)}</h2>")
    meta = [f"Feed: {_e(clean(alert.feed))}"] if clean(alert.feed) else []
    if alert.published is not None:
        meta.append(f"Published: {_e(fmt_time(alert.published))}")
    if meta:
        out.append(f"<p>{' · '.join(meta)}</p>")
    if alert.also_reported_by:
        out.append(f"<p>Also reported by: {_e(', '.join(clean(f) for f in alert.also_reported_by))}</p>")
    rows = term_rows(alert.hits)
    if rows:
        out.append("<p>Matched:</p><ul>" + "".join(f"<li>{_e(r.describe())}</li>" for r in rows) + "</ul>")
    snippet = snippet_segments(alert)
    if snippet:
        out.append(f"<blockquote>{_html_segments(snippet)}</blockquote>")
    if clean(alert.description):
        out.append(f"<p>Rule: {_e(clean(alert.description))}</p>")
    return out


def _html_entry_list(entries: Sequence[Alert]) -> str:
    items = [
        f"<li>{_html_link(e.link, _e(clean(e.title)), e.title)} <small>{_e(entry_meta(e))}</small></li>"
        for e in entries
    ]
    return "<ul>" + "".join(items) + "</ul>"


# --- mail subject ------------------------------------------------------------------------------


def email_subject(alert: Alert) -> str:
    """One clean line, e.g. ``[feedwatch] CRITICAL karabakh-fighting: Shelling near Martuni``."""
    sev = str(alert.severity).upper()
    rule = clean(alert.rule_id)
    title = clean(alert.title)
    if alert.kind is AlertKind.STORM:
        subject = f"{SUBJECT_PREFIX} {sev} {rule}: {len(alert.entries)} more items matched"
    elif alert.kind is AlertKind.DIGEST:
        subject = f"{SUBJECT_PREFIX} digest: {len(alert.entries)} alerts"
        if title.lower().startswith("digest:"):
            # The grouped title already reads "Digest: N alerts from M rules": say it once.
            subject = f"{SUBJECT_PREFIX} digest:{title[len('digest:') :]}"
        elif title:
            subject += f" · {title}"
    elif alert.kind is AlertKind.OPS:
        subject = f"{SUBJECT_PREFIX} OPS {sev}: {title}"
    elif alert.kind is AlertKind.TEST:
        subject = f"{SUBJECT_PREFIX} test: {title}"
    else:
        subject = f"{SUBJECT_PREFIX} {sev} {rule}: {title}"
        if alert.kind is AlertKind.UPDATE:
            # Replies thread under the first alert in clients that also compare subjects.
            subject = "Re: " + subject
    return truncate(clean(subject), SUBJECT_MAX)
