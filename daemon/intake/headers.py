"""Response headers that steer polling: the server's clock, Retry-After, Cache-Control and Expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from daemon.util.httpdates import parse_http_date


@dataclass(frozen=True, slots=True)
class Validators:
    """What to send on the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


def server_now(headers: httpx.Headers) -> datetime:
    """The server's clock (Date header) so relative dates survive clock skew; else ours."""
    return parse_http_date(first_header(headers, "date")) or datetime.now(UTC)


def first_header(headers: httpx.Headers, name: str) -> str | None:
    """A single-valued header; httpx joins repeats with commas, which would spoil a date."""
    values = headers.get_list(name)
    return values[0] if values else None


def parse_expires_in(headers: httpx.Headers, *, now: datetime) -> float | None:
    """Freshness lifetime from Cache-Control max-age (minus Age) or Expires; None when absent or zero."""
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
    left_s = (expires - now).total_seconds()
    return left_s if left_s > 0 else None
