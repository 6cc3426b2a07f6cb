"""Human durations ("500ms", "90s", "5m", "1h30m", "2d", "1w") and byte sizes ("10MiB"): parse and format."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with the expected form."""
    s = text.strip().replace(" ", "")
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f'expected a duration like "90s", "5m", "1h" or "2d", got {text!r}')
    return total


def format_duration(seconds: float) -> str:
    """The two largest units, as people say them: ``45 s``, ``1 min 30 s``, ``3 h 20 min``, ``2 d 4 h``.

    Below a second: ``500 ms``. Negative durations read as zero.
    """
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    rest = max(round(seconds), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size} {unit}")
            rest %= size
    return " ".join(parts[:2]) or "0 s"


def format_size(n: int) -> str:
    """Bytes in the largest binary unit, one decimal at most: ``512 bytes``, ``1.5 KiB``, ``10 MiB``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{round(n / factor, 1):g} {unit}"
    return f"{n} bytes"


def parse_size(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f'expected a size like "10MiB" or "512KiB", got {text!r}')
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
