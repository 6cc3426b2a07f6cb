"""Markers that let a settings Struct say what TOML cannot: durations, sizes, paths, other spellings.

Settings structs (config sections, each channel's own settings) annotate their fields with these; the
config loader (``daemon.config.convert``) reads them. Kept here, below config and notify, so a channel
module can declare its settings without importing the config package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from daemon.util.durations import parse_duration, parse_size


@dataclass(frozen=True, slots=True)
class Parse:
    """The TOML value goes through ``fn``, whose ValueError says what it expected."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Relative:
    """A path string, resolved against the config file's folder (``as_str``: kept as text)."""

    as_str: bool = False


@dataclass(frozen=True, slots=True)
class Alias:
    """Other TOML spellings of the key (one spelling per table)."""

    names: tuple[str, ...]


class FieldError(ValueError):
    """Raised by a struct's ``__post_init__`` to put the message at one of its keys."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def duration_value(value: Any) -> float:
    """Seconds from ``"5m"`` or a plain number of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f'expected a duration like "5m", got {_show(value)}')
    return float(value) if isinstance(value, int | float) else parse_duration(value)


def size_value(value: Any) -> int:
    """Bytes from ``"10MiB"`` or a plain number of bytes."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'expected a size like "10MiB", got {_show(value)}')
    return parse_size(value)


def string_table(value: Any) -> Mapping[str, str]:
    """A TOML table whose values are all strings."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a table of strings, got {_show(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ValueError(f"{key}: expected a string, got {_show(item)}")
    return dict(value)


Duration = Annotated[float, Parse(duration_value)]
Size = Annotated[int, Parse(size_value)]
StringTable = Annotated[Mapping[str, str], Parse(string_table)]
