"""The embedded historian store: one SQLite file (stdlib ``sqlite3``) in WAL mode.

Schema: ``series(id, key)`` names each historized node once; ``samples(series, t, value, status, server_t)``
with an index on ``(series, t)`` (times in µs since the epoch, see :mod:`.timebase`); ``setpoints`` and
``events`` beside it. One writer (the recorder's thread) inserts each batch in one transaction with
``executemany``; readers use their own connections (WAL lets them read while the writer writes).

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (committed pages are in the OS);
on power loss the transactions since the last WAL checkpoint may be lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from twin_server.historian.records import EventRow, RawSeries, SampleRow, SetpointRow

log = logging.getLogger("linetwin.historian")

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS samples (series INTEGER NOT NULL, t INTEGER NOT NULL, value REAL,
                                    status INTEGER NOT NULL, server_t INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_series_time ON samples (series, t);
CREATE TABLE IF NOT EXISTS setpoints (series INTEGER NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL,
                                      source TEXT NOT NULL, user TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS setpoints_by_time ON setpoints (t);
CREATE TABLE IF NOT EXISTS events (t INTEGER NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL,
                                   message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events (t);
"""

FILE_NAME = "history.sqlite"
WRITER_CACHE_MIN_KIB = 2048
WRITER_CACHE_KIB_PER_SERIES = 8
WRITER_CACHE_MAX_KIB = 65536
"""The writer's SQLite page cache (``PRAGMA cache_size``): 8 KiB per series, at least 2 MiB (SQLite's default), at
most 64 MiB (8,192 series and more). Appending a batch touches the last leaf page of each series in
``samples_by_series_time`` (4 KiB pages) and the table's last pages, so twice that hot set keeps every page it needs
cached. SQLite keeps every page it has read or written until its cache is full, so the cache's bound, not the
file, is what the writer can hold: with a fixed 64 MiB the twin's memory could follow its file for hours (issue 21)."""


def writer_cache_kib(series: int) -> int:
    """The writer's page cache for ``series`` historized series, KiB (see :data:`WRITER_CACHE_KIB_PER_SERIES`)."""
    return min(max(series * WRITER_CACHE_KIB_PER_SERIES, WRITER_CACHE_MIN_KIB), WRITER_CACHE_MAX_KIB)


_INSERT_SAMPLE = ("INSERT INTO samples VALUES (?, CAST(round(? * 1000000.0) AS INTEGER), ?, ?, "
                  "CAST(round(? * 1000000.0) AS INTEGER))")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SqliteStore:
    """History in ``<data_dir>/history.sqlite``. Opening an existing file appends to it."""

    name = "sqlite"

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE_NAME
        self._writer = _connect(self.path)
        self._writer.executescript(SCHEMA)
        self._series: dict[str, int] = dict(
            (k, i) for i, k in self._writer.execute("SELECT id, key FROM series"))
        self._cache_kib = 0
        self._size_cache()
        self._stored = self._writer.execute("SELECT count(*) FROM samples").fetchone()[0]
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # -- writing (one thread) -----------------------------------------------------------------------
    def series_id(self, key: str) -> int:
        """The id of ``key`` (inserted on first use; call before writing samples of it)."""
        sid = self._series.get(key)
        if sid is None:
            cur = self._writer.execute("INSERT INTO series (key) VALUES (?)", (key,))
            sid = int(cur.lastrowid or 0)
            self._series[key] = sid
            self._size_cache()
        return sid

    def _size_cache(self) -> None:
        kib = writer_cache_kib(len(self._series))
        if kib != self._cache_kib:
            self._writer.execute(f"PRAGMA cache_size=-{kib}")
            self._cache_kib = kib

    def write(self, samples: Sequence[SampleRow], setpoints: Sequence[SetpointRow],
              events: Sequence[EventRow]) -> None:
        ids = self._series
        w = self._writer
        for key in {s[0] for s in setpoints if s[0] not in ids}:
            self.series_id(key)
        w.execute("BEGIN")
        try:
            if samples:  # seconds -> µs in SQL: no per-row Python work
                w.executemany(_INSERT_SAMPLE, samples)
            if setpoints:
                w.executemany("INSERT INTO setpoints VALUES (?, ?, ?, ?, ?)",
                              [(ids[k], t, v, src, user) for k, t, v, src, user in setpoints])
            if events:
                w.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", events)
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            self._series = dict((k, i) for i, k in w.execute("SELECT id, key FROM series"))
            raise
        self._stored += len(samples)

    def idle(self) -> None:
        return None

    def purge_before(self, t_us: int) -> int:
        w = self._writer
        n = 0
        w.execute("BEGIN")
        for sid in list(self._series.values()):
            n += w.execute("DELETE FROM samples WHERE series = ? AND t < ?", (sid, t_us)).rowcount
        n_samples = n
        n += w.execute("DELETE FROM setpoints WHERE t < ?", (t_us,)).rowcount
        n += w.execute("DELETE FROM events WHERE t < ?", (t_us,)).rowcount
        w.execute("COMMIT")
        self._stored -= n_samples
        return n

    # -- reading (any thread, one connection per thread) ----------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _sid(self, key: str) -> int | None:
        sid = self._series.get(key)
        if sid is None:
            row = self._reader().execute("SELECT id FROM series WHERE key = ?", (key,)).fetchone()
            sid = row[0] if row else None
        return sid

    def read_raw(self, key: str, start_us: int, end_us: int, limit: int = 0, reverse: bool = False) -> RawSeries:
        sid = self._sid(key)
        out = RawSeries()
        if sid is None:
            return out
        order = "DESC" if reverse else "ASC"
        sql = (f"SELECT t, value, status, server_t FROM samples WHERE series = ? AND t >= ? AND t <= ? "
               f"ORDER BY t {order}, rowid {order}" + (" LIMIT ?" if limit > 0 else ""))
        args: tuple[int, ...] = (sid, start_us, end_us, limit) if limit > 0 else (sid, start_us, end_us)
        rows = self._reader().execute(sql, args).fetchall()
        if rows:
            t, v, st, srv = zip(*rows, strict=True)
            out.times_us, out.values, out.statuses, out.server_times_us = list(t), list(v), list(st), list(srv)
        return out

    def read_setpoints(self, key: str | None, start_us: int, end_us: int) -> list[SetpointRow]:
        sql = ("SELECT s.key, p.t, p.value, p.source, p.user FROM setpoints p JOIN series s ON s.id = p.series "
               "WHERE p.t >= ? AND p.t <= ?")
        args: tuple[object, ...] = (start_us, end_us)
        if key is not None:
            sql += " AND s.key = ?"
            args += (key,)
        return [tuple(r) for r in self._reader().execute(sql + " ORDER BY p.t, p.rowid", args)]  # type: ignore[misc]

    def read_events(self, unit: str | None, start_us: int, end_us: int) -> list[EventRow]:
        sql = "SELECT t, unit, source, message FROM events WHERE t >= ? AND t <= ?"
        args: tuple[object, ...] = (start_us, end_us)
        if unit is not None:
            sql += " AND unit = ?"
            args += (unit,)
        return [tuple(r) for r in self._reader().execute(sql + " ORDER BY t, rowid", args)]  # type: ignore[misc]

    def keys(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT key FROM series ORDER BY key")]

    def state(self) -> str:
        return "ok"

    def stored_samples(self) -> int:
        return self._stored

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()
