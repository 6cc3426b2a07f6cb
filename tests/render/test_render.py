"""Rendering is pure and hostile feed text arrives inert in Slack, mail headers, HTML and webhooks."""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from daemon.models import Alert, AlertKind, Hit, Severity, alert_from_dict
from daemon.notify.email import build_message, message_id
from daemon.render import (
    WEBHOOK_SCHEMA,
    clean,
    email_subject,
    render_html,
    render_text,
    safe_link,
    slack_payload,
    webhook_payload,
)
from daemon.render.common import digest_groups, snippet_segments, term_rows, truncate
from daemon.render.slack import (
    SLACK_BLOCKS_MAX,
    SLACK_FIELD_MAX,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    SLACK_TEXT_MAX,
)
from daemon.util.durations import format_duration

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SAFE_URL = "https://news.example.org/martuni?a=1&b=2"


def alert(**changes: Any) -> Alert:
    base = Alert(
        alert_id="a1",
        kind=AlertKind.NEW,
        rule_id="karabakh-fighting",
        severity=Severity.CRITICAL,
        score=7.5,
        title="Shelling near Martuni",
        link=SAFE_URL,
        feed="caucasus-wire",
        created_at=NOW,
        story_id="s1",
        published=NOW - timedelta(minutes=5),
        snippet="Residents said shelling near Martuni went on overnight.",
        description="Fighting around Nagorno-Karabakh",
        hits=(
            Hit("escalation", "shelling", "shelling", "title", 0, 8, "Shelling", 2.0),
            Hit("places", "Martuni", "Martuni", "title", 14, 21, "Martuni", 1.0),
            Hit("places", "Martuni", "Martuni", "summary", 28, 35, "Martuni", 0.0),
        ),
        also_reported_by=("rferl", "bbc-ru"),
    )
    return replace(base, **changes)


HOSTILE = {
    "channel-ping": "<!channel> fighting near Martuni",
    "forged-link": "Read <https://evil.example|click here> now",
    "here-ping": "@here @channel @everyone shelling",
    "header-injection": "Shelling\r\nBcc: x@y.example\r\nX-Evil: 1",
    "script": "<script>alert(1)</script> shelling",
    "entities": "AT&T &amp; <b>bold</b> > less < more",
    "bidi": "Shelling \u202ereversed\u202c near Martuni",
    "nul-and-controls": "Shel\x00ling\x1b[31m near\x7f Martuni",
    "long": "Shelling near Martuni " * 2000,
    "long-astral": "🚀" * 5000,
    "long-entities": "<&>" * 5000,
}
HOSTILE_LINKS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https://evil.example/a b",
    "https://evil.example/\r\nBcc: x@y",
    "ftp://evil.example/x",
    "",
]


def hostile_alert(text: str, link: str | None = SAFE_URL) -> Alert:
    return alert(
        title=text,
        snippet=text,
        feed=text[:200],
        description=text[:500],
        also_reported_by=(text[:100],),
        link=link,
        hits=(Hit("g", "Martuni", "Martuni", "summary", 0, 7, "Martuni", 1.0),),
    )


def storm(n: int, title: str = "Item") -> Alert:
    entries = tuple(
        alert(
            alert_id=f"e{i}",
            title=f"{title} {i}",
            created_at=NOW - timedelta(minutes=i),
            link=f"https://x.example/{i}",
        )
        for i in range(n)
    )
    return alert(alert_id="storm", kind=AlertKind.STORM, severity=Severity.WARNING, title="", entries=entries)


def all_texts(payload: Any) -> list[str]:
    """Every "text" string in a Block Kit payload, at any depth."""
    out: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                out += all_texts(value)
    elif isinstance(payload, list):
        for value in payload:
            out += all_texts(value)
    return out


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


OUR_LINK = re.compile(r"<https?://[^<>|\s]+\|[^<>]*>")


class TestSlackInert:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_no_control_sequences_survive(self, name: str) -> None:
        """Feed text cannot open a Slack control sequence: only our own <url|text> links contain < or >."""
        texts = all_texts(slack_payload(hostile_alert(HOSTILE[name])))
        for text in texts:
            stripped = OUR_LINK.sub("", text).removeprefix("> ")  # our own quote marker
            assert not set("<>") & set(stripped), text[:200]
            assert "<!" not in text
            assert not re.search(r"@(here|channel|everyone)\b", text)
        links = [m.group(0) for text in texts for m in OUR_LINK.finditer(text)]
        assert all(link.startswith("<https://news.example.org/martuni?a=1&amp;b=2|") for link in links)

    def test_escapes_are_slack_entities(self) -> None:
        """& < > become &amp; &lt; &gt; and @here gets a word joiner so it reads the same but never pings."""
        payload = slack_payload(hostile_alert("<!channel> AT&T @here"))
        section = payload["blocks"][1]["text"]["text"]
        assert "&lt;!channel&gt; AT&amp;T @\u2060here" in section

    @pytest.mark.parametrize("link", HOSTILE_LINKS)
    def test_unsafe_links_are_not_linked(self, link: str) -> None:
        """Only absolute http(s) URLs become <url|text> links; anything else is shown as text or dropped."""
        payload = slack_payload(alert(link=link))
        assert not any(OUR_LINK.search(t) for t in all_texts(payload))
        assert "javascript:" not in json.dumps(payload).lower()

    def test_link_with_pipe_and_brackets(self) -> None:
        """A pipe or angle bracket in a URL cannot end the link early."""
        url = "https://news.example.org/a|b>c"
        payload = slack_payload(alert(link=url))
        section = payload["blocks"][1]["text"]["text"]
        assert section == "*<https://news.example.org/a%7Cb&gt;c|Shelling near Martuni>*"

    @pytest.mark.parametrize("name", ["long", "long-astral", "long-entities"])
    def test_limits_respected_with_clean_cut(self, name: str) -> None:
        """Every part stays within Slack's limits and ends in an ellipsis, never in a torn escape."""
        payload = slack_payload(hostile_alert(HOSTILE[name]))
        blocks = payload["blocks"]
        assert len(blocks) <= SLACK_BLOCKS_MAX
        assert units(payload["text"]) <= SLACK_TEXT_MAX
        assert units(blocks[0]["text"]["text"]) <= SLACK_HEADER_MAX
        for block in blocks:
            if "text" in block:
                assert units(block["text"]["text"]) <= SLACK_SECTION_MAX
            for field in block.get("fields", []):
                assert units(field["text"]) <= SLACK_FIELD_MAX
        title = blocks[1]["text"]["text"]
        assert title.endswith(("…>*", "…*"))
        for text in all_texts(payload):
            assert not re.search(r"&[a-z]{0,3}…", text), "an entity was cut in half"

    def test_storm_caps_blocks_and_counts_the_rest(self) -> None:
        """A storm of 500 items fits in 50 blocks and says how many items it did not list."""
        payload = slack_payload(storm(500, title="Very long storm title " * 10))
        blocks = payload["blocks"]
        assert len(blocks) == SLACK_BLOCKS_MAX
        listed = sum(t.count("\n• ") + t.startswith("• ") for t in all_texts(blocks[1:-1]))
        [note] = all_texts(blocks[-1])
        hidden = int(re.search(r"… and (\d+) more not shown", note).group(1))  # type: ignore[union-attr]
        assert listed + hidden == 500

    def test_single_alert_blocks(self) -> None:
        """A new alert: header, linked title, severity/rule/score/feed fields, terms, snippet, context."""
        payload = slack_payload(alert())
        header, title, fields, matched, snippet, context = payload["blocks"]
        assert header["text"]["text"] == "CRITICAL · karabakh-fighting"
        assert title["text"]["text"] == "*<https://news.example.org/martuni?a=1&amp;b=2|Shelling near Martuni>*"
        assert [f["text"].split("\n")[0] for f in fields["fields"]] == [
            "*Severity*",
            "*Rule*",
            "*Score*",
            "*Feed*",
        ]
        assert "Martuni [places] in title, summary (+1)" in matched["text"]["text"]
        assert snippet["text"]["text"] == "> Residents said *shelling* near *Martuni* went on overnight."
        assert context["type"] == "context"
        assert payload["text"] == "CRITICAL · karabakh-fighting · score 7.5: Shelling near Martuni"


class TestMailInert:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_no_header_injection(self, name: str) -> None:
        """Hostile titles and rule ids produce one Subject line and no extra headers in the sent bytes."""
        hostile = hostile_alert(HOSTILE[name])
        hostile = replace(hostile, rule_id="rule\r\nBcc: rule@y.example", alert_id="id\r\nX-Evil: 2")
        raw = build_message(hostile, sender="feedwatch@example.org", recipients=("desk@example.org",)).as_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Bcc"] is None
        assert msg["X-Evil"] is None
        assert len(msg.get_all("Subject") or []) == 1
        assert set(msg.keys()) <= {
            "Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "X-Feedwatch-Alert-Id",
            "X-Feedwatch-Rule", "X-Feedwatch-Severity", "MIME-Version", "Content-Type",
        }  # fmt: skip
        subject = str(msg["Subject"])
        assert "\r" not in subject
        assert "\n" not in subject
        assert len(subject.strip()) <= 200
        assert re.fullmatch(r"<[A-Za-z0-9._-]+@feedwatch>", str(msg["Message-ID"]))

    @pytest.mark.parametrize(
        ("kind", "changes", "expected"),
        [
            (AlertKind.NEW, {}, "[feedwatch] CRITICAL karabakh-fighting: Shelling near Martuni"),
            (AlertKind.UPDATE, {}, "Re: [feedwatch] CRITICAL karabakh-fighting: Shelling near Martuni"),
            (
                AlertKind.OPS,
                {"title": "feed caucasus-wire failing"},
                "[feedwatch] OPS CRITICAL: feed caucasus-wire failing",
            ),
            (AlertKind.TEST, {"title": "hello from email-desk"}, "[feedwatch] test: hello from email-desk"),
            (AlertKind.NEW, {"title": "a\r\nb\tc\u202e"}, "[feedwatch] CRITICAL karabakh-fighting: a b c"),
        ],
    )
    def test_subject_per_kind(self, kind: AlertKind, changes: dict[str, Any], expected: str) -> None:
        """The subject names severity, rule and title, with a kind-specific form."""
        assert email_subject(alert(kind=kind, **changes)) == expected

    def test_subject_of_storm_and_digest(self) -> None:
        """Storm and digest subjects count their entries."""
        assert email_subject(storm(3)) == "[feedwatch] WARNING karabakh-fighting: 3 more items matched"
        digest = alert(kind=AlertKind.DIGEST, title="Morning", entries=storm(4).entries)
        assert email_subject(digest) == "[feedwatch] digest: 4 alerts · Morning"

    def test_subject_length_limited(self) -> None:
        """A very long title is cut to 200 characters with an ellipsis."""
        subject = email_subject(alert(title="word " * 500))
        assert len(subject) <= 200
        assert subject.endswith("…")

    def test_message_id_stable_and_safe(self) -> None:
        """Message-ID is a pure function of the alert id; unsafe ids are hashed, not copied."""
        assert message_id("a1") == "<a1@feedwatch>" == message_id("a1")
        odd = message_id("a b>c")
        assert re.fullmatch(r"<[0-9a-f]{32}@feedwatch>", odd)
        assert odd == message_id("a b>c")


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "body",
    "p",
    "h2",
    "h3",
    "a",
    "ul",
    "li",
    "small",
    "mark",
    "blockquote",
    "strong",
}


def parse_html(markup: str) -> TagCollector:
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    return parser


class TestHtmlInert:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_only_our_tags(self, name: str) -> None:
        """Feed text never becomes markup: only the template's tags appear and it reads back as the text."""
        hostile = hostile_alert(HOSTILE[name])
        parsed = parse_html(render_html(hostile))
        assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
        assert all(attrs.get("href", SAFE_URL) == SAFE_URL for _, attrs in parsed.tags)
        assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
        assert clean(HOSTILE[name])[:60] in "".join(parsed.text)

    @pytest.mark.parametrize("link", HOSTILE_LINKS)
    def test_unsafe_links_not_anchored(self, link: str) -> None:
        """Only http(s) links become anchors."""
        for rendered in (render_html(alert(link=link)), render_html(storm(1))):
            hrefs = [attrs["href"] for tag, attrs in parse_html(rendered).tags if tag == "a"]
            assert all(h is not None and h.startswith(("https://", "http://")) for h in hrefs)
        assert "href" not in render_html(alert(link=link))

    def test_marks_title_spans_and_snippet_terms(self) -> None:
        """Title hits are marked by their spans and snippet terms by matching the hit texts."""
        markup = render_html(alert())
        link = '<a href="https://news.example.org/martuni?a=1&amp;b=2">'
        assert f"<h2>{link}<mark>Shelling</mark> near <mark>Martuni</mark></a></h2>" in markup
        quote = "Residents said <mark>shelling</mark> near <mark>Martuni</mark> went on overnight."
        assert f"<blockquote>{quote}</blockquote>" in markup

    def test_stale_spans_fall_back_to_text_search(self) -> None:
        """A span that no longer fits the title is not trusted; the term is found by text instead."""
        shifted = alert(title="Breaking: Shelling near Martuni")
        assert "Breaking: <mark>Shelling</mark> near <mark>Martuni</mark>" in render_html(shifted)


class TestText:
    def test_single_alert_text(self) -> None:
        """The text body: headline, title, link, feed/published, also-reported, terms, snippet, rule, id."""
        text = render_text(alert())
        assert text == (
            "CRITICAL · karabakh-fighting · score 7.5\n\n"
            "Shelling near Martuni\n"
            "https://news.example.org/martuni?a=1&b=2\n\n"
            "Feed: caucasus-wire · Published: 2024-05-01 11:55 UTC\n"
            "Also reported by: rferl, bbc-ru\n\n"
            "Matched:\n"
            "  - Shelling [escalation] in title (+2)\n"
            "  - Martuni [places] in title, summary (+1)\n\n"
            "  Residents said *shelling* near *Martuni* went on overnight.\n\n"
            "Rule: Fighting around Nagorno-Karabakh\n\n"
            "alert a1\n"
        )

    def test_update_names_the_first_alert(self) -> None:
        """An update says it updates a story and which alert started the thread."""
        text = render_text(alert(kind=AlertKind.UPDATE, alert_id="a2", thread_id="a1"))
        assert "Update to story (first alert a1):" in text

    def test_storm_lists_titles_and_window(self) -> None:
        """A storm says how many more items matched the rule in how long, listing them."""
        text = render_text(storm(3))
        assert "3 more items matched karabakh-fighting in the last 2 min:" in text
        assert "  - Item 0 [critical 7.5 · caucasus-wire]" in text
        assert "    https://x.example/2" in text

    def test_digest_groups_by_rule_then_story(self) -> None:
        """A digest lists rules most severe first, one line per story with other reports beneath it."""
        entries = (
            alert(
                alert_id="d1",
                rule_id="minor",
                severity=Severity.INFO,
                score=3,
                story_id="x",
                title="Minor thing",
            ),
            alert(alert_id="d2", story_id="s1", score=5, title="Shelling near Martuni"),
            alert(alert_id="d3", story_id="s1", score=7, feed="bbc-ru", title="Martuni shelled"),
            alert(alert_id="d4", story_id="s2", score=6, title="Drone over Stepanakert"),
        )
        text = render_text(alert(alert_id="dg", kind=AlertKind.DIGEST, title="Morning digest", entries=entries))
        order = [line for line in text.splitlines() if line.startswith(("==", "  -", "      also"))]
        assert order == [
            "== karabakh-fighting (3 alerts) ==",
            "  - Martuni shelled [critical 7 · bbc-ru]",
            "      also: caucasus-wire: Shelling near Martuni",
            "  - Drone over Stepanakert [critical 6 · caucasus-wire]",
            "== minor (1 alert) ==",
            "  - Minor thing [info 3 · caucasus-wire]",
        ]

    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_text_has_no_control_characters(self, name: str) -> None:
        """Only newlines separate lines; no other control character from a feed survives."""
        text = render_text(hostile_alert(HOSTILE[name], link="javascript:alert(1)"))
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u202a-\u202e]", text)
        assert "javascript:" not in text.split("\n\n")[1]  # the title block shows no unsafe link line

    def test_rendering_is_deterministic(self) -> None:
        """The same alert renders to identical bytes every time (re-sends are byte-identical)."""
        a = alert()
        assert render_text(a) == render_text(a)
        assert render_html(a) == render_html(a)
        assert slack_payload(a) == slack_payload(a)


class TestWebhookPayload:
    def test_schema_and_round_trip(self) -> None:
        """The payload is schema v1 wrapping alert_to_dict, and reads back into the same alert."""
        a = alert(kind=AlertKind.STORM, entries=(alert(alert_id="e1"),))
        payload = json.loads(json.dumps(webhook_payload(a)))
        assert payload["schema"] == WEBHOOK_SCHEMA == "feedwatch.alert/v1"
        assert alert_from_dict(payload["alert"]) == a

    @pytest.mark.parametrize("link", HOSTILE_LINKS)
    def test_unsafe_links_become_null(self, link: str) -> None:
        """Links that are not http(s), in the alert and its entries, are null in the webhook body."""
        a = alert(link=link, kind=AlertKind.STORM, entries=(alert(alert_id="e", link=link),))
        payload = webhook_payload(a)
        assert payload["alert"]["link"] is None
        assert payload["alert"]["entries"][0]["link"] is None


class TestHelpers:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://example.org/a?b=c", "https://example.org/a?b=c"),
            ("HTTP://example.org", "HTTP://example.org"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            ("https://", None),
            ("http://exa mple.org", None),
            ("https://example.org/a b", None),
            (" https://example.org/a\n", "https://example.org/a"),
            ("https://bank.example@evil.example/", None),
            ("https://bank.example:pw@evil.example/", None),
            ("https://example.org/\u202egnp.exe", None),
            ("https://example.org/\x00", None),
            ("http://[broken", None),
            (None, None),
            *[(bad, None) for bad in HOSTILE_LINKS],
        ],
    )
    def test_safe_link(self, url: str | None, expected: str | None) -> None:
        """Only absolute http(s) URLs without spaces or controls are links."""
        assert safe_link(url) == expected

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("  a\r\n b\t\tc  ", "a b c"),
            ("x\u2028y\u2029z", "x y z"),
            ("\u202eevil\u202c", "evil"),
            ("caf\u00e9", "caf\u00e9"),
        ],
    )
    def test_clean(self, raw: str, expected: str) -> None:
        """clean() makes one line and drops controls and bidi overrides, keeping ordinary Unicode."""
        assert clean(raw) == expected

    @pytest.mark.parametrize(
        ("seconds", "expected"),
        [
            (0, "0 s"),
            (0.5, "500 ms"),
            (59, "59 s"),
            (60, "1 min"),
            (90, "1 min 30 s"),
            (3600, "1 h"),
            (5400, "1 h 30 min"),
            (2 * 86400 + 3700, "2 d 1 h"),
            (-5, "0 s"),
        ],
    )
    def test_format_duration(self, seconds: float, expected: str) -> None:
        """Durations read as people say them: the two largest units."""
        assert format_duration(seconds) == expected

    def test_truncate_prefers_word_boundary(self) -> None:
        """Truncation cuts at a nearby space and never exceeds the limit."""
        assert truncate("alpha beta gamma delta epsilon", 20) == "alpha beta gamma…"
        assert truncate("short", 15) == "short"
        assert len(truncate("x" * 50, 10)) == 10

    def test_snippet_window_around_first_match(self) -> None:
        """A long snippet is cut to a window around the first match, with ellipses where text was cut."""
        snippet = "filler " * 100 + "shelling near Martuni " + "tail " * 100
        segs = snippet_segments(alert(snippet=snippet))
        text = "".join(t for t, _ in segs)
        assert text.startswith("…")
        assert text.endswith("…")
        assert len(text) <= 302
        assert ("shelling", True) in segs

    def test_term_rows_fold_hits(self) -> None:
        """Hits of one term fold into one row listing every field and the summed contribution."""
        rows = term_rows(alert().hits)
        assert [(r.term, r.fields, r.contribution) for r in rows] == [
            ("shelling", ("title",), 2.0),
            ("Martuni", ("title", "summary"), 1.0),
        ]

    def test_fuzzy_and_alias_rows_explain_themselves(self) -> None:
        """A fuzzy hit shows what it resembled and how closely; an alias hit shows the alias."""
        hits = (
            Hit("places", "Karabakh|Artsakh", "Karabakh", "title", 0, 8, "Karabagh", 1.0, fuzzy=87.5),
            Hit("places", "Stepanakert|Khankendi", "Khankendi", "summary", 0, 9, "KHANKENDI", 1.0),
        )
        rows = [r.describe() for r in term_rows(hits)]
        assert rows == [
            "Karabagh (≈ Karabakh, 88%) [places] in title (+1)",
            "KHANKENDI [places] in summary (+1)",
        ]

    def test_digest_groups_order(self) -> None:
        """Digest groups put the most severe rule first and stories by score within it."""
        entries = (
            alert(alert_id="1", rule_id="b", severity=Severity.INFO, story_id="p"),
            alert(alert_id="2", rule_id="a", severity=Severity.WARNING, story_id="q", score=2),
            alert(alert_id="3", rule_id="a", severity=Severity.WARNING, story_id="r", score=5),
        )
        groups = digest_groups(alert(kind=AlertKind.DIGEST, entries=entries))
        assert [(rule, [[e.alert_id for e in s] for s in stories]) for rule, stories in groups] == [
            ("a", [["3"], ["2"]]),
            ("b", [["1"]]),
        ]


class TestLinkText:
    """A title that names a site never becomes the text of a link to another site."""

    MISLEADING = "https://bank.example/login: verify your account"

    def test_html_shows_the_real_host(self) -> None:
        """The title stays plain text; the link's text is the host it really goes to."""
        html = render_html(alert(title=self.MISLEADING, link="https://evil.example/x", hits=()))
        anchors = re.findall(r'<a href="([^"]*)">(.*?)</a>', html)
        assert anchors == [("https://evil.example/x", "evil.example")]
        assert "bank.example/login" in html

    def test_slack_shows_the_real_host(self) -> None:
        """In Slack the link's text is the real host, never the title naming another site."""
        payload = slack_payload(alert(title=self.MISLEADING, link="https://evil.example/x", hits=()))
        text = json.dumps(payload)
        assert "<https://evil.example/x|evil.example>" in text
        assert "|https://bank.example" not in text

    @pytest.mark.parametrize(
        "title", ["Shelling near Martuni", "news.example.org reports shelling", "Node 20 released"]
    )
    def test_ordinary_titles_stay_link_text(self, title: str) -> None:
        """Titles that name no other site (or the link's own) remain the link text."""
        html = render_html(alert(title=title, link="https://news.example.org/a", hits=()))
        assert re.findall(r'<a href="[^"]*">(.*?)</a>', html) == [title]
