"""The store on its own thread, for the asyncio side of the daemon."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from daemon.errors import StoreError
from daemon.store.sqlite import Store

T = TypeVar("T")
P = ParamSpec("P")


class AsyncStore:
    """Runs every store call on one dedicated thread, so SQLite never blocks the event loop.

    The connection is created on that thread and only ever used there.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, max_size: int | None = None) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._max_size = max_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedwatch-store")
        self._store: Store | None = None
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        def _open() -> Store:
            return Store(self._path, busy_timeout=self._busy_timeout, max_size=self._max_size)

        self._store = await asyncio.get_running_loop().run_in_executor(self._executor, _open)

    async def call(self, fn: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(store, *args, **kwargs)`` on the store thread (type-checked like a direct call)."""
        store = self._store
        if store is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, store, *args, **kwargs)
        )

    async def batched(self, fn: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``call``, grouped: calls made while the store thread is busy run together in one hop and one
        transaction (group commit), each under its own savepoint so one call's failure undoes only itself.

        For the small reads and writes every poll makes (its feed row before, its health after): when many
        polls finish together — a cycle of 304s — they cost one commit instead of one each. ``fn`` must not
        open a transaction of its own.
        """
        if self._store is None:
            raise StoreError("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((functools.partial(fn, self._store, *args, **kwargs), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            store = self._store
            if store is None:
                outcomes: list[tuple[bool, Any]] = [(False, StoreError("store is not open"))] * len(batch)
            else:
                calls = [call for call, _ in batch]
                outcomes = await loop.run_in_executor(self._executor, _run_batch, store, calls)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue  # its poll was cancelled meanwhile; the write stands
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._store is not None:
            await self.call(Store.close)
            self._store = None
        self._executor.shutdown(wait=True)


def _run_batch(store: Store, calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    """Run ``calls`` in one transaction, each in a savepoint; (ok, result or exception) for each."""
    outcomes: list[tuple[bool, Any]] = []
    try:
        with store.transaction() as conn:
            for call in calls:
                conn.execute("SAVEPOINT batched")
                try:
                    value = call()
                except Exception as exc:
                    conn.execute("ROLLBACK TO batched")
                    conn.execute("RELEASE batched")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE batched")
                    outcomes.append((True, value))
    except Exception as exc:  # BEGIN or COMMIT failed: nothing of the batch was kept
        return [(False, exc)] * len(calls)
    return outcomes
