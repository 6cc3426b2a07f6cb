"""The matcher of a RuleSet, compiled on first use.

Validation stays eager (``load_rules`` reports every rule error at load); compiling the automaton and
the regexes is not needed until an item must be scored, and a ``run --once`` whose feeds all answer
304 scores nothing. So the service holds a :class:`LazyMatcher` and the first scoring thread builds
it; the matcher module itself (and the ``regex`` engine) is imported only then.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from daemon.rules.ruleset import RuleSet
from daemon.util.startup import no_gc

if TYPE_CHECKING:
    from daemon.models import Item, RuleMatch
    from daemon.rules.matcher import Matcher, Scored

__all__ = ["LazyMatcher"]


class LazyMatcher:
    """``Matcher(ruleset)``, built once, by whichever thread asks first (the others wait for it)."""

    __slots__ = ("_lock", "_matcher", "ruleset")

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._matcher: Matcher | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the matcher has been compiled (tests and the daemon's start-up log read it)."""
        return self._matcher is not None

    def get(self) -> Matcher:
        matcher = self._matcher
        if matcher is not None:
            return matcher
        with self._lock:
            if self._matcher is None:
                from daemon.rules.matcher import Matcher

                with no_gc():  # many objects, no garbage: see daemon.util.startup
                    self._matcher = Matcher(self.ruleset)
            return self._matcher

    # The scorer interface of daemon.alerting.ingest, so a score sheet can hold this before it is built.

    def score(self, item: Item, *, feed_tags: frozenset[str] = frozenset()) -> list[RuleMatch]:
        return self.get().score(item, feed_tags=feed_tags)

    def score_checked(self, item: Item, *, feed_tags: frozenset[str] = frozenset()) -> Scored:
        return self.get().score_checked(item, feed_tags=feed_tags)
