"""The rules-folder scanner: which edits it notices, settling bursts, and a folder that goes and comes back."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from daemon.service import rulewatch
from daemon.service.rulewatch import changed_files, snapshot


def make_rules(root: Path) -> Path:
    rules = root / "rules"
    (rules / "lists").mkdir(parents=True)
    (rules / "a.toml").write_text("x = 1\n")
    (rules / "lists" / "b.toml").write_text("y = 2\n")
    return rules


class TestSnapshot:
    def test_lists_toml_files_below_the_folder(self, tmp_path: Path) -> None:
        """Every *.toml file in the folder and its subfolders is listed; other files and dot folders are not."""
        rules = make_rules(tmp_path)
        (rules / "notes.txt").write_text("n")
        (rules / ".a.toml.swp").write_text("n")
        (rules / ".git").mkdir()
        (rules / ".git" / "c.toml").write_text("n")
        assert sorted(Path(p).name for p in snapshot(rules) or {}) == ["a.toml", "b.toml"]

    def test_missing_folder_is_none(self, tmp_path: Path) -> None:
        """A folder that does not exist gives None, not an empty listing."""
        assert snapshot(tmp_path / "nope") is None
        (tmp_path / "empty").mkdir()
        assert snapshot(tmp_path / "empty") == {}

    def test_same_size_rewrite_and_rename_over_are_changes(self, tmp_path: Path) -> None:
        """A rewrite of equal length and a file renamed over another both change the snapshot."""
        rules = make_rules(tmp_path)
        before = snapshot(rules)
        (rules / "a.toml").write_text("x = 3\n")
        os.utime(rules / "a.toml", ns=(1, 1))  # even with an older mtime: ctime moved
        after = snapshot(rules)
        assert changed_files(before, after) == ["a.toml"]
        (rules / "tmp").write_text("y = 2\n")
        (rules / "tmp").rename(rules / "lists" / "b.toml")
        assert changed_files(after, snapshot(rules)) == ["b.toml"]

    def test_symlinked_file_swap_is_a_change(self, tmp_path: Path) -> None:
        """A ConfigMap-style swap (the link now points at another file) is seen through the link."""
        rules = tmp_path / "rules"
        rules.mkdir()
        (tmp_path / "v1.toml").write_text("x = 1\n")
        (tmp_path / "v2.toml").write_text("x = 22\n")
        (rules / "a.toml").symlink_to(tmp_path / "v1.toml")
        before = snapshot(rules)
        (rules / "a.toml").unlink()
        (rules / "a.toml").symlink_to(tmp_path / "v2.toml")
        assert changed_files(before, snapshot(rules)) == ["a.toml"]


class TestChangedFiles:
    def test_added_removed_changed(self) -> None:
        """Added, removed and changed files are named once each, sorted; unchanged ones are not."""
        before = {"/r/a.toml": (1, 1, 1, 1), "/r/b.toml": (1, 1, 1, 2), "/r/c.toml": (1, 1, 1, 3)}
        after = {"/r/a.toml": (1, 1, 1, 1), "/r/c.toml": (2, 2, 1, 3), "/r/d.toml": (1, 1, 1, 4)}
        assert changed_files(before, after) == ["b.toml", "c.toml", "d.toml"]
        assert changed_files(None, after) == ["a.toml", "c.toml", "d.toml"]
        assert changed_files(before, before) == []


class Recorder:
    def __init__(self) -> None:
        self.changes: list[list[str]] = []
        self.missing = 0
        self.called = asyncio.Event()

    async def changed(self, names: list[str]) -> None:
        self.changes.append(names)
        self.called.set()

    def gone(self) -> None:
        self.missing += 1
        self.called.set()

    async def until(self, check: Callable[[], object]) -> None:
        async with asyncio.timeout(5):
            while not check():
                await self.called.wait()
                self.called.clear()


async def run_watch(rules: Path, rec: Recorder, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(rulewatch.watch(rules, stop, rec.changed, rec.gone, interval=0.02, settle=0.05))
    await asyncio.sleep(0.05)  # the first snapshot is taken
    return task


class TestWatch:
    async def test_an_edit_is_reported_once(self, tmp_path: Path) -> None:
        """One save gives one call naming the file; nothing is reported while nothing changes."""
        rules = make_rules(tmp_path)
        rec, stop = Recorder(), asyncio.Event()
        task = await run_watch(rules, rec, stop)
        await asyncio.sleep(0.1)
        assert rec.changes == []
        (rules / "lists" / "b.toml").write_text("y = 3\n")
        await rec.until(lambda: rec.changes)
        await asyncio.sleep(0.15)
        assert rec.changes == [["b.toml"]]
        stop.set()
        await asyncio.wait_for(task, 2)

    async def test_a_burst_settles_into_one_call(self, tmp_path: Path) -> None:
        """Writes closer together than the settle time end in a single call naming every file written."""
        rules = make_rules(tmp_path)
        rec, stop = Recorder(), asyncio.Event()
        task = await run_watch(rules, rec, stop)
        for i in range(8):
            (rules / "a.toml").write_text(f"x = {i}{'0' * i}\n")
            if i == 4:
                (rules / "new.toml").write_text("z = 1\n")
            await asyncio.sleep(0.02)
        await rec.until(lambda: rec.changes)
        await asyncio.sleep(0.15)
        assert rec.changes == [["a.toml", "new.toml"]]
        stop.set()
        await asyncio.wait_for(task, 2)

    async def test_folder_gone_and_back(self, tmp_path: Path) -> None:
        """A missing folder is reported once; when it comes back, its files count as changed."""
        rec, stop = Recorder(), asyncio.Event()
        rules = tmp_path / "rules"
        task = await run_watch(rules, rec, stop)
        assert rec.missing == 1
        await asyncio.sleep(0.1)
        assert rec.missing == 1
        assert rec.changes == []
        make_rules(tmp_path)
        await rec.until(lambda: rec.changes)
        assert rec.changes == [["a.toml", "b.toml"]]
        shutil.rmtree(rules)
        await rec.until(lambda: rec.missing == 2)
        await rec.until(lambda: len(rec.changes) == 2)
        assert rec.changes[1] == ["a.toml", "b.toml"]
        stop.set()
        await asyncio.wait_for(task, 2)
