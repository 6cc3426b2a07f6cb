"""Start-up without garbage collection: the block turns collection off and always back on."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from daemon.rules.load import load_rules
from daemon.util.startup import no_gc


class TestNoGc:
    def test_off_inside_and_on_after(self) -> None:
        """Collection is off inside the block and on again after it, also when the block raises."""
        assert gc.isenabled()
        with no_gc():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(ValueError, match="boom"), no_gc():
            raise ValueError("boom")
        assert gc.isenabled()

    def test_nested_block_leaves_it_to_the_outer_one(self) -> None:
        """An inner block does not turn collection back on while the outer block still runs."""
        with no_gc():
            with no_gc():
                pass
            assert not gc.isenabled()
        assert gc.isenabled()

    def test_loading_rules_leaves_collection_on(self, tmp_path: Path) -> None:
        """Loading rules (which runs without collection) hands collection back."""
        (tmp_path / "r.toml").write_text('[rule.x.groups.g]\nterms = ["outage"]\n')
        report = load_rules(tmp_path)
        assert report.ok
        assert gc.isenabled()
