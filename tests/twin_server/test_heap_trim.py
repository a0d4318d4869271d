"""Freed C heap goes back to the system (twin_server/heap_trim.py, issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_until
from twin_server.heap_trim import HeapTrimmer, trim_available, trim_heap

needs_glibc = pytest.mark.skipif(not trim_available(), reason="no malloc_trim in this C library (not glibc)")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    pytest.skip("no VmRSS in /proc/self/status")


@needs_glibc
def test_trim_gives_back_freed_heap_held_between_live_blocks():
    """64 MB in 1 KiB blocks (malloc, not Python's small-object allocator), every 16th kept alive so that glibc
    cannot give the rest back from the top of its heap: freeing them leaves RSS up until the heap is trimmed."""
    trim_heap()
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(64 * 1024)]
    kept = blocks[::16]
    del blocks
    held = _rss_mb()
    assert trim_heap()
    given_back = held - _rss_mb()
    assert given_back > 32.0, f"RSS fell by only {given_back:.1f} MB after the trim; expected most of 60 MB"
    assert len(kept) == 4 * 1024


@needs_glibc
async def test_trimmer_trims_periodically_and_stops():
    trimmer = HeapTrimmer(every_s=0.02)
    assert trimmer.start()
    await wait_until(lambda: trimmer.trims >= 3, timeout_s=10.0, what="three trims")
    await trimmer.stop()
    done = trimmer.trims
    await trimmer.stop()  # twice is harmless
    assert trimmer.trims == done


def test_a_period_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="heap trim period: got 0"):
        HeapTrimmer(every_s=0)
