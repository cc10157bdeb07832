"""Process-wide memory policy of Backstop's long-running processes (the collector, the dashboard server).

glibc gives every thread that allocates its own heap arena (up to 8 per core) and keeps the pages freed in
an arena for that arena: a collector whose writer, scheduler and ``asyncio.to_thread`` workers all
allocate ends up holding several arenas' worth of freed memory. Two arenas bound that; the children this
process starts (the dashboard server) inherit the setting through the environment.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Limit this process's glibc malloc arenas (and its future children's); False where there is no glibc
    or the operator chose a value already (``MALLOC_ARENA_MAX`` in the environment wins)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
