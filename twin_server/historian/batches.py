"""Recorded batches of a unit, read back from the historian (``linetwin fit``, what-if runs on a recorded batch).

Batch boundaries are the control events the twin's control loop records (:mod:`twin_server.control_loop`, and the
bench's :mod:`hil.stepped_batch` with a recorder): ``batch started in mode …`` at StartBatch and ``batch stopped
at t=… s (…)`` at StopBatch or batch end. A start without a stop (the twin stopped, or the batch still runs) ends
at the next start or at the end of the range asked for, and is marked ``complete=False``.

Times are plant seconds. The twin's historian stamps what it records with the wall clock; on a HIL bench running
N× faster than real time (the control loop's ``time_scale``) a batch of 7200 plant seconds is recorded over 7200 / N
wall seconds. The StopBatch event states the batch's length on the twin's batch clock (``t=… s``, plant seconds),
so a complete batch reads back in plant seconds: its recorded times × :attr:`RecordedBatch.time_scale` (plant
seconds per recorded second: N on such a bench, 1 on a plant and for a batch the bench recorder wrote in plant
time; to the stop event's whole second, i.e. within 0.03 % for a 30-minute batch). A batch without a StopBatch
event reads back as recorded (scale 1).

A batch's id is its StartBatch time, ISO 8601 UTC to the millisecond with a ``Z`` (``2026-12-06T08:00:00.000Z``):
unique per unit, readable, and what ``--batch`` takes (any unique prefix of it, e.g. ``2026-12-06T08``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin_server.historian.records import HistoryBackend
from twin_server.historian.timebase import from_us

__all__ = ["BatchSeries", "RecordedBatch", "batch_id", "find_batches", "read_batch_series", "select_batches"]

START_PREFIX = "batch started"
STOP_PREFIX = "batch stopped"
_STOP_TIME = re.compile(r"batch stopped at t=(\d+(?:\.\d*)?) s")


class BatchSelectionError(ValueError):
    """No batch, or an unknown / ambiguous batch id (the message says which and what there is)."""


def batch_id(t_us: int) -> str:
    """The id of a batch started at ``t_us`` (µs since the epoch)."""
    return from_us(t_us).strftime("%Y-%m-%dT%H:%M:%S.") + f"{(t_us // 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class RecordedBatch:
    """One recorded batch of ``unit``: StartBatch at ``start_us``, StopBatch/end at ``end_us`` (µs since epoch)."""

    unit: str
    start_us: int
    end_us: int
    complete: bool
    start_message: str = ""
    stop_time_s: float | None = None
    """The twin's batch clock at StopBatch (plant seconds since StartBatch, from the stop event); None without one."""

    @property
    def id(self) -> str:
        return batch_id(self.start_us)

    @property
    def duration_s(self) -> float:
        """Recorded seconds from StartBatch to the batch's end (wall seconds on a HIL bench at N×)."""
        return (self.end_us - self.start_us) / 1e6

    @property
    def plant_duration_s(self) -> float:
        """Plant seconds from StartBatch to the batch's end (the stop event's ``t``, else :attr:`duration_s`)."""
        return self.stop_time_s if self.stop_time_s is not None else self.duration_s

    @property
    def time_scale(self) -> float:
        """Plant seconds per recorded second (module docstring): N for a batch of a HIL bench at N×, else 1."""
        if self.stop_time_s is None or self.stop_time_s <= 0 or self.end_us <= self.start_us:
            return 1.0
        return self.stop_time_s / self.duration_s


def find_batches(backend: HistoryBackend, unit: str, start_us: int, end_us: int) -> list[RecordedBatch]:
    """The batches of ``unit`` that started in ``[start_us, end_us]``, oldest first."""
    events = sorted(backend.read_events(unit, start_us, end_us), key=lambda e: e[0])
    out: list[RecordedBatch] = []
    open_start: tuple[int, str] | None = None
    for t, ev_unit, _source, message in events:
        if ev_unit != unit:
            continue
        if message.startswith(START_PREFIX):
            if open_start is not None:
                out.append(RecordedBatch(unit, open_start[0], t, False, open_start[1]))
            open_start = (t, message)
        elif message.startswith(STOP_PREFIX) and open_start is not None:
            stop = _STOP_TIME.match(message)
            out.append(RecordedBatch(unit, open_start[0], t, True, open_start[1],
                                     float(stop.group(1)) if stop else None))
            open_start = None
    if open_start is not None:
        out.append(RecordedBatch(unit, open_start[0], end_us, False, open_start[1]))
    return out


def select_batches(found: Sequence[RecordedBatch], wanted: Sequence[str]) -> list[RecordedBatch]:
    """The batches named by ``wanted`` (ids or unique prefixes), in the order given; unknown or ambiguous refused."""
    chosen: list[RecordedBatch] = []
    for want in wanted:
        matches = [b for b in found if b.id.startswith(want)]
        if not matches:
            known = ", ".join(b.id for b in found[-10:]) or "none"
            raise BatchSelectionError(f"--batch {want}: no recorded batch with that id; batches: {known}")
        if len(matches) > 1:
            raise BatchSelectionError(f"--batch {want}: matches {len(matches)} batches "
                                      f"({', '.join(b.id for b in matches[:5])}); give more of the id")
        if matches[0] in chosen:
            raise BatchSelectionError(f"--batch {want}: batch {matches[0].id} named twice")
        chosen.append(matches[0])
    return chosen


@dataclass(frozen=True)
class BatchSeries:
    """One tag's recorded values in a batch: plant seconds since StartBatch (recorded seconds ×
    :attr:`RecordedBatch.time_scale`) and values (NaN = Bad / no value)."""

    tag: str
    times_s: np.ndarray
    values: np.ndarray


def read_batch_series(backend: HistoryBackend, key_prefix: str, tags: Sequence[str],
                      batch: RecordedBatch) -> dict[str, BatchSeries]:
    """The values of ``tags`` (history key ``<key_prefix>.<tag>``) from StartBatch to the batch's end; a tag with no
    history is absent from the result. Bad samples (status not Good/Uncertain) are NaN."""
    out: dict[str, BatchSeries] = {}
    for tag in tags:
        raw = backend.read_raw(f"{key_prefix}.{tag}", batch.start_us, batch.end_us)
        if not len(raw):
            continue
        t = (np.asarray(raw.times_us, dtype=np.int64) - batch.start_us) / 1e6 * batch.time_scale
        v = np.array([np.nan if val is None or (st & 0x80000000) else float(val)
                      for val, st in zip(raw.values, raw.statuses, strict=True)], dtype=float)
        out[tag] = BatchSeries(tag, t, v)
    return out
