"""feedparser in a child process with a deadline and a memory cap, for the documents the fast path will
not vouch for.

feedparser cannot be stopped from inside: 1 MiB of prefixed-namespace elements takes it 20 s, 10 MiB of
deep nesting 22 s and 600 MB. So a fallback parse runs in a fresh ``python`` child whose address space is
capped with RLIMIT_AS (the cap on top of what the interpreter and feedparser already map) and which is
killed at the deadline; the feed is then reported as failing with that reason. A child starts only for a
fallback, so a daemon whose feeds are all well-formed never starts one.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import FeedParseError
from daemon.intake.rawfeed import RawFeed

MiB = 1024 * 1024
_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the ``daemon`` package
_CHILD_OUT_OF_MEMORY = 3


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds of one fallback parse."""

    seconds: float = 10.0
    memory: int = 256 * MiB  # address space the parse may add to the child's own


DEFAULT_LIMITS = ParseLimits()


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _mib(size: int) -> str:
    return f"{size / MiB:g} MiB"


def _command() -> tuple[list[str], dict[str, str]]:
    # -S skips site's start-up (an editable install's finder alone costs ~40 ms); the child gets this
    # process's import path instead, so it runs the same feedwatch and feedparser.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_ROOT, *(p for p in sys.path if p and os.path.isdir(p))]))
    return [sys.executable, "-S", "-m", "daemon.intake.bounded"], env


def _request(body: bytes, url: str, content_type: str | None, original: bytes, limits: ParseLimits) -> bytes:
    return pickle.dumps((body, url, content_type, original, limits.memory), protocol=pickle.HIGHEST_PROTOCOL)


def _outcome(returncode: int, stdout: bytes, stderr: bytes, *, url: str, limits: ParseLimits) -> RawFeed:
    if returncode == _CHILD_OUT_OF_MEMORY:
        raise FeedParseError(f"parse exceeded {_mib(limits.memory)}", feed_url=url)
    if returncode == 0:
        result = pickle.loads(stdout)  # written by our own child, never by the feed
        if isinstance(result, RawFeed):
            return result
        raise FeedParseError(str(result), feed_url=url)
    if returncode < 0:
        reason = f"the parser process died (signal {-returncode})"
    else:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        reason = f"the parser process failed: {tail[0][:300]}"
    raise FeedParseError(reason, feed_url=url)


def _late(url: str, limits: ParseLimits) -> FeedParseError:
    return FeedParseError(f"parse took longer than {limits.seconds:g} s", feed_url=url)


def read(
    body: bytes, *, url: str, content_type: str | None, original: bytes, limits: ParseLimits = DEFAULT_LIMITS
) -> RawFeed:
    """feedparser's reading of ``body`` from a bounded child; FeedParseError for a refusal or an overrun."""
    argv, env = _command()
    try:
        done = subprocess.run(
            argv,
            input=_request(body, url, content_type, original, limits),
            capture_output=True,
            timeout=limits.seconds,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped the child
        raise _late(url, limits) from None
    except OSError as exc:
        raise FeedParseError(f"could not start the parser process: {exc}", feed_url=url) from None
    return _outcome(done.returncode, done.stdout, done.stderr, url=url, limits=limits)


async def read_async(
    body: bytes, *, url: str, content_type: str | None, original: bytes, limits: ParseLimits = DEFAULT_LIMITS
) -> RawFeed:
    """``read`` for the event loop: waits for the child without holding a thread."""
    argv, env = _command()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise FeedParseError(f"could not start the parser process: {exc}", feed_url=url) from None
    try:
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(_request(body, url, content_type, original, limits)), limits.seconds
        )
    except TimeoutError:
        raise _late(url, limits) from None
    finally:
        if proc.returncode is None:  # deadline passed or this poll was cancelled: stop our child
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return _outcome(proc.returncode, stdout, stderr, url=url, limits=limits)


def _child() -> int:
    """Read one request on stdin, cap memory, parse, write the pickled RawFeed (or refusal) on stdout."""
    body, url, content_type, original, memory = pickle.loads(sys.stdin.buffer.read())
    from daemon.intake import fpparse  # feedparser's imports count before the cap, not against it

    cap = _vm_size() + memory
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        result: object = fpparse.read(body, url=url, content_type=content_type, original=original)
    except MemoryError:
        return _CHILD_OUT_OF_MEMORY
    except FeedParseError as exc:
        result = exc.reason
    try:
        sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    except MemoryError:
        return _CHILD_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_child())
    except MemoryError:
        os._exit(_CHILD_OUT_OF_MEMORY)
