"""The daemon's malloc setting: one glibc arena shared by all its threads.

glibc gives each thread that allocates its own arena (up to eight per core), and an arena keeps the
memory freed in it for itself. The daemon's store, parse and worker threads take turns under the GIL
anyway; their own arenas only added ~2 MB to its resident memory after the first poll cycle.
"""

from __future__ import annotations

import os

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas(count: int = 1) -> bool:
    """Ask glibc for at most ``count`` malloc arenas, before the daemon starts its threads.

    Does nothing (False) where the C library is not glibc, or where ``MALLOC_ARENA_MAX`` is set in the
    environment: glibc has read it at start, and the operator's choice stands.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not _glibc():
        return False
    try:
        import ctypes  # only here: the quick commands never tune malloc

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # a Python built without ctypes, an unusual libc
        return False
    return bool(mallopt(M_ARENA_MAX, count))


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name, or no confstr (not a POSIX system)
        return False
