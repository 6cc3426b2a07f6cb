"""The private regex parser is reached in one guarded place; without it the refinements step aside."""

from __future__ import annotations

import pytest

from daemon.rules import sre
from daemon.rules.backtrack import backtrack_risk
from daemon.rules.matcher import required_literals


def test_parses_a_pattern() -> None:
    """On this Python the parser is there and yields the pattern's top-level sequence."""
    parsed = sre.parse_pattern("shell(ing|ed)")
    assert parsed is not None
    assert len(parsed) == 6


def test_invalid_pattern_is_none() -> None:
    """A pattern the parser rejects is None, not an exception."""
    assert sre.parse_pattern("(unclosed") is None


def test_without_the_private_parser_refinements_step_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without re._parser (cannot be run here, so it is simulated) gives no literals and no warning."""
    assert required_literals("artillery (fire|shells)", 0, False) is not None
    monkeypatch.setattr(sre, "_parse", None)
    assert required_literals("artillery (fire|shells)", 0, False) is None
    assert backtrack_risk("(a+)+$") is None
