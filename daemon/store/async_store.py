"""The store on its own thread, for the asyncio side of the daemon."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

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

    async def aclose(self) -> None:
        if self._store is not None:
            await self.call(Store.close)
            self._store = None
        self._executor.shutdown(wait=True)
