"""Story clustering: same canonical URL or similar titles naming the same things, within a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.alerting.stories import StoryCandidate, find_story, similarity

NOW = datetime(2020, 9, 28, 12, 0, tzinfo=UTC)


def cand(id_: int, title: str, url: str | None = None, age_h: float = 1) -> StoryCandidate:
    return StoryCandidate(id_, url, title, NOW - timedelta(hours=age_h))


class TestSimilarity:
    @pytest.mark.parametrize(
        ("a", "b", "same"),
        [
            ("Shelling reported in Martuni", "Shelling reported in Talish", False),
            (
                "US, EU and Russia call for an immediate ceasefire",
                "UPDATE: US, EU and Russia call for immediate ceasefire",
                True,
            ),
            (
                "Man carries ammunition part after shelling in Martuni",
                "Man carries ammunition part after shelling in Martuni © Hayk Baghdasaryan/Reuters",
                True,
            ),
            ("Azerbaijan seizes heights near Talish", "Covid condemns value investing to worst run", False),
        ],
    )
    def test_pairs(self, a: str, b: str, same: bool) -> None:
        """Titles naming different places never merge; re-worded wire copy does."""
        assert (similarity(a, b) >= 88) is same


class TestFindStory:
    def test_canonical_url_wins(self) -> None:
        """An item whose canonical URL matches a story joins it whatever its title."""
        found = find_story(
            "Totally different",
            "https://x.org/a",
            [cand(1, "Other", "https://x.org/a")],
            now=NOW,
            window=3600 * 48,
            threshold=88,
        )
        assert found is not None
        assert found.id == 1

    def test_outside_window_is_a_new_story(self) -> None:
        """A similar title older than the window starts a new story."""
        found = find_story(
            "Shelling in Martuni",
            None,
            [cand(1, "Shelling in Martuni", age_h=72)],
            now=NOW,
            window=3600 * 48,
            threshold=88,
        )
        assert found is None

    def test_best_candidate(self) -> None:
        """Among several candidates the most similar one above the threshold is chosen."""
        found = find_story(
            "Russia offers to mediate Karabakh ceasefire",
            None,
            [cand(1, "Russia offers to mediate"), cand(2, "Russia offers to mediate a Karabakh ceasefire")],
            now=NOW,
            window=3600 * 48,
            threshold=80,
        )
        assert found is not None
        assert found.id == 2
