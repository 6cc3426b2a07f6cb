"""The one retry policy: exponential backoff with full jitter, capped, honouring a requested delay."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, for a bounded number of attempts."""

    attempts: int = 12  # after this many failed attempts a delivery becomes a dead letter
    base: float = 10.0
    cap: float = 3600.0
    jitter: float = 0.5  # fraction of the delay that is randomised

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        raw = min(self.cap, self.base * 2.0 ** max(0, attempt - 1))
        jittered = raw * (1 - self.jitter) + raw * self.jitter * rng.random()
        return max(jittered, retry_after or 0.0)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.attempts
