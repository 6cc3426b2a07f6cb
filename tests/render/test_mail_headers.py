"""Mail headers carry feed text literally: checked on the raw bytes a real SMTP sink on 127.0.0.1 receives."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from daemon.models import Alert, AlertKind, Severity
from daemon.notify.email import EmailChannel, EmailSettings
from daemon.render.mailheader import literal_header
from tests.kit.smtp import SmtpSink

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INJECTION = "Shelling =?utf-8?q?=0D=0AReply-To:_x@evil.example=0D=0A=0D=0AYour_mailbox_is_full?="


def make_alert(title: str, **changes: object) -> Alert:
    base = Alert(
        alert_id="hdr-1",
        kind=AlertKind.NEW,
        rule_id="karabakh-fighting",
        severity=Severity.CRITICAL,
        score=7.5,
        title=title,
        link="https://news.example.org/martuni",
        feed="caucasus-wire",
        created_at=NOW,
        snippet="Shelling near Martuni went on overnight.",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink()
    server.start()
    yield server
    server.stop()


async def deliver(sink: SmtpSink, alert: Alert) -> bytes:
    channel = EmailChannel(
        "desk",
        EmailSettings(
            host="127.0.0.1",
            port=sink.port,
            security="none",
            sender="Feedwatch <feedwatch@example.org>",
            recipients=("desk@example.org",),
            timeout=5.0,
        ),
    )
    await channel.send(alert)
    await channel.aclose()
    sink.wait_for(1)
    [raw] = sink.handler.raw
    return raw


def header_block(raw: bytes) -> list[bytes]:
    """The header fields of the top-level message, each unfolded into one line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t").split(b"\r\n")


def field_names(raw: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower() for line in header_block(raw)]


class TestEncodedWordInjection:
    async def test_encoded_word_title_cannot_add_headers(self, sink: SmtpSink) -> None:
        """A title holding an encoded CR/LF adds no Reply-To, keeps From/To/MIME headers and the body intact."""
        raw = await deliver(sink, make_alert(INJECTION))
        names = field_names(raw)
        assert "reply-to" not in names
        for wanted in ("subject", "from", "to", "mime-version", "content-type", "message-id"):
            assert names.count(wanted) == 1, (wanted, names)
        assert b"Your mailbox is full" not in raw.split(b"\r\n\r\n", 1)[0]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg.get_content_type() == "multipart/alternative"
        assert "Reply-To" not in msg
        # A receiver decoding the subject once sees the title exactly as the feed wrote it.
        assert str(msg["Subject"]) == f"[feedwatch] CRITICAL karabakh-fighting: {INJECTION}"
        plain = msg.get_body(("plain",))
        assert plain is not None
        assert INJECTION in plain.get_content()

    async def test_long_unicode_subject_round_trips(self, sink: SmtpSink) -> None:
        """A long non-ASCII subject is folded into short lines and decodes to exactly the text sent."""
        title = "Обстрел у Мартуни: " + "очевидцы сообщают о новых ударах " * 4
        raw = await deliver(sink, make_alert(title.strip()))
        assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        subject = str(msg["Subject"])
        assert subject.startswith("[feedwatch] CRITICAL karabakh-fighting: Обстрел у Мартуни")
        assert "  " not in subject


class TestFolding:
    @pytest.mark.parametrize(
        "text",
        [
            "[feedwatch] WARNING karabakh-fighting-long-rule-name-here: "
            "Averyveryverylongwordwithoutanyspacesthatexceedsthelinelimitforsureyesindeed and more",
            "[feedwatch] WARNING r: " + "word " * 40,
            "Ünïcode «quoted» — dash " + "слово " * 30,
            "=?utf-8?b?QQ==?= stays literal",
            "x" * 300,
        ],
    )
    def test_folded_subject_has_no_leading_or_doubled_space(self, text: str) -> None:
        """Folding never starts the value with a space, never doubles one, and unfolds to the same text."""
        text = " ".join(text.split())
        folded = literal_header("Subject", text).fold(policy=email.policy.SMTP)
        assert folded.startswith("Subject: ")
        assert not folded.startswith("Subject:  ")
        assert folded.endswith("\r\n")
        lines = folded[:-2].split("\r\n")
        assert lines[0].strip() != "Subject:"
        assert all(len(line) <= 78 for line in lines)
        msg = email.message_from_bytes(folded.encode() + b"\r\nbody\r\n", policy=email.policy.default)
        assert str(msg["Subject"]) == text
