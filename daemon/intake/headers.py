"""Header fields: the response's that steer polling (the server's clock, Retry-After, Cache-Control,
Expires, Keep-Alive) and the request's Basic credentials."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

from daemon.util.httpdates import parse_http_date


class Headers:
    """A response's header fields in the order received, looked up without regard to case."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = [(name.lower(), value) for name, value in fields]

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field's value; repeats joined with ", " as RFC 9110 allows (a date needs ``first_header``)."""
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def get_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._fields if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_list(name))

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


@dataclass(frozen=True, slots=True)
class Validators:
    """What to send on the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


def server_now(headers: Headers) -> datetime:
    """The server's clock (Date header) so relative dates survive clock skew; else ours."""
    return parse_http_date(first_header(headers, "date")) or datetime.now(UTC)


def first_header(headers: Headers, name: str) -> str | None:
    """A single-valued header; ``get`` joins repeats with commas, which would spoil a date."""
    values = headers.get_list(name)
    return values[0] if values else None


def parse_expires_in(headers: Headers, *, now: datetime | None = None) -> float | None:
    """Freshness lifetime from Cache-Control max-age (minus Age) or Expires; None when absent or zero.

    ``now`` defaults to the server's clock (:func:`server_now`), read only when an Expires date needs it.
    """
    cache_control = headers.get("cache-control")
    if cache_control:
        directives = {}
        for part in cache_control.split(","):
            name, _, arg = part.strip().partition("=")
            directives[name.strip().lower()] = arg.strip().strip('"')
        if "no-store" in directives or "no-cache" in directives:
            return None
        max_age = directives.get("max-age", "")
        if max_age.isdigit():
            age = headers.get("age", "").strip()
            left = int(max_age) - (int(age) if age.isdigit() else 0)
            return float(left) if left > 0 else None
    expires = parse_http_date(first_header(headers, "expires"))
    if expires is None:
        return None
    left_s = (expires - (now or server_now(headers))).total_seconds()
    return left_s if left_s > 0 else None


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials for one feed (sent only to the feed's own origin)."""

    username: str
    password: str

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def keepalive_timeout(headers: Headers, default: float) -> float:
    """How long the server lets the connection idle: ``Keep-Alive: timeout=N`` less a second, at most ours."""
    value = headers.get("keep-alive")
    if value:
        for part in value.split(","):
            name, _, arg = part.strip().partition("=")
            if name.strip().lower() == "timeout" and arg.strip().isdigit():
                return min(default, int(arg.strip()) - 1.0)
    return default


def header_bytes(value: str) -> bytes:
    return value.encode("utf-8")  # a stored ETag read as UTF-8 goes back as the same bytes


def header_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
