"""Giving freed C heap back to the system now and then, so that a twin running for months keeps a flat RSS.

glibc's malloc keeps memory that was freed in its arenas (one per thread that allocated, up to 8 per core) and
returns it to the kernel only from the top of the main heap. The twin allocates from many threads (the historian's
SQLite writer, IPOPT solves in worker threads, asyncio's executor) and frees in other orders than it allocated, so
free chunks pile up between live ones and resident memory creeps up although the memory in use does not
(issue 21: RSS +6 MB/h with the Python heap flat). ``malloc_trim(0)`` (glibc, ``man 3 malloc_trim``) releases the
free pages of every arena (``madvise(MADV_DONTNEED)``), not only the top; calling it every
:data:`TRIM_EVERY_S` seconds holds RSS at what is in use. Measured in ``docs/performance.md`` (Soak).

Nothing here is needed for correctness: on a C library without ``malloc_trim`` (musl, macOS) the task is not
started and nothing else changes.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

from twin_server.background_task import cancel_and_wait

log = logging.getLogger("linetwin.heap_trim")

TRIM_EVERY_S = 60.0
"""Seconds between two trims (wall time); each runs in a worker thread (see ``docs/performance.md``, Soak, for how
long one takes on the demo line)."""


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_MALLOC_TRIM = _load_malloc_trim()


def trim_available() -> bool:
    """Whether this process's C library has glibc's ``malloc_trim``."""
    return _MALLOC_TRIM is not None


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system now; True when some were released (False also without
    ``malloc_trim``)."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


class HeapTrimmer:
    """Calls :func:`trim_heap` every ``every_s`` seconds while started; ``trims`` counts the calls made,
    ``longest_ms`` the longest one took (ms, in a worker thread: the event loop does not wait for it)."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        if not every_s > 0:
            raise ValueError(f"heap trim period: got {every_s!r} s; expected > 0")
        self.every_s = float(every_s)
        self.trims = 0
        self.longest_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Start trimming (a no-op returning False without ``malloc_trim``)."""
        if not trim_available():
            log.info("malloc_trim not available in this C library: freed C heap is not trimmed")
            return False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="heap-trim")
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            t0 = time.perf_counter()
            await asyncio.to_thread(trim_heap)  # ctypes lets the GIL go: the event loop runs on meanwhile
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - t0) * 1000.0)
            self.trims += 1

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
