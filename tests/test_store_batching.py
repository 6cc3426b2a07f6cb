"""Group commit on the store thread: polls that finish together share one transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.errors import StoreError
from daemon.models import FeedHealth
from daemon.store.async_store import AsyncStore
from daemon.store.sqlite import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncStore:
    s = AsyncStore(tmp_path / "fw.db")
    await s.open()
    yield s  # type: ignore[misc]
    await s.aclose()


async def feed_ids(store: AsyncStore, n: int) -> list[int]:
    states = [await store.call(Store.ensure_feed, f"f{i}", f"https://f{i}.example/") for i in range(n)]
    return [s.id for s in states]


def status(code: int) -> FeedHealth:
    return FeedHealth(last_status=code)


class TestBatched:
    async def test_writes_made_together_share_one_commit(self, store: AsyncStore) -> None:
        """200 health writes issued at once reach SQLite in a handful of transactions, not 200, and all land."""
        ids = await feed_ids(store, 200)
        statements: list[str] = []
        await store.call(lambda s: s.conn.set_trace_callback(statements.append))
        await asyncio.gather(*(store.batched(Store.save_poll_outcome, i, status(304), next_poll_at=None) for i in ids))
        await store.call(lambda s: s.conn.set_trace_callback(None))
        commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
        assert 1 <= commits <= 3, commits
        rows = await store.call(
            lambda s: s.conn.execute("SELECT COUNT(*) FROM feeds WHERE last_status = 304").fetchone()
        )
        assert rows[0] == 200

    async def test_one_failing_call_undoes_only_itself(self, store: AsyncStore) -> None:
        """A call that raises gets its error; the calls batched with it are kept."""
        ids = await feed_ids(store, 3)

        def broken(s: Store, feed_id: int) -> None:
            s.save_poll_outcome(feed_id, status(500), next_poll_at=None)
            raise StoreError("boom")

        results = await asyncio.gather(
            store.batched(Store.save_poll_outcome, ids[0], status(200), next_poll_at=None),
            store.batched(broken, ids[1]),
            store.batched(Store.save_poll_outcome, ids[2], status(304), next_poll_at=None),
            return_exceptions=True,
        )
        assert results[0] is None
        assert results[2] is None
        assert isinstance(results[1], StoreError)
        statuses = await store.call(
            lambda s: [r[0] for r in s.conn.execute("SELECT last_status FROM feeds ORDER BY id")]
        )
        assert statuses == [200, None, 304]

    async def test_reads_come_back_in_order(self, store: AsyncStore) -> None:
        """Batched reads return each caller its own result."""
        await feed_ids(store, 20)
        states = await asyncio.gather(*(store.batched(Store.feed, f"f{i}") for i in range(20)))
        assert [s.name for s in states if s] == [f"f{i}" for i in range(20)]
