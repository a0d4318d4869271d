"""Recording a bench batch straight into a historian store, as the twin's historian would have kept it.

:class:`StoreBatchRecorder` implements :class:`hil.batch_recording.BatchRecorder` (structurally: ``twin_server``
does not import ``hil``): the unit's tag values under the keys the twin historizes them as (``<line>.<unit>.<tag>``,
status Good, or ``BadNoCommunication`` with no value), the setpoints the PLC accepted and the control events,
timestamped ``start`` + plant seconds. Rows are written to the backend in one transaction per
:data:`FLUSH_ROWS` samples and at :meth:`StoreBatchRecorder.close`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from asyncua import ua

from twin_server.historian.records import EventRow, HistoryBackend, SampleRow, SetpointRow
from twin_server.historian.timebase import to_us

FLUSH_ROWS = 20_000
_BAD = int(ua.StatusCodes.BadNoCommunication)


class StoreBatchRecorder:
    """Writes one unit's batch into ``backend``; ``start`` (aware UTC datetime) is StartBatch's timestamp."""

    def __init__(self, backend: HistoryBackend, line: str, unit: str, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start: got {start!r}, a naive datetime; expected an aware UTC datetime")
        self.backend = backend
        self.line = line
        self.unit = unit
        self.start = start
        self._keys: dict[str, tuple[str, int]] = {}
        self._samples: list[SampleRow] = []
        self._setpoints: list[SetpointRow] = []
        self._events: list[EventRow] = []
        self.samples_written = 0

    def _key(self, tag: str) -> tuple[str, int]:
        if tag not in self._keys:
            key = f"{self.line}.{self.unit}.{tag}"
            self._keys[tag] = (key, self.backend.series_id(key))
        return self._keys[tag]

    def _when(self, batch_time_s: float) -> datetime:
        return self.start + timedelta(seconds=batch_time_s)

    def scan(self, batch_time_s: float, tags: Mapping[str, float | None]) -> None:
        t = self._when(batch_time_s).timestamp()
        for tag, value in tags.items():
            _, sid = self._key(tag)
            good = value is not None and math.isfinite(value)
            self._samples.append((sid, t, float(value) if good else None, 0 if good else _BAD, t))
        if len(self._samples) >= FLUSH_ROWS:
            self.flush()

    def setpoint(self, batch_time_s: float, tag: str, value: float, source: str) -> None:
        key, _ = self._key(tag)
        self._setpoints.append((key, to_us(self._when(batch_time_s)), float(value), source, ""))

    def event(self, batch_time_s: float, message: str) -> None:
        self._events.append((to_us(self._when(batch_time_s)), self.unit, "control", message))

    def flush(self) -> None:
        """Write what is queued (one transaction)."""
        if self._samples or self._setpoints or self._events:
            self.backend.write(self._samples, self._setpoints, self._events)
            self.samples_written += len(self._samples)
            self._samples, self._setpoints, self._events = [], [], []

    def close(self) -> None:
        """Flush; the backend stays open (its owner closes it)."""
        self.flush()
