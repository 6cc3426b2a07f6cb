"""One contract for every delivery channel, each against a real server on 127.0.0.1.

Email talks to an aiosmtpd ``Controller``; Slack and the generic webhook post to pytest-httpserver.
Timeouts use a socket that listens but never answers; refusals a server that is stopped or a port
bound without listening.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

import httpx
import msgspec
import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pytest_httpserver import HTTPServer
from structlog.testing import capture_logs
from structlog.tracebacks import ExceptionDictTransformer
from werkzeug import Request, Response

from daemon.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from daemon.models import Alert, AlertKind, Hit, Severity
from daemon.notify.apprise_channel import AppriseChannel, AppriseSettings
from daemon.notify.base import Channel
from daemon.notify.console import ConsoleSettings
from daemon.notify.email import EmailChannel, EmailSettings
from daemon.notify.registry import CHANNEL_TYPES, SETTINGS_TYPES, build_channel
from daemon.notify.slack import SlackChannel, SlackSettings
from daemon.notify.slack_bot import SlackBotChannel
from daemon.notify.webhook import WebhookChannel, WebhookSettings, encode_body
from daemon.util.secret import Secret

SMTP_USER = "alerts"
SMTP_PASSWORD = "smtp-Pa55word-never-shown"
WRONG_PASSWORD = "wrong-Pa55-never-shown"
SLACK_TOKEN = "sLaCkT0kenNeverShown"
SLACK_PATH = f"/services/T0FEED/B0WATCH/{SLACK_TOKEN}"
HMAC_KEY = "whsec-hmac-key-never-shown"
WEBHOOK_PATH = "/hooks/feedwatch"
WEBHOOK_AUTH = "Bearer hdr-token-never-shown"
APPRISE_PASSWORD = "apprise-Pa55-never-shown"
APPRISE_PATH = "/apprise/hook"
SLACK_BOT_TOKEN = "xoxb-bot-T0ken-never-shown"
SLACK_API_PATH = "/api/chat.postMessage"
SECRETS = (SMTP_PASSWORD, SLACK_TOKEN, HMAC_KEY, WEBHOOK_AUTH, APPRISE_PASSWORD, SLACK_BOT_TOKEN)
FAST_TIMEOUT = 0.3
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Outcome = Literal["ok", "transient", "permanent", "rate_limited"]


def make_alert(alert_id: str = "a1b2c3", **changes: Any) -> Alert:
    base = Alert(
        alert_id=alert_id,
        kind=AlertKind.NEW,
        rule_id="karabakh-fighting",
        severity=Severity.CRITICAL,
        score=7.5,
        title="Shelling reported near Martuni",
        link="https://news.example.org/martuni",
        feed="caucasus-wire",
        created_at=NOW,
        story_id="story-1",
        published=NOW - timedelta(minutes=5),
        snippet="Residents said shelling near Martuni went on overnight.",
        hits=(
            Hit("places", "Martuni", "Martuni", "title", 23, 30, "Martuni", 1.0),
            Hit("escalation", "shelling", "shelling", "title", 0, 8, "Shelling", 2.0),
        ),
    )
    return replace(base, **changes)


@dataclass
class Delivery:
    key: str  # the idempotency key the receiver saw
    text: str  # decoded content, for "it arrived with content" checks
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound without listening: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


class SmtpRecorder:
    """aiosmtpd handler: records accepted mail, or answers with a configured reply."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.reply: str | None = None
        self.delay = 0.0  # seconds to stall before answering DATA
        self.sessions = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply is not None:
            return self.reply
        self.messages.append(envelope)
        return "250 2.0.0 queued"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    def __init__(self) -> None:
        self.handler = SmtpRecorder()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mx.test",
            authenticator=authenticate,
            auth_require_tls=False,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


class QuickHTTPServer(HTTPServer):
    """pytest-httpserver whose serve loop notices stop() in 10 ms rather than 500 ms."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    """A receiver of our own per test (a test may stop it: "the receiver went away")."""
    server = QuickHTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(scope="session")
def tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle for every client would dominate the suite's time."""
    return ssl.create_default_context()


@pytest.fixture
async def http_client(tls_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, verify=tls_context) as client:  # no proxy from the env
        yield client


# --- harnesses: one per channel, same questions ----------------------------------------------


class EmailHarness:
    kind = "email"

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.opened: list[EmailChannel] = []

    def settings(self, port: int | None = None, **changes: Any) -> EmailSettings:
        base = EmailSettings(
            host="127.0.0.1",
            port=port or self.server.port,
            security="none",
            allow_plaintext_auth=True,  # the local test server offers no TLS
            username=SMTP_USER,
            password=Secret(SMTP_PASSWORD),
            sender="Feedwatch <feedwatch@example.org>",
            recipients=("desk@example.org",),
            timeout=FAST_TIMEOUT if port else 5.0,
            helo_name="feedwatch.test",
        )
        return msgspec.structs.replace(base, **changes)

    def channel(self, port: int | None = None, **changes: Any) -> EmailChannel:
        """A channel closed at teardown (an open SMTP connection would leak its socket)."""
        channel = EmailChannel("email-desk", self.settings(port, **changes))
        self.opened.append(channel)
        return channel

    async def close(self) -> None:
        for channel in self.opened:
            await channel.aclose()

    def answer(self, outcome: Outcome) -> None:
        self.server.handler.reply = {
            "ok": None,
            "transient": "421 4.3.0 try again later",
            "permanent": "550 5.7.1 message rejected as spam",
            "rate_limited": "451 4.7.1 too many messages, slow down",
        }[outcome]

    def stop(self) -> None:
        self.server.stop()

    def deliveries(self) -> list[Delivery]:
        out = []
        for envelope in self.server.handler.messages:
            raw = envelope.original_content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            out.append(Delivery(key=str(msg["Message-ID"]), text=text, raw=raw, headers=dict(msg.items())))
        return out


class HttpHarness:
    """Shared by Slack and the webhook: pytest-httpserver answering as told, recording requests."""

    kind: str
    path: str
    bad_request_body = "invalid_payload"

    def __init__(self, server: HTTPServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client
        self.outcome: Outcome = "ok"
        self.requests: list[tuple[dict[str, str], bytes]] = []
        server.expect_request(self.path, method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        if self.outcome == "ok":
            self.requests.append((dict(request.headers), request.get_data()))
            return Response("ok", status=200)
        if self.outcome == "transient":
            return Response("rollup_error", status=500)
        if self.outcome == "rate_limited":
            return Response("rate_limited", status=429, headers={"Retry-After": "7"})
        return Response(self.bad_request_body, status=400)

    def url(self, port: int | None) -> str:
        return f"http://127.0.0.1:{port}{self.path}" if port else self.server.url_for(self.path)

    def answer(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def close(self) -> None:
        """The HTTP client is the fixture's; nothing of the channel's own to close."""

    def stop(self) -> None:
        self.server.stop()


class SlackHarness(HttpHarness):
    kind = "slack"
    path = SLACK_PATH

    def channel(self, port: int | None = None) -> Channel:
        settings = SlackSettings(webhook_url=Secret(self.url(port)), timeout=FAST_TIMEOUT if port else 5.0)
        return SlackChannel("slack-caucasus", settings, self.client)

    def deliveries(self) -> list[Delivery]:
        # Slack has no idempotency header: a re-send is recognisable by its identical body.
        return [
            Delivery(key=hashlib.sha256(body).hexdigest(), text=json.dumps(json.loads(body)), raw=body, headers=h)
            for h, body in self.requests
        ]


class WebhookHarness(HttpHarness):
    kind = "webhook"
    path = WEBHOOK_PATH

    def channel(self, port: int | None = None) -> Channel:
        settings = WebhookSettings(
            url=self.url(port),
            secret=Secret(HMAC_KEY),
            headers={"Authorization": WEBHOOK_AUTH},
            timeout=FAST_TIMEOUT if port else 5.0,
        )
        return WebhookChannel("webhook-ops", settings, self.client)

    def deliveries(self) -> list[Delivery]:
        return [
            Delivery(key=h["Idempotency-Key"], text=body.decode("utf-8"), raw=body, headers=h)
            for h, body in self.requests
        ]


class AppriseHarness(HttpHarness):
    """Apprise's json:// scheme posting to the local server (its password is the secret to keep hidden)."""

    kind = "apprise"
    path = APPRISE_PATH

    def channel(self, port: int | None = None) -> Channel:
        where = f"127.0.0.1:{port}" if port else f"127.0.0.1:{self.server.port}"
        url = f"json://feedwatch:{APPRISE_PASSWORD}@{where}{APPRISE_PATH}"
        settings = AppriseSettings(urls=Secret(url), timeout=FAST_TIMEOUT if port else 5.0)
        return AppriseChannel("apprise-chat", settings)

    def deliveries(self) -> list[Delivery]:
        # Apprise sends no idempotency key; a re-send is recognisable by its identical body.
        out = []
        for h, body in self.requests:
            doc = json.loads(body)
            out.append(
                Delivery(
                    key=hashlib.sha256(body).hexdigest(), text=f"{doc['title']}\n{doc['message']}", raw=body, headers=h
                )
            )
        return out


class SlackBotHarness(HttpHarness):
    """A local fake of Slack's Web API: chat.postMessage answers {"ok": true, "ts": …} with a bearer token."""

    kind = "slack-bot"
    path = SLACK_API_PATH
    bad_request_body = '{"ok": false, "error": "invalid_arguments"}'

    def _handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {SLACK_BOT_TOKEN}":
            return Response('{"ok": false, "error": "invalid_auth"}', status=200)
        if self.outcome == "ok":
            self.requests.append((dict(request.headers), request.get_data()))
            ts = f"1714564800.{len(self.requests):06d}"
            return Response(json.dumps({"ok": True, "channel": "C0FEED", "ts": ts}), content_type="application/json")
        return super()._handle(request)

    def channel(self, port: int | None = None) -> Channel:
        api = f"http://127.0.0.1:{port}/api" if port else self.server.url_for("/api")
        settings = SlackSettings(
            bot_token=Secret(SLACK_BOT_TOKEN),
            channel="#caucasus",
            api_url=api,
            min_interval=0.0,
            timeout=FAST_TIMEOUT if port else 5.0,
        )
        return SlackBotChannel("slack-bot", settings, self.client)

    def deliveries(self) -> list[Delivery]:
        # No idempotency key in the Web API: a re-send is recognisable by its identical body.
        return [
            Delivery(key=hashlib.sha256(body).hexdigest(), text=json.dumps(json.loads(body)), raw=body, headers=h)
            for h, body in self.requests
        ]


Harness = EmailHarness | SlackHarness | WebhookHarness | AppriseHarness | SlackBotHarness


@pytest.fixture(params=["email", "slack", "webhook", "apprise", "slack-bot"])
async def harness(request: pytest.FixtureRequest, http_client: httpx.AsyncClient) -> AsyncIterator[Harness]:
    made: Harness
    if request.param == "email":
        made = EmailHarness(request.getfixturevalue("smtp_server"))
    elif request.param == "slack":
        made = SlackHarness(request.getfixturevalue("http_server"), http_client)
    elif request.param == "apprise":
        made = AppriseHarness(request.getfixturevalue("http_server"), http_client)
    elif request.param == "slack-bot":
        made = SlackBotHarness(request.getfixturevalue("http_server"), http_client)
    else:
        made = WebhookHarness(request.getfixturevalue("http_server"), http_client)
    yield made
    await made.close()


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def rendered_traceback(exc: BaseException) -> str:
    """The exception as a JSON log line would carry it, locals included (the worst case)."""
    frames = ExceptionDictTransformer(show_locals=True)((type(exc), exc, exc.__traceback__))
    return json.dumps(frames, default=str) + "".join(traceback.format_exception(exc))


# --- the contract ----------------------------------------------------------------------------


class TestChannelContract:
    async def test_implements_protocol(self, harness: Harness) -> None:
        """Every channel is a Channel with the configured name."""
        channel = harness.channel()
        assert isinstance(channel, Channel)
        assert channel.name
        await channel.aclose()

    async def test_delivered_once_with_content(self, harness: Harness) -> None:
        """One send produces exactly one delivery carrying the title, rule and link."""
        channel = harness.channel()
        await channel.send(make_alert())
        await channel.aclose()
        [delivery] = harness.deliveries()
        assert "Shelling reported near Martuni" in delivery.text
        assert "karabakh-fighting" in delivery.text
        assert "https://news.example.org/martuni" in delivery.text

    async def test_resend_keeps_idempotency_key(self, harness: Harness) -> None:
        """Sending the same alert twice yields the same key; another alert gets another key."""
        channel = harness.channel()
        await channel.send(make_alert("same-id"))
        await channel.send(make_alert("same-id"))
        await channel.send(make_alert("other-id"))
        await channel.aclose()
        if harness.kind == "slack-bot":
            # It remembers what it posted (the message ts): a re-send is not posted twice.
            first, other = harness.deliveries()
            assert other.key != first.key
            return
        first, again, other = harness.deliveries()
        assert first.key == again.key
        assert other.key != first.key
        if harness.kind not in ("slack", "apprise", "slack-bot"):
            assert "same-id" in first.key

    @pytest.mark.parametrize(
        ("outcome", "expected"),
        [
            ("transient", TransientDeliveryError),
            ("rate_limited", TransientDeliveryError),
            ("permanent", PermanentDeliveryError),
        ],
    )
    async def test_receiver_answers_classified(
        self, harness: Harness, outcome: Outcome, expected: type[DeliveryError]
    ) -> None:
        """5xx/421 and 429/451 are transient, 4xx/550 permanent; the error names channel and alert."""
        harness.answer(outcome)
        channel = harness.channel()
        with pytest.raises(DeliveryError) as info:
            await channel.send(make_alert("a-err"))
        await channel.aclose()
        assert type(info.value) is expected
        assert info.value.channel == channel.name
        assert info.value.alert_id == "a-err"
        assert harness.deliveries() == []

    async def test_rate_limit_honours_retry_after(self, harness: Harness) -> None:
        """An HTTP 429 carries the receiver's Retry-After as retry_after."""
        if harness.kind == "email":
            pytest.skip("SMTP replies carry no retry delay")
        if harness.kind == "apprise":
            pytest.skip("Apprise does not pass a receiver's headers on; the retry policy's backoff applies")
        harness.answer("rate_limited")
        with pytest.raises(TransientDeliveryError) as info:
            await harness.channel().send(make_alert())
        assert info.value.retry_after == 7.0

    async def test_timeout_is_transient(self, harness: Harness, silent_port: int) -> None:
        """A receiver that never answers fails fast, within about the configured timeout, as transient."""
        channel = harness.channel(port=silent_port)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="timed out"):
            await channel.send(make_alert())
        await channel.aclose()
        assert time.monotonic() - started < FAST_TIMEOUT * 6

    async def test_refused_connection_is_transient(self, harness: Harness, closed_port: int) -> None:
        """Nothing listening on the port is transient."""
        channel = harness.channel(port=closed_port)
        with pytest.raises(TransientDeliveryError):
            await channel.send(make_alert())

    async def test_stopped_server_is_transient(self, harness: Harness) -> None:
        """A receiver that went away after working is transient, not a crash."""
        channel = harness.channel()
        await channel.send(make_alert("before"))
        harness.stop()
        with pytest.raises(TransientDeliveryError):
            await channel.send(make_alert("after"))
        await channel.aclose()

    async def test_secrets_never_in_logs_or_errors(self, harness: Harness, silent_port: int, closed_port: int) -> None:
        """Across success and every failure, no secret reaches a log event, message or traceback."""
        seen: list[str] = []
        with capture_logs() as logs:
            ok = harness.channel()
            await ok.send(make_alert("s1"))
            for outcome in ("transient", "rate_limited", "permanent"):
                harness.answer(outcome)  # type: ignore[arg-type]
                with pytest.raises(DeliveryError) as info:
                    await ok.send(make_alert(f"s-{outcome}"))
                seen += [str(info.value), repr(info.value), rendered_traceback(info.value)]
            await ok.aclose()
            for port in (silent_port, closed_port):
                channel = harness.channel(port=port)
                with pytest.raises(DeliveryError) as info:
                    await channel.send(make_alert("s-net"))
                seen += [str(info.value), repr(info.value), rendered_traceback(info.value), repr(channel)]
                await channel.aclose()
        seen.append(repr(logs))
        assert logs, "channels log their deliveries"
        for text in seen:
            for s in leaks(text):
                i = text.index(s)
                print("LEAK", text[max(0, i - 400) : i + 50])  # shows where, when it fails
        assert [leaks(text) for text in seen if leaks(text)] == []

    async def test_delivery_logged_with_redacted_target(self, harness: Harness) -> None:
        """A delivery logs channel_delivered with the channel, alert id and a secret-free target."""
        channel = harness.channel()
        with capture_logs() as logs:
            await channel.send(make_alert("logged"))
        [event] = [e for e in logs if e["event"] == "channel_delivered"]
        assert event["channel"] == channel.name
        assert event["alert_id"] == "logged"
        assert "127.0.0.1" in event["target"]
        assert event["elapsed_ms"] >= 0
        assert leaks(json.dumps(event, default=str)) == []


# --- what only one channel does ----------------------------------------------------------------


@pytest.fixture
async def email_harness(smtp_server: SmtpServer) -> AsyncIterator[EmailHarness]:
    made = EmailHarness(smtp_server)
    yield made
    await made.close()


class TestEmailChannel:
    async def test_multipart_alternative_with_threading_headers(self, email_harness: EmailHarness) -> None:
        """An update is text+HTML mail threaded under its first alert, dated by the alert."""
        channel = email_harness.channel()
        await channel.send(make_alert("upd-2", kind=AlertKind.UPDATE, thread_id="first-1"))
        await channel.aclose()
        [delivery] = email_harness.deliveries()
        msg = email.message_from_bytes(delivery.raw, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert msg["Message-ID"] == "<upd-2@feedwatch>"
        assert msg["In-Reply-To"] == "<first-1@feedwatch>"
        assert msg["References"] == "<first-1@feedwatch>"
        assert msg["Date"] == format_datetime(NOW)
        assert msg["Auto-Submitted"] == "auto-generated"
        assert str(msg["Subject"]).strip().startswith("Re: [feedwatch] CRITICAL karabakh-fighting: ")

    async def test_new_alert_is_not_a_reply(self, email_harness: EmailHarness) -> None:
        """A first alert has no In-Reply-To even when its thread id is its own id."""
        channel = email_harness.channel()
        await channel.send(make_alert("first-1", thread_id="first-1"))
        [delivery] = email_harness.deliveries()
        assert "In-Reply-To" not in delivery.headers
        assert (
            str(delivery.headers["Subject"]).strip()
            == "[feedwatch] CRITICAL karabakh-fighting: Shelling reported near Martuni"
        )

    async def test_wrong_password_is_permanent_and_unprinted(self, email_harness: EmailHarness) -> None:
        """A rejected login is permanent and its message names the user, never the password."""
        channel = email_harness.channel(password=Secret(WRONG_PASSWORD))
        with pytest.raises(PermanentDeliveryError, match="authentication as 'alerts' failed: 535") as info:
            await channel.send(make_alert())
        assert WRONG_PASSWORD not in rendered_traceback(info.value)
        assert WRONG_PASSWORD not in str(info.value)

    async def test_burst_reuses_one_connection(self, email_harness: EmailHarness) -> None:
        """Several alerts sent in a burst share one SMTP session."""
        channel = email_harness.channel()
        for n in range(3):
            await channel.send(make_alert(f"burst-{n}"))
        await channel.aclose()
        assert len(email_harness.deliveries()) == 3
        assert email_harness.server.handler.sessions == 1

    async def test_stale_connection_is_replaced(self, email_harness: EmailHarness) -> None:
        """When the server dropped the kept connection, the next send reconnects and delivers."""
        channel = email_harness.channel()
        await channel.send(make_alert("one"))
        email_harness.server.stop()
        email_harness.server.start()
        await channel.send(make_alert("two"))
        await channel.aclose()
        assert [d.key for d in email_harness.deliveries()] == ["<one@feedwatch>", "<two@feedwatch>"]

    async def test_cancelled_send_drops_connection(self, email_harness: EmailHarness) -> None:
        """A send cancelled mid-transaction never leaves its half-used connection for the next send."""
        channel = email_harness.channel()
        email_harness.server.handler.delay = 0.5
        task = asyncio.create_task(channel.send(make_alert("cancelled")))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        email_harness.server.handler.delay = 0.0
        await channel.send(make_alert("next"))
        assert "<next@feedwatch>" in [d.key for d in email_harness.deliveries()]
        assert email_harness.server.handler.sessions == 2

    async def test_starttls_required_not_downgraded(self, email_harness: EmailHarness) -> None:
        """security = "starttls" against a server without STARTTLS fails permanently, sending nothing."""
        channel = email_harness.channel(security="starttls")
        with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
            await channel.send(make_alert())
        assert email_harness.deliveries() == []

    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            ("450 4.2.1 mailbox busy", TransientDeliveryError),
            ("550 5.1.1 no such user", PermanentDeliveryError),
        ],
    )
    async def test_all_recipients_refused(
        self, email_harness: EmailHarness, reply: str, expected: type[DeliveryError]
    ) -> None:
        """When every recipient is refused, a 4xx refusal is transient and a 5xx one permanent."""

        async def handle_RCPT(server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
            return reply

        email_harness.server.handler.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
        with pytest.raises(expected, match=f"all recipients refused by .*desk@example.org: {reply[:3]}"):
            await email_harness.channel().send(make_alert())

    async def test_some_recipients_refused_still_delivered(self, email_harness: EmailHarness) -> None:
        """If one recipient of two is refused the mail counts as sent and the refusal is logged."""

        async def handle_RCPT(server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
            if address.startswith("gone@"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        email_harness.server.handler.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
        channel = email_harness.channel(recipients=("desk@example.org", "gone@example.org"))
        with capture_logs() as logs:
            await channel.send(make_alert())
        assert len(email_harness.deliveries()) == 1
        [warning] = [e for e in logs if e["event"] == "email_recipients_refused"]
        assert "gone@example.org" in warning["refused"]

    def test_settings_validation(self) -> None:
        """Settings reject unknown security modes, header-injecting addresses and half credentials."""
        ok = {"host": "smtp.example.org", "sender": "a@example.org", "recipients": ("b@example.org",)}
        assert EmailSettings(**ok).effective_port == 587
        assert EmailSettings(**ok, security="tls").effective_port == 465
        bad: list[dict[str, Any]] = [
            {"security": "ssl"},
            {"recipients": ()},
            {"recipients": ("b@example.org\r\nBcc: x@y.org",)},
            {"sender": "not an address"},
            {"username": "u"},
            {"port": 70000},
            {"timeout": 0},
        ]
        for change in bad:
            with pytest.raises(ValueError, match=r"."):
                EmailSettings(**{**ok, **change})

    def test_password_in_clear_needs_consent(self) -> None:
        """security = "none" with a password is refused unless allow_plaintext_auth says it is meant."""
        creds: dict[str, Any] = {
            "host": "smtp.example.org",
            "sender": "a@example.org",
            "recipients": ("b@example.org",),
            "security": "none",
            "username": "u",
            "password": Secret("pw"),
        }
        with pytest.raises(ValueError, match="allow_plaintext_auth"):
            EmailSettings(**creds)
        assert EmailSettings(**creds, allow_plaintext_auth=True).security == "none"


@pytest.fixture
def slack_harness(http_server: HTTPServer, http_client: httpx.AsyncClient) -> SlackHarness:
    return SlackHarness(http_server, http_client)


@pytest.fixture
def webhook_harness(http_server: HTTPServer, http_client: httpx.AsyncClient) -> WebhookHarness:
    return WebhookHarness(http_server, http_client)


class TestSlackChannel:
    async def test_posts_block_kit_with_identity(self, slack_harness: SlackHarness) -> None:
        """The body is the Block Kit payload plus the configured username and emoji icon."""
        settings = SlackSettings(webhook_url=Secret(slack_harness.url(None)), username="feedwatch", icon=":satellite:")
        await SlackChannel("s", settings, slack_harness.client).send(make_alert())
        [delivery] = slack_harness.deliveries()
        body = json.loads(delivery.raw)
        assert body["username"] == "feedwatch"
        assert body["icon_emoji"] == ":satellite:"
        assert body["blocks"][0]["type"] == "header"
        assert delivery.headers["Content-Type"].startswith("application/json")

    @pytest.mark.parametrize(("status", "body"), [(400, "invalid_payload"), (410, "channel_is_archived")])
    async def test_client_error_body_in_message(
        self, httpserver: HTTPServer, http_client: httpx.AsyncClient, status: int, body: str
    ) -> None:
        """Slack's reason (invalid_payload, channel_is_archived) is in the permanent error's message."""
        httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data(body, status=status)
        settings = SlackSettings(webhook_url=Secret(httpserver.url_for(SLACK_PATH)))
        with pytest.raises(PermanentDeliveryError) as info:
            await SlackChannel("s", settings, http_client).send(make_alert())
        assert f"HTTP {status}" in str(info.value)
        assert body in str(info.value)
        assert f"/***: {body}" in str(info.value)
        assert SLACK_TOKEN not in str(info.value)

    async def test_retry_after_as_http_date(self, httpserver: HTTPServer, http_client: httpx.AsyncClient) -> None:
        """A Retry-After given as an HTTP date becomes seconds from now."""
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
        httpserver.expect_request(SLACK_PATH).respond_with_data("busy", status=503, headers={"Retry-After": later})
        settings = SlackSettings(webhook_url=Secret(httpserver.url_for(SLACK_PATH)))
        with pytest.raises(TransientDeliveryError) as info:
            await SlackChannel("s", settings, http_client).send(make_alert())
        assert info.value.retry_after is not None
        assert 100 < info.value.retry_after <= 120

    async def test_redirect_is_permanent(self, httpserver: HTTPServer, http_client: httpx.AsyncClient) -> None:
        """A redirect is not followed (it would turn a POST into a GET) and is reported as configuration."""
        httpserver.expect_request(SLACK_PATH).respond_with_data("", status=301, headers={"Location": "/x"})
        settings = SlackSettings(webhook_url=Secret(httpserver.url_for(SLACK_PATH)))
        with pytest.raises(PermanentDeliveryError, match="redirects are not followed"):
            await SlackChannel("s", settings, http_client).send(make_alert())

    @pytest.mark.parametrize("url", ["ftp://hooks.example.org/T1/B2/tok3n", "hooks.example.org/T1/B2/tok3n", ""])
    def test_settings_validation(self, url: str) -> None:
        """A webhook URL that is not an absolute http(s) URL is refused without printing it."""
        with pytest.raises(ValueError, match=r".") as info:
            SlackSettings(webhook_url=Secret(url))
        assert not url or "tok3n" not in str(info.value)

    async def test_ops_alert_has_no_score_field(self, slack_harness: SlackHarness) -> None:
        """An ops alert shows severity and rule, not a meaningless score."""
        channel = slack_harness.channel()
        await channel.send(make_alert(kind=AlertKind.OPS, title="feed caucasus-wire failing", rule_id=""))
        body = json.loads(slack_harness.deliveries()[0].raw)
        fields = [f["text"].split("\n")[0] for b in body["blocks"] for f in b.get("fields", [])]
        assert fields == ["*Severity*", "*Feed*"]


class TestWebhookChannel:
    async def test_signed_compact_body(self, webhook_harness: WebhookHarness) -> None:
        """The body is compact sorted JSON of schema v1 and the signature verifies with the shared key."""
        channel = WebhookChannel(
            "w",
            WebhookSettings(url=webhook_harness.url(None), secret=Secret(HMAC_KEY)),
            webhook_harness.client,
            clock=lambda: 1714564800.7,
        )
        alert = make_alert("sig-1")
        await channel.send(alert)
        [delivery] = webhook_harness.deliveries()
        assert delivery.raw == encode_body(alert)
        payload = json.loads(delivery.raw)
        assert payload["schema"] == "feedwatch.alert/v1"
        assert payload["alert"]["alert_id"] == "sig-1"
        assert delivery.raw == json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        assert delivery.headers["X-Feedwatch-Timestamp"] == "1714564800"
        expected = hmac.new(HMAC_KEY.encode(), b"1714564800." + delivery.raw, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Feedwatch-Signature"] == f"sha256={expected}"
        assert delivery.headers["Content-Type"] == "application/json"

    async def test_replayed_timestamp_breaks_signature(self, webhook_harness: WebhookHarness) -> None:
        """The timestamp is inside the MAC: the signature does not verify under another timestamp."""
        channel = WebhookChannel(
            "w",
            WebhookSettings(url=webhook_harness.url(None), secret=Secret(HMAC_KEY)),
            webhook_harness.client,
            clock=lambda: 1000.0,
        )
        await channel.send(make_alert())
        [delivery] = webhook_harness.deliveries()
        forged = hmac.new(HMAC_KEY.encode(), b"2000." + delivery.raw, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Feedwatch-Signature"] != f"sha256={forged}"

    async def test_custom_headers_and_unsigned(self, webhook_harness: WebhookHarness) -> None:
        """Configured headers are sent; without a secret there is no signature header."""
        settings = WebhookSettings(url=webhook_harness.url(None), headers={"X-Team": "desk"})
        await WebhookChannel("w", settings, webhook_harness.client).send(make_alert())
        [delivery] = webhook_harness.deliveries()
        assert delivery.headers["X-Team"] == "desk"
        assert "X-Feedwatch-Signature" not in delivery.headers
        assert delivery.headers["Idempotency-Key"] == "a1b2c3"

    @pytest.mark.parametrize(
        "change",
        [
            {"url": "ftp://127.0.0.1/x"},
            {"url": "javascript:alert(1)"},
            {"headers": {"Idempotency-Key": "mine"}},
            {"headers": {"X-Evil": "a\r\nInjected: yes"}},
            {"headers": {"Bad Name": "x"}},
            {"timeout": -1},
        ],
    )
    def test_settings_validation(self, change: dict[str, Any]) -> None:
        """Non-http(s) URLs, reserved or malformed headers and bad timeouts are refused."""
        with pytest.raises(ValueError, match=r"."):
            WebhookSettings(**{"url": "https://example.org/hook", **change})

    def test_secret_url_is_redacted(self, http_client: httpx.AsyncClient) -> None:
        """A webhook URL given as a Secret shows only its origin."""
        channel = WebhookChannel("w", WebhookSettings(url=Secret("https://hooks.example.org/t/abc123")), http_client)
        assert channel.target == "https://hooks.example.org/***"
        assert "abc123" not in repr(channel)


class TestRegistry:
    def test_known_types(self) -> None:
        """The registry knows console, email, slack, webhook and apprise, each with its own settings type."""
        assert set(CHANNEL_TYPES) == {"console", "email", "slack", "webhook", "apprise"}
        assert dict(SETTINGS_TYPES) == {
            "apprise": AppriseSettings,
            "console": ConsoleSettings,
            "email": EmailSettings,
            "slack": SlackSettings,
            "webhook": WebhookSettings,
        }

    def test_builds_each_type(self, http_client: httpx.AsyncClient) -> None:
        """build_channel returns the implementation for each type, named as configured."""
        email_settings = EmailSettings(host="127.0.0.1", sender="a@example.org", recipients=("b@example.org",))
        slack = SlackSettings(webhook_url=Secret("https://hooks.slack.com/services/T1/B2/x"))
        hook = WebhookSettings(url="https://example.org/hook")
        built = [
            build_channel("m", "email", email_settings, http=http_client),
            build_channel("s", "slack", slack, http=http_client),
            build_channel("w", "webhook", hook, http=http_client),
        ]
        assert [type(c) for c in built] == [EmailChannel, SlackChannel, WebhookChannel]
        assert [c.name for c in built] == ["m", "s", "w"]

    def test_unknown_type_and_wrong_settings(self, http_client: httpx.AsyncClient) -> None:
        """An unknown type or settings of the wrong class is a ConfigError naming the problem."""
        with pytest.raises(ConfigError, match="unknown channel type 'pager'"):
            build_channel("x", "pager", object(), http=http_client)
        with pytest.raises(ConfigError, match="needs SlackSettings"):
            build_channel("x", "slack", WebhookSettings(url="https://example.org/h"), http=http_client)


def test_structlog_is_usable() -> None:
    """capture_logs sees events from the channel modules' loggers (guards the tests above)."""
    with capture_logs() as logs:
        structlog.get_logger("daemon.notify.slack").info("probe", x=1)
    assert logs == [{"event": "probe", "x": 1, "log_level": "info"}]
