"""The recorder: cheap calls on the twin's hot paths, a bounded queue, and one thread writing batches.

Hot path (:meth:`HistoryRecorder.record_scan`, called once per PLC scan by the runtime): per sample one dict
look-up, the deadband test and one tuple of plain numbers (series id, POSIX seconds); one ``deque.append``
of the scan's list; no I/O, no locks. The writer thread wakes every ``flush_interval_s`` (or as soon as
``batch_size`` samples wait) and hands the rows unchanged to the backend, in one transaction (SQLite
converts the times in SQL, with the GIL released, so the writer thread barely competes with the event
loop). A ``kill -9`` therefore loses at most what was queued since the last flush (≤ ``flush_interval_s``,
0.5 s by default).

The queue is bounded (``queue_size`` samples). If the backend falls that far behind, the oldest queued
samples are dropped, counted (``dropped``) and logged (rate-limited) — nothing stops silently. A batch the
backend refuses (e.g. disk full) is kept and retried at the next flush, within the same bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain

from plc_adapters.log_text import RepeatLimiter, shorten
from plc_adapters.sample import Sample
from twin_server.historian.records import EventRow, HistoryBackend, SampleRow, SetpointRow
from twin_server.historian.timebase import now_us, to_us

log = logging.getLogger("linetwin.historian")

RETENTION_CHECK_S = 60.0


@dataclass(slots=True)
class _TagFilter:
    """Per historized tag: its history key and series id, deadband and the last recorded value/status."""

    key: str
    sid: int
    deadband: float
    last_value: float | None = None
    last_status: int = -1


class HistoryRecorder:
    """Queues history records and writes them to ``backend`` in batches from its own thread."""

    def __init__(self, backend: HistoryBackend, flush_interval_s: float = 0.5, batch_size: int = 20_000,
                 queue_size: int = 1_000_000, retention_s: float = 0.0) -> None:
        self.backend = backend
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.retention_s = retention_s
        self._tags: dict[str, dict[str, _TagFilter]] = {}
        self._values: dict[str, _TagFilter] = {}
        self._chunks: deque[list[SampleRow]] = deque()
        self._produced = 0  # samples queued (event loop thread only)
        self._consumed = 0  # samples taken by the writer (writer thread only)
        self._dropped_queue = 0  # oldest queued samples dropped when full (event loop thread only)
        self._dropped_pending = 0  # refused batch trimmed to the bound (writer thread only)
        self._setpoints: deque[SetpointRow] = deque()
        self._events: deque[EventRow] = deque()
        self._pending: list[SampleRow] = []
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._limiter = RepeatLimiter(burst=3, window_s=60.0)
        self.written = 0
        self.failed_batches = 0
        self.last_error = ""
        self.last_flush_s = 0.0

    # -- what is historized ------------------------------------------------------------------------------
    def historize_tag(self, unit: str, tag: str, key: str, deadband: float = 0.0) -> None:
        """Record mirrored samples of ``unit``/``tag`` under ``key`` (the node's string id)."""
        self._tags.setdefault(unit, {})[tag] = _TagFilter(key, self.backend.series_id(key), deadband)

    def historize_value(self, key: str, deadband: float = 0.0) -> None:
        """Record values written to the node ``key`` by the twin itself (estimates, solve statistics)."""
        self._values[key] = _TagFilter(key, self.backend.series_id(key), deadband)

    # -- hot path (event loop thread) ---------------------------------------------------------------------
    def record_scan(self, unit: str, samples: Sequence[Sample], server_ts: datetime) -> None:
        """Queue one scan's samples of ``unit`` (historized tags only, deadband applied)."""
        filters = self._tags.get(unit)
        if filters is None:
            return
        server_s = server_ts.timestamp()
        rows: list[SampleRow] = []
        append = rows.append
        for s in samples:
            f = filters.get(s.tag)
            if f is None:
                continue
            v = s.value
            st = int(s.quality)
            if f.deadband > 0.0 and st == f.last_status and v is not None and f.last_value is not None \
                    and abs(v - f.last_value) <= f.deadband:
                continue
            f.last_value = v
            f.last_status = st
            append((f.sid, s.source_timestamp.timestamp(), v, st, server_s))
        if rows:
            self._queue(rows)

    def _queue(self, rows: list[SampleRow]) -> None:
        self._chunks.append(rows)
        self._produced += len(rows)
        n = self._produced - self._consumed - self._dropped_queue
        if n >= self.batch_size:
            if n > self.queue_size:
                self._drop_oldest(n - self.queue_size)
            self._wake.set()

    def record_value(self, key: str, value: float | None, status: int, ts: datetime) -> None:
        """Queue a value the twin wrote to a historized node of its own (no-op for other nodes)."""
        f = self._values.get(key)
        if f is None:
            return
        if f.deadband > 0.0 and status == f.last_status and value is not None and f.last_value is not None \
                and abs(value - f.last_value) <= f.deadband:
            return
        f.last_value = value
        f.last_status = status
        t = ts.timestamp()
        self._queue([(f.sid, t, value, status, t)])

    def record_setpoint(self, key: str, value: float, source: str, user: str = "", ts: datetime | None = None) -> None:
        """Queue a setpoint the PLC accepted, with who decided it (operator / mpc / recipe / fallback)."""
        self._setpoints.append((key, to_us(ts or datetime.now(UTC)), float(value), source, user))

    def record_event(self, unit: str, message: str, source: str = "control", ts: datetime | None = None) -> None:
        """Queue a control event of ``unit``."""
        self._events.append((to_us(ts or datetime.now(UTC)), unit, source, message))

    def _drop_oldest(self, n: int) -> None:
        """Drop whole scans, oldest first, until ``n`` samples are gone (event loop thread)."""
        dropped = 0
        while dropped < n:
            try:
                dropped += len(self._chunks.popleft())
            except IndexError:
                break
        self._dropped_queue += dropped
        n = dropped
        suppressed = self._limiter.allow("queue-full")
        if suppressed is not None:
            log.warning("historian queue full (%d samples): dropped the %d oldest (%d dropped in all)%s",
                        self.queue_size, n, self.dropped, f"; {suppressed} similar warnings suppressed" if suppressed
                        else "")

    # -- the writer thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="linetwin-historian", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush what is queued and stop the thread (the backend stays open; close it after)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60.0)
            self._thread = None
        else:
            self.flush()

    def queue_depth(self) -> int:
        return max(self._produced - self._consumed - self._dropped_queue, 0) + len(self._pending)

    @property
    def dropped(self) -> int:
        """Samples lost because the queue was full (oldest first)."""
        return self._dropped_queue + self._dropped_pending

    def _run(self) -> None:
        next_retention = time.monotonic()
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self.flush()
            if self.retention_s > 0 and time.monotonic() >= next_retention:
                next_retention = time.monotonic() + RETENTION_CHECK_S
                self.apply_retention()
            if self._stop:
                self.flush()
                return

    def apply_retention(self) -> int:
        """Delete what is older than the retention age; the number of rows deleted."""
        try:
            n = self.backend.purge_before(now_us() - int(self.retention_s * 1e6))
        except Exception as exc:  # a purge failing must not stop recording
            log.warning("historian retention purge failed: %s", shorten(str(exc), 200))
            return 0
        if n:
            log.info("historian retention: deleted %d rows older than %g days", n, self.retention_s / 86400)
        return n

    def flush(self) -> None:
        """Write everything queued so far (called by the writer thread; directly only when no thread runs)."""
        while True:
            rows = self._pending
            chunks: list[list[SampleRow]] = []
            n = len(rows)
            while n < self.batch_size:
                try:
                    chunk = self._chunks.popleft()
                except IndexError:
                    break
                chunks.append(chunk)
                n += len(chunk)
            if chunks:
                taken = n - len(rows)
                self._consumed += taken
                rows = list(chain(rows, *chunks))
            setpoints = _take(self._setpoints, len(self._setpoints))
            events = _take(self._events, len(self._events))
            if not rows and not setpoints and not events:
                self.backend.idle()
                return
            t0 = time.perf_counter()
            try:
                self.backend.write(rows, setpoints, events)
            except Exception as exc:
                self._pending = rows
                self._setpoints.extendleft(reversed(setpoints))
                self._events.extendleft(reversed(events))
                self.failed_batches += 1
                self.last_error = shorten(str(exc), 200)
                suppressed = self._limiter.allow("write-failed")
                if suppressed is not None:
                    log.error("historian %s write failed (%d samples kept for retry): %s", self.backend.name,
                              len(rows), self.last_error)
                if len(rows) > self.queue_size:
                    excess = len(rows) - self.queue_size
                    self._pending = rows[excess:]
                    self._dropped_pending += excess
                return
            self._pending = []
            self.written += len(rows)
            self.last_flush_s = time.perf_counter() - t0
            if self._produced - self._consumed - self._dropped_queue < self.batch_size:
                return

    def status_text(self) -> str:
        """``history: <backend> <state>, N stored, queue M[, D dropped]`` for the status line."""
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        return (f"history: {self.backend.name} {self.backend.state()}, {self.backend.stored_samples()} stored, "
                f"queue {self.queue_depth()}{dropped}")


def _take(queue: deque, n: int) -> list:  # type: ignore[type-arg]
    """Pop up to ``n`` items from the left (another thread may pop too: stops when empty)."""
    out = []
    pop = queue.popleft
    try:
        for _ in range(n):
            out.append(pop())
    except IndexError:
        pass
    return out
