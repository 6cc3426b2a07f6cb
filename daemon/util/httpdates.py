"""HTTP dates and ``Retry-After``: one reading for feeds and channels alike."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

RETRY_AFTER_MAX = 86400.0  # a day: a longer request is taken as a day, so a typo cannot park a feed for years


def parse_http_date(value: str | None) -> datetime | None:
    """An IMF-fixdate (or the obsolete forms) as an aware datetime; None when absent or malformed."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (``"120"``, also ``"1.5"``) or an HTTP
    date, clamped to [0, RETRY_AFTER_MAX]; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)
