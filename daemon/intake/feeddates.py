"""Dates of the fast parse path: the two shapes real feeds use, read exactly as feedparser reads them.

Only an unambiguous RFC 822 date (RSS ``pubDate``) or W3C date-time (Atom, ``dc:date``) is read; anything
else raises ``UnsureDate`` and the document goes to feedparser, whose many lenient readers decide. Where
feedparser has a quirk on these shapes (an unknown zone name counts as UTC, two-digit years pivot at 90),
the same quirk applies here, so both paths store the same instant for the same text.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

__all__ = ["UnsureDate", "parse_date"]


class UnsureDate(ValueError):
    """A date this module does not read the way feedparser would."""


_ZONE_HOURS = {
    "ut": 0, "gmt": 0, "z": 0,
    "adt": -3, "ast": -4, "at": -4,
    "edt": -4, "est": -5, "et": -5,
    "cdt": -5, "cst": -6, "ct": -6,
    "mdt": -6, "mst": -7, "mt": -7,
    "pdt": -7, "pst": -8, "pt": -8,
    "a": -1, "n": 1, "m": -12, "y": 12,
}  # fmt: skip
_RFC822_EXTRA_ZONES = {"met": 1, "mest": 2}  # known to feedparser's RFC 822 reader only
_RFC822_ZONES = {**_ZONE_HOURS, **_RFC822_EXTRA_ZONES}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}  # fmt: skip

_RFC822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
    r"(\d{1,2})\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{4}|\d{2})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[+-]\d{2}:\d{2}|[a-z]{1,5})",
)
_W3DTF = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[t ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?\s*(z|[+-]\d{2}:\d{2}|[+-]\d{2}00)?)?",
)


def _utc(fields: tuple[int, int, int, int, int, int], offset_minutes: int) -> datetime:
    try:
        moment = datetime(*fields, tzinfo=UTC)
        return moment - timedelta(minutes=offset_minutes) if offset_minutes else moment
    except (ValueError, OverflowError) as exc:
        raise UnsureDate(str(exc)) from None


def _offset(zone: str, names: dict[str, int]) -> int:
    if zone[:1] in "+-":
        minutes = int(zone[1:3]) * 60 + int(zone[-2:])
        return -minutes if zone[0] == "-" else minutes
    return names.get(zone, 0) * 60


# Dates repeat: within a cycle (items published the same minute) and across polls of a changed feed,
# which repeat most of its items. datetimes are immutable, so a remembered one can be handed out again.
@functools.lru_cache(maxsize=1024)  # ~250 KB at most
def parse_date(text: str) -> datetime | None:
    """The UTC instant ``text`` names; None for blank text; ``UnsureDate`` for any other shape."""
    value = text.strip().lower()
    if not value:
        return None
    m = _W3DTF.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, zone = m.groups()
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        return _utc(fields, _offset(zone, _ZONE_HOURS) if zone else 0)
    m = _RFC822.fullmatch(value)
    if m:
        day, month, year, hour, minute, second, zone = m.groups()
        y = int(year)
        if len(year) == 2:
            y += 1900 if y >= 90 else 2000
        fields = (y, _MONTHS[month], int(day), int(hour), int(minute), int(second or 0))
        return _utc(fields, _offset(zone, _RFC822_ZONES))
    raise UnsureDate(f"unrecognised date {text[:60]!r}")
