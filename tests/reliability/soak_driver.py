"""Soak driver, run as its own process: poll every configured feed through a real Service, many times.

Each cycle polls all feeds concurrently (as the scheduler would when their times coincide) and runs one
outbox pass, until MAX_POLLS polls are done or SECONDS have passed. Every REPORT_EVERY cycles it prints
one JSON line with its RSS, open file descriptors, threads and asyncio tasks, so the test can compare
the start of the run with its end.

    python -m tests.reliability.soak_driver CONFIG MAX_POLLS SECONDS
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

import psutil

from daemon.config.load import load_config
from daemon.service.app import Service
from daemon.service.log import setup_logging
from daemon.service.systemd import Notifier

REPORT_EVERY = 50


def sample(cycle: int, polls: int, started: float) -> dict[str, float]:
    gc.collect()
    proc = psutil.Process()
    return {
        "cycle": cycle,
        "polls": polls,
        "elapsed": round(time.monotonic() - started, 2),
        "rss": proc.memory_info().rss,
        "fds": proc.num_fds(),
        "threads": proc.num_threads(),
        "tasks": len(asyncio.all_tasks()),
    }


async def main(config_path: str, max_polls: int, seconds: float) -> None:
    config = load_config(config_path)
    setup_logging("warning", json=True, stream=sys.stderr)  # stdout carries the samples
    service = Service(config, notifier=Notifier(None))
    await service._start()  # the daemon's own start-up, without the scheduler: the loop below is the clock
    assert service.worker is not None
    feeds = [f for f in config.feeds if f.enabled]
    polls = 0
    started = time.monotonic()
    try:
        cycle = 0
        while polls < max_polls and time.monotonic() - started < seconds:
            cycle += 1
            await asyncio.gather(*(service.poll(f) for f in feeds))
            polls += len(feeds)
            await service.worker.run_once()
            if cycle % REPORT_EVERY == 0 or cycle == 1:
                print(json.dumps(sample(cycle, polls, started)), flush=True)
        print(json.dumps(sample(cycle, polls, started)), flush=True)
    finally:
        await service.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
