"""Digest schedules: "08:00" (daily, in the channel's time zone), "mon 08:00" (weekly) or "every 1h"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.util.durations import parse_duration

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_AT = re.compile(r"^(?:(mon|tue|wed|thu|fri|sat|sun)\s+)?([01]?\d|2[0-3]):([0-5]\d)$", re.I)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A digest schedule: every N seconds, or daily or weekly at a time."""

    every: float | None = None  # seconds, for "every 1h"
    hour: int | None = None
    minute: int | None = None
    day: str | None = None  # weekly when set


def parse_schedule(text: str) -> Schedule:
    raw = text.strip()
    if raw.lower().startswith("every "):
        seconds = parse_duration(raw[6:])
        if seconds < 60:
            raise ValueError(f"a digest period must be at least 1m, got {raw!r}")
        return Schedule(every=seconds)
    m = _AT.match(raw)
    if not m:
        raise ValueError(f'expected "HH:MM", "mon HH:MM" or "every 1h", got {text!r}')
    return Schedule(hour=int(m.group(2)), minute=int(m.group(3)), day=m.group(1).lower() if m.group(1) else None)
