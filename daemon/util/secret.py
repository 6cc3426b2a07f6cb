"""A value that is never printed: :class:`Secret` hides itself from ``repr``/``str`` (so it cannot leak
through a log line or a traceback's locals) until code explicitly calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

REDACTED = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)
