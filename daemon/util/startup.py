"""Start-up cost: a logger that imports structlog only when something is logged, how long ago this
process started (what ``feedwatch check`` reports as its start-up time), and start-up without
garbage collection.

structlog pulls in asyncio (~30 ms): modules that log rarely and sit on the path of quick commands
(``status``, ``check``) take their logger from here instead of from structlog.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec


class LazyLogger:
    """``structlog.get_logger(name)``, bound on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._log: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._log is None:
            import structlog

            self._log = structlog.get_logger(self._name)
        return getattr(self._log, attr)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic garbage collection while the block runs.

    Imports, config and rule loading and compiling the matcher make hundreds of thousands of objects
    and almost no garbage, yet every 700 allocations start a collection that walks the young objects,
    and the older generations get walked as they fill: a tenth of a quick command's CPU went there.
    Reference counting still frees everything as usual; a cycle made meanwhile waits for the next
    collection after the block. Nesting and threads are safe: only the block that found collection
    on turns it back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def seconds_since_start() -> float | None:
    """Wall seconds since this process started (Linux /proc, 10 ms resolution); None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time after boot
    return max(0.0, uptime - started)


def timer() -> float:
    return time.perf_counter()


def after_import(name: str, callback: Callable[[], None]) -> None:
    """Run ``callback`` right after module ``name`` is first imported (at once if it already is).

    Quick commands never import structlog, and must not pay for it just to be told where logs go;
    but a command that does log must never log with structlog's defaults, which print to stdout
    (where `--json` output goes). So the logging set-up waits for structlog's import.
    """
    if name in sys.modules:
        callback()
        return
    sys.meta_path.insert(0, _AfterImport(name, callback))


# The finder and loader below follow importlib's protocols without subclassing importlib.abc, whose
# import (importlib.resources, tempfile, zipfile...) would cost `--version` more than it does.


class _AfterImport:
    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self._name = name
        self._callback = callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != self._name:
            return None
        sys.meta_path.remove(self)  # once; and so the lookup below finds the real module
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenCall(spec.loader, self._callback)  # type: ignore[assignment]
        return spec


class _ThenCall:
    """A module's own loader, with ``callback`` run once the module has executed."""

    def __init__(self, loader: Loader, callback: Callable[[], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback()

    def __getattr__(self, attr: str) -> Any:  # resource readers and the like
        return getattr(self._loader, attr)
