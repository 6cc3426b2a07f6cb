"""Where feed documents are parsed, for the poller: the fast path on one parse thread (or in worker
processes when ``parse_workers`` is set), and feedparser fallbacks in bounded child processes awaited from
the event loop, so no thread — least of all the default executor's, which reloads and file reads share —
is ever pinned by a hostile document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING

import structlog

from daemon.errors import FeedParseError
from daemon.intake import bounded
from daemon.intake.bounded import DEFAULT_LIMITS, ParseLimits

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from daemon.intake.parse import Fallback, ParsedFeed, Refused

log = structlog.get_logger(__name__)

FALLBACKS_AT_ONCE = 2  # feedparser children at a time: each may take its whole deadline and memory cap
Aside = Callable[[], AbstractAsyncContextManager[object]]


def _parse_on_thread(body: bytes, name: str, url: str, content_type: str | None) -> ParsedFeed | Fallback | Refused:
    """``parse_in_worker``, with the parsing stack (ElementTree and all) imported by the parse thread on first
    use: a cycle whose feeds all answer 304 never loads it."""
    from daemon.intake.parse import parse_in_worker

    return parse_in_worker(body, name, url, content_type)


class ParsePool:
    """Worker processes for the fast path (``parse_workers``), replaced whole when one of them dies.

    A worker killed mid-parse (out of memory, a signal, a crash in C code) leaves a ProcessPoolExecutor
    broken for good: every later parse would fail at once, for every feed.
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        import multiprocessing  # only when parse workers are configured
        from concurrent.futures import ProcessPoolExecutor

        # "spawn": forking a process that runs threads (the store's, the resolver's) is unsafe.
        return ProcessPoolExecutor(max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"))

    def renew(self, broken: Executor) -> bool:
        """Replace ``broken`` if it is still the current pool; False when another poll already did."""
        if self.executor is not broken:
            return False
        broken.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()
        return True

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class FeedParser:
    """Parses fetched documents for the poller; ``parse`` raises FeedParseError for a refused feed."""

    def __init__(self, *, workers: int = 0, limits: ParseLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        # One thread: the fast path takes a few ms per feed and mostly holds the GIL anyway.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedwatch-parse")
        self._pool = ParsePool(workers) if workers else None
        self._fallbacks: asyncio.Semaphore | None = None  # made on first use, inside the running loop

    def shutdown(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown()

    async def parse(
        self, name: str, url: str, body: bytes, content_type: str | None, *, aside: Aside | None = None
    ) -> ParsedFeed:
        """The feed in ``body``; ``aside`` is entered while a child process parses it (the feedparser fallback),
        so the caller can let others use what it holds meanwhile."""
        loop = asyncio.get_running_loop()
        if self._pool is not None:
            # A worker process gets the function by name: the parse module's own, so it imports only that.
            from daemon.intake.parse import parse_in_worker as work
        else:
            work = _parse_on_thread
        executor = self._pool.executor if self._pool is not None else self._thread
        try:
            outcome = await loop.run_in_executor(executor, work, body, name, url, content_type)
        except BrokenExecutor:  # a worker process died (BrokenProcessPool)
            if self._pool is None:
                raise
            if self._pool.renew(executor):
                log.error("parse_pool_restarted", feed=name, hint="a parser process died; a new pool took over")
            raise FeedParseError("the parser process died while this feed was being parsed", feed_url=url) from None
        from daemon.intake.parse import Fallback, Refused  # loaded by now, by the parse itself

        if isinstance(outcome, Refused):
            if outcome.crash is not None:
                # A parser bug on one document is that feed's problem: record it and back off like any failure.
                log.error("feed_parse_crashed", feed=name, url=url, error=outcome.reason, traceback=outcome.crash)
            raise FeedParseError(outcome.reason, feed_url=url)
        if isinstance(outcome, Fallback):
            return await self._fallback(name, url, body, content_type, outcome, aside)
        return outcome

    async def _fallback(
        self, name: str, url: str, body: bytes, content_type: str | None, fallback: Fallback, aside: Aside | None
    ) -> ParsedFeed:
        log.debug("feed_parse_fallback", feed=name, url=url, reason=fallback.reason)
        if self._fallbacks is None:
            self._fallbacks = asyncio.Semaphore(FALLBACKS_AT_ONCE)
        async with AsyncExitStack() as stack:
            if aside is not None:
                await stack.enter_async_context(aside())
            async with self._fallbacks:
                raw = await bounded.read_async(
                    fallback.body, url=url, content_type=content_type, original=body, limits=self.limits
                )
        from daemon.intake.parse import build

        loop = asyncio.get_running_loop()
        notes = list(fallback.notes)
        return await loop.run_in_executor(self._thread, lambda: build(raw, feed=name, url=url, notes=notes))
