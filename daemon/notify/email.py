"""SMTP email channel (aiosmtplib): multipart text+HTML mail, threaded updates, classified failures.

``Message-ID`` is derived from the alert id, so a re-send after a crash is recognisably the same mail.
A connection is kept for a short burst of sends and replaced when it has gone stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import hashlib
import re
import ssl
import time
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, getaddresses, parseaddr
from typing import TYPE_CHECKING, Annotated, Literal

import aiosmtplib
import msgspec
import structlog

from daemon.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from daemon.models import Alert, AlertKind
from daemon.notify.base import Channel, ChannelType, log_delivered
from daemon.render import clean, email_subject, render_html, render_text
from daemon.render.mailheader import literal_header
from daemon.util.fields import Alias, Duration, Parse
from daemon.util.redact import redact_text
from daemon.util.secret import Secret
from daemon.util.urls import ascii_host, host_problem

if TYPE_CHECKING:
    import httpx  # email needs no HTTP client: a mail-only config must not load it

log = structlog.get_logger(__name__)

Security = Literal["starttls", "tls", "none"]
SECURITY_MODES: tuple[Security, ...] = ("starttls", "tls", "none")
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_SMTP_TIMEOUT = 30.0
REUSE_IDLE_SECONDS = 30.0  # reuse a connection this long after the last send; servers drop idle ones
MESSAGE_ID_DOMAIN = "feedwatch"
_ID_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def _addresses(value: object) -> tuple[str, ...]:
    """``recipients`` in TOML: one address or a list of them."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected an address or a list of addresses, got {value!r}")


class EmailSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``port`` defaults by ``security``: 587 starttls, 465 tls, 25 none.

    ``starttls`` requires the upgrade (no silent fall-back to plain text); ``helo_name`` is the name
    sent in EHLO (default: this host's FQDN). A password over ``security = "none"`` would cross the
    network in clear: refused unless ``allow_plaintext_auth`` says so (a relay on localhost).
    """

    host: str
    sender: Annotated[str, Alias(("from",))]  # `sender`/`recipients` as documented; `from`/`to` read naturally
    recipients: Annotated[tuple[str, ...], Alias(("to",)), Parse(_addresses)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    security: Security = "starttls"
    username: str | None = None
    password: Secret | None = None
    timeout: Duration = DEFAULT_SMTP_TIMEOUT
    helo_name: str | None = None
    allow_plaintext_auth: bool = False

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, got {self.security!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, got {self.port!r}")
        if (problem := host_problem(self.host)) is not None:
            raise ValueError(f"host must be a host name or address: {problem}")
        if not self.recipients:
            raise ValueError("recipients must name at least one address")
        for address in (self.sender, *self.recipients):
            if not _bare_address(address):
                raise ValueError(f"not a mail address: {address!r}")
        if (self.password is None) != (self.username is None):
            raise ValueError("username and password go together: give both or neither")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout!r}")
        if self.security == "none" and self.password is not None and not self.allow_plaintext_auth:
            raise ValueError(
                'security = "none" would send the password in clear: use "starttls" or "tls", '
                "or set allow_plaintext_auth = true if the server is on this host"
            )

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]


def _bare_address(value: str) -> str:
    """``alerts@example.org`` from ``Feedwatch <alerts@example.org>``; "" when not an address."""
    if any(c in value for c in "\r\n\0"):
        return ""
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        return ""
    return pairs[0][1]


def message_id(alert_id: str) -> str:
    """``<{alert_id}@feedwatch>``; ids with characters unsafe in a msg-id are hashed (still stable)."""
    token = alert_id if _ID_SAFE.fullmatch(alert_id) else hashlib.sha256(alert_id.encode()).hexdigest()[:32]
    return f"<{token}@{MESSAGE_ID_DOMAIN}>"


def build_message(alert: Alert, *, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """The mail for ``alert``; headers holding feed or rule text are literal (never decoded, see mailheader)."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = literal_header("Subject", email_subject(alert))
    msg["From"] = sender
    msg["To"] = [_header_address(r) for r in recipients]
    created = alert.created_at if alert.created_at.tzinfo else alert.created_at.replace(tzinfo=UTC)
    msg["Date"] = format_datetime(created)  # the alert's time: identical on every re-send
    msg["Message-ID"] = message_id(alert.alert_id)
    if alert.thread_id and alert.thread_id != alert.alert_id:
        msg["In-Reply-To"] = message_id(alert.thread_id)
        msg["References"] = message_id(alert.thread_id)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg["X-Feedwatch-Alert-Id"] = literal_header("X-Feedwatch-Alert-Id", alert.alert_id)
    if alert.kind not in (AlertKind.DIGEST, AlertKind.TEST) and clean(alert.rule_id):
        msg["X-Feedwatch-Rule"] = literal_header("X-Feedwatch-Rule", alert.rule_id)
    msg["X-Feedwatch-Severity"] = str(alert.severity)
    msg.set_content(render_text(alert))
    msg.add_alternative(render_html(alert), subtype="html")
    return msg


def _header_address(value: str) -> Address:
    name, addr = parseaddr(value)
    return Address(display_name=name, addr_spec=addr)


class EmailChannel:
    """Sends each alert as one mail to the configured recipients."""

    def __init__(self, name: str, settings: EmailSettings) -> None:
        self.name = name
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()  # one SMTP transaction at a time on the shared connection
        self.target = f"{settings.host}:{settings.effective_port}"

    def __repr__(self) -> str:
        return f"EmailChannel(name={self.name!r}, target={self.target!r})"

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=ascii_host(s.host),  # IDNA 2008, never the socket module's IDNA 2003 codec
            port=s.effective_port,
            username=s.username,
            password=s.password.reveal() if s.password is not None else None,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",  # required, never a silent plain-text fallback
            local_hostname=s.helo_name,
        )

    async def send(self, alert: Alert) -> None:
        """Send one mail; returns once the server accepted it for at least one recipient."""
        s = self._settings
        error: DeliveryError | None = None
        try:
            msg = build_message(alert, sender=s.sender, recipients=s.recipients)
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            error = PermanentDeliveryError(f"cannot build the mail: {exc}", channel=self.name, alert_id=alert.alert_id)
        if error is not None:
            raise error
        async with self._lock:
            # aiosmtplib's timeout is per command: a server answering each one just in time could hold a
            # send for six timeouts. The deadline bounds the whole send (connect to the end of DATA).
            try:
                async with asyncio.timeout(s.timeout):
                    await self._send_locked(msg, alert)
            except TimeoutError:
                self._drop()
                error = self._error(
                    True, f"timed out: no complete answer within {s.timeout:g}s from {self.target}", alert
                )
        if error is not None:
            raise error

    async def _send_locked(self, msg: EmailMessage, alert: Alert) -> None:
        s = self._settings
        now = time.monotonic()
        reused = self._smtp is not None and self._smtp.is_connected and now - self._last_used < REUSE_IDLE_SECONDS
        if not reused:
            self._drop()
        started = now
        while True:
            error: DeliveryError | None = None
            try:
                if self._smtp is None or not self._smtp.is_connected:
                    self._smtp = self._client()
                    await self._smtp.connect()
                refused, _ = await self._smtp.send_message(
                    msg, sender=_bare_address(s.sender), recipients=[_bare_address(r) for r in s.recipients]
                )
            except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
                error = self._classify(exc, alert)
            except asyncio.CancelledError:
                self._drop()  # cancelled mid-transaction: the connection's state is unknown
                raise
            if error is None:
                break
            self._drop()
            if reused and isinstance(error, TransientDeliveryError):
                # A kept connection may have been closed by the server while idle: one fresh try.
                reused = False
                log.debug("email_stale_connection", channel=self.name, target=self.target, error=error.reason)
                continue
            raise error
        self._last_used = time.monotonic()
        if refused:
            log.warning(
                "email_recipients_refused",
                channel=self.name,
                alert_id=alert.alert_id,
                refused={addr: f"{r.code} {r.message}" for addr, r in refused.items()},
            )
        log_delivered(self.name, alert.alert_id, target=self.target, started=started)

    def _classify(self, exc: BaseException, alert: Alert) -> DeliveryError:
        """Transient for timeouts, refused/lost connections and 4xx replies; permanent otherwise."""
        s = self._settings
        where = f"{self.target}"
        if isinstance(exc, TimeoutError):
            return self._error(True, f"timed out after {s.timeout:g}s talking to {where}", alert)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            # RFC 4954: 454 is a temporary authentication failure; 535 and friends are final.
            reply = f"{exc.code} {self._scrub(exc.message)}"
            return self._error(_is_4xx(exc.code), f"authentication as {s.username!r} failed: {reply}", alert)
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            replies = "; ".join(f"{r.recipient}: {r.code} {self._scrub(r.message)}" for r in exc.recipients)
            transient = any(_is_4xx(r.code) for r in exc.recipients)
            return self._error(transient, f"all recipients refused by {where}: {replies}", alert)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            transient = not (500 <= exc.code < 600)  # 4xx, and odd codes, are worth another try
            return self._error(transient, f"{where} replied {exc.code} {self._scrub(exc.message)}", alert)
        if type(exc) is aiosmtplib.SMTPException or isinstance(exc, aiosmtplib.SMTPNotSupported):
            # The server lacks what the settings demand (STARTTLS, AUTH, SMTPUTF8): configuration.
            return self._error(False, f"{where}: {self._scrub(exc.message)}", alert)
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return self._error(False, f"TLS certificate of {where} not trusted: {self._scrub(str(exc))}", alert)
        reason = self._scrub(str(exc)) or type(exc).__name__
        return self._error(True, f"cannot talk to {where}: {reason}", alert)

    def _error(self, transient: bool, message: str, alert: Alert) -> DeliveryError:
        kind = TransientDeliveryError if transient else PermanentDeliveryError
        return kind(message, channel=self.name, alert_id=alert.alert_id)

    def _scrub(self, text: str) -> str:
        password = self._settings.password
        return clean(redact_text(text, [password] if password is not None else []))

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def aclose(self) -> None:
        """Say QUIT politely if a connection is open; close it regardless."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None and smtp.is_connected:
                try:
                    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                        await smtp.quit(timeout=min(self._settings.timeout, 5.0))
                finally:
                    smtp.close()


def _is_4xx(code: int) -> bool:
    return 400 <= code < 500


def _build(name: str, settings: EmailSettings, http: httpx.AsyncClient) -> Channel:
    return EmailChannel(name, settings)


CHANNEL = ChannelType("email", EmailSettings, _build)
