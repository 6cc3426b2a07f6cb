"""Redaction of secrets in URLs and text: the one function every output boundary applies.

Rules, for any URL: the password of its userinfo (or a user name given alone, often a token) and the
values of secret-named query parameters become ``***``. A URL given *as a secret* (a Slack webhook, a URL
from ``*_env``/``*_file``/``*_credential``) keeps only its origin: every path segment and query value is
hidden, also where a receiver echoes it back (``Cannot POST /services/T…/B…/…``), plain or percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

MASK = "***"
FRAGMENT_MIN = 4  # shorter pieces of a secret URL ("v1", "api") are no secret and would mask common text

# Query parameters whose values are credentials: the name itself, or a name ending in "_<name>"/"-<name>"
# (access_token, X-Amz-Signature, client_secret, hub.verify_token, x-api-key).
_SECRET_NAMES = (
    "token|key|apikey|api_key|secret|password|passwd|pwd|sig|signature|auth|authorization"
    "|credential|credentials|session|sessionid|jwt"
)
_SECRET_PARAM = re.compile(rf"(?:^|.*[_.\-])(?:{_SECRET_NAMES})$", re.IGNORECASE)
_PARAM = re.compile(r"(?P<name>[^&;=#]*)=(?P<value>[^&;#]*)")
# A URL inside free text: scheme, then everything up to whitespace or a character that ends a URL in prose.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s<>\"'`]+")
_USERINFO = re.compile(r"(?P<scheme>^[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#]*)@")


@runtime_checkable
class Revealable(Protocol):
    """A secret value (``daemon.config.secrets.Secret``) that hides itself until revealed."""

    def reveal(self) -> str: ...


SecretLike = Revealable | str


def _value(secret: SecretLike) -> str:
    return secret.reveal() if isinstance(secret, Revealable) else secret


def is_secret_param(name: str) -> bool:
    return bool(_SECRET_PARAM.match(unquote_plus(name).strip("[]")))


def _mask_params(query: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m["value"] and is_secret_param(m["name"]):
            return f"{m['name']}={MASK}"
        return m.group(0)

    return _PARAM.sub(one, query)


def _mask_userinfo(url: str) -> str:
    def one(m: re.Match[str]) -> str:
        user, sep, password = m["userinfo"].partition(":")
        if sep and password:
            return f"{m['scheme']}{user}:{MASK}@"
        return f"{m['scheme']}{MASK}@" if user else m.group(0)

    return _USERINFO.sub(one, url, count=1)


def redact_url(url: SecretLike, *, secret: bool | None = None) -> str:
    """The form of ``url`` that may be shown anywhere (logs, status, errors, the database).

    ``secret`` defaults to whether ``url`` was given as a secret object.
    """
    if type(url) is str:  # the common case, without the slower protocol check
        raw = url
        secret = bool(secret)
    else:
        raw = _value(url)
        secret = isinstance(url, Revealable) if secret is None else secret
    if secret:
        try:
            parts = urlsplit(raw)
            host = parts.hostname or "?"
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "<invalid url>"
        host = f"[{host}]" if ":" in host else host
        rest = parts.path.strip("/") or parts.query or parts.fragment
        return f"{parts.scheme}://{host}{port}" + (f"/{MASK}" if rest else "")
    shown = _mask_userinfo(raw)
    head, qmark, tail = shown.partition("?")
    if qmark:
        query, hashmark, fragment = tail.partition("#")
        shown = head + "?" + _mask_params(query) + (hashmark + _mask_params(fragment) if hashmark else "")
    elif "#" in shown:
        head, _, fragment = shown.partition("#")
        shown = head + "#" + _mask_params(fragment)
    return shown


def sensitive_parts(url: str) -> list[str]:
    """The credential pieces of a URL not given as a secret: password, a lone user name, secret parameters."""
    out: list[str] = []
    m = _USERINFO.match(url)
    if m:
        user, sep, password = m["userinfo"].partition(":")
        out.append(password if sep else user)
    _, _, tail = url.partition("?")
    for query in tail.split("#"):
        out += [p["value"] for p in _PARAM.finditer(query) if p["value"] and is_secret_param(p["name"])]
    return [piece for piece in out if piece]


def restore_secrets(shown: str, source: str) -> str | None:
    """``shown`` (a redacted URL, e.g. a stored redirect target) with its masked parts taken from ``source``.

    Userinfo comes back only for the same host; a masked parameter only when ``source`` has one of that
    name. None when something masked cannot be restored: the caller falls back to ``source``.
    """
    if MASK not in shown:
        return shown
    try:
        same_host = urlsplit(shown).hostname == urlsplit(source).hostname
    except ValueError:
        return None
    src = _USERINFO.match(source)
    if same_host and src:
        shown = _USERINFO.sub(lambda m: m["scheme"] + src["userinfo"] + "@", shown, count=1)
    values = {p["name"]: p["value"] for p in _PARAM.finditer(source.partition("?")[2])}

    def one(m: re.Match[str]) -> str:
        if m["value"] == MASK and m["name"] in values:
            return f"{m['name']}={values[m['name']]}"
        return m.group(0)

    head, qmark, tail = shown.partition("?")
    shown = head + qmark + _PARAM.sub(one, tail)
    return None if MASK in shown else shown


def secret_fragments(secret: SecretLike) -> set[str]:
    """Every piece of ``secret`` that must never be shown, in the forms a receiver might echo it."""
    value = _value(secret)
    pieces = {value}
    try:
        parts = urlsplit(value)
        is_url = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        is_url = False
    if is_url:
        if parts.password:
            pieces.add(parts.password)
        if parts.username:
            pieces.add(parts.username)
        path = parts.path.strip("/")
        if path:
            pieces.add(path)
            pieces.update(s for s in path.split("/") if s)
        for query in (parts.query, parts.fragment):
            if query:
                pieces.add(query)
                pieces.update(m["value"] for m in _PARAM.finditer(query) if m["value"])
    else:
        pieces.update(word for word in value.split() if len(word) >= 8)  # "Bearer <token>": the token alone
    out: set[str] = set()
    for piece in pieces:
        for form in (piece, unquote(piece), unquote_plus(piece), quote(piece, safe=""), quote_plus(piece)):
            if form == value or len(form) >= FRAGMENT_MIN:
                out.add(form)
    out.discard("")
    return out


def redact_text(text: str, secrets: Iterable[SecretLike] = ()) -> str:
    """``text`` with the given secrets (and every piece of them) masked and every URL in it redacted."""
    fragments: set[str] = set()
    for secret in secrets:
        if _value(secret):
            fragments |= secret_fragments(secret)
    for fragment in sorted(fragments, key=len, reverse=True):
        if fragment in text:
            text = text.replace(fragment, MASK)
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0), secret=False), text)
    return text


def link_url(url: str) -> str:
    """``url`` for a clickable link: no userinfo at all, secret parameters masked."""
    return _USERINFO.sub(lambda m: m["scheme"], redact_url(url, secret=False), count=1)
