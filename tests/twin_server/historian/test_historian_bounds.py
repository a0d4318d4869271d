"""The SQLite store stays bounded on a run of months (issue 21): its memory at the stated bound however large the
history file grows, and its file flat once retention deletes as much as is recorded.

SQLite keeps every page it reads or writes in the connection's page cache until the cache is full; with a
cache of 64 MiB the twin's resident memory grew ~10 MB/h with the history file. The memory SQLite holds is
measured with SQLite's own counter (``sqlite3_status64(SQLITE_STATUS_MEMORY_USED)``, process-wide) of the
library the stdlib ``sqlite3`` module is linked against.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from twin_server.historian.sqlite_store import (
    FILE_NAME,
    WRITER_CACHE_MAX_KIB,
    WRITER_CACHE_MIN_KIB,
    SqliteStore,
    writer_cache_kib,
)

SQLITE_STATUS_MEMORY_USED = 0
MIB = 1024 * 1024
HISTORY_MIB = 12
"""History of 200 series written by the test: 6× the writer's cache for them and 3× the bound below, all of it
within the fixed 64 MiB cache that let memory grow with the file (that cache would hold ~12 MiB more)."""
MEMORY_BOUND_MIB = 4
"""What SQLite may hold more after writing it: the writer's cache for 200 series (2 MiB) and 2 MiB of bookkeeping."""


def _sqlite_memory_used() -> int:
    """Bytes SQLite holds now in this process (all connections)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("libsqlite3 not found by ctypes (stdlib sqlite3 linked statically?): SQLite's counter unreadable")
    lib = ctypes.CDLL(name)
    current, highwater = ctypes.c_int64(), ctypes.c_int64()
    if lib.sqlite3_status64(SQLITE_STATUS_MEMORY_USED, ctypes.byref(current), ctypes.byref(highwater), 0) != 0:
        pytest.skip("sqlite3_status64 failed")
    return current.value


def test_writer_page_cache_is_the_stated_bound_for_the_series_it_writes(tmp_path):
    store = SqliteStore(tmp_path)
    try:
        def cache_kib() -> int:
            return -int(store._writer.execute("PRAGMA cache_size").fetchone()[0])

        assert cache_kib() == WRITER_CACHE_MIN_KIB
        for i in range(1000):
            store.series_id(f"line.unit.tag_{i:04d}")
        assert cache_kib() == writer_cache_kib(1000) == 8000
    finally:
        store.close()
    reopened = SqliteStore(tmp_path)
    try:
        assert reopened._writer.execute("PRAGMA cache_size").fetchone()[0] == -8000  # sized by the stored series
    finally:
        reopened.close()
    assert writer_cache_kib(200) == WRITER_CACHE_MIN_KIB == 2048
    assert writer_cache_kib(1_000_000) == WRITER_CACHE_MAX_KIB == 65536


def test_sqlite_memory_stays_at_its_bound_while_history_grows_past_it(tmp_path):
    store = SqliteStore(tmp_path)
    try:
        sids = [store.series_id(f"line.unit.tag_{i:03d}") for i in range(200)]
        before = _sqlite_memory_used()
        t0 = 1.7e9
        path = tmp_path / FILE_NAME
        scan = 0
        while path.stat().st_size < HISTORY_MIB * MIB:
            rows = [(sid, t0 + (scan + k) * 0.5, float(scan + k) + sid * 1e-3, 0, t0 + (scan + k) * 0.5)
                    for k in range(100) for sid in sids]
            store.write(rows, [], [])
            scan += 100
        grown = _sqlite_memory_used() - before
    finally:
        store.close()
    assert grown <= MEMORY_BOUND_MIB * MIB, (
        f"SQLite holds {grown / MIB:.1f} MiB more after writing a {HISTORY_MIB} MiB history; expected at most "
        f"{MEMORY_BOUND_MIB} MiB (the writer's page cache is {writer_cache_kib(200) / 1024:g} MiB)")


def test_retention_holds_the_history_file_flat(tmp_path):
    """Recorded for 8 days with 2 days of retention: SQLite reuses the pages retention frees, so the file stops
    growing once a day's purge frees what a day records (~3 days: retention + the day being written)."""
    store = SqliteStore(tmp_path)
    path = tmp_path / FILE_NAME
    day_s, per_day, retention_days = 86400.0, 2500, 2
    sids = [store.series_id(f"line.unit.tag_{i:02d}") for i in range(20)]
    t0 = 1.7e9
    sizes = []
    try:
        for day in range(8):
            for chunk in range(0, per_day, 500):
                rows = [(sid, t0 + day * day_s + (chunk + k) * day_s / per_day, float(k), 0, t0)
                        for k in range(500) for sid in sids]
                store.write(rows, [], [(int((t0 + day * day_s) * 1e6), "unit", "control", f"day {day}")])
            store.purge_before(int((t0 + (day + 1 - retention_days) * day_s) * 1e6))
            store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes.append(path.stat().st_size)
        assert store.stored_samples() == retention_days * per_day * len(sids)
    finally:
        store.close()
    assert sizes[-1] > sizes[0]
    assert max(sizes[3:]) <= 1.1 * sizes[3], f"history file grew under retention: {sizes} bytes after each day"
