"""HTTP dates and Retry-After: one reading shared by the fetcher and the channels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.util.httpdates import RETRY_AFTER_MAX, parse_http_date, parse_retry_after

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("99999999", RETRY_AFTER_MAX),
        ("inf", RETRY_AFTER_MAX),
        ("Fri, 01 May 2026 12:02:00 GMT", 120.0),
        ("Fri, 01 May 2026 11:00:00 GMT", 0.0),
        ("Sat, 01 May 2027 12:00:00 GMT", RETRY_AFTER_MAX),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    """Delta-seconds (also fractional) or an HTTP date, clamped to [0, a day]; garbage is None."""
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Fri, 01 May 2026 12:02:00 GMT", datetime(2026, 5, 1, 12, 2, tzinfo=UTC)),
        ("Friday, 01-May-26 12:02:00 GMT", datetime(2026, 5, 1, 12, 2, tzinfo=UTC)),
        ("not a date", None),
        (None, None),
    ],
)
def test_http_date(header: str | None, expected: datetime | None) -> None:
    """IMF-fixdate and the obsolete RFC 850 form read as aware UTC datetimes; anything else is None."""
    assert parse_http_date(header) == expected
