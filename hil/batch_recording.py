"""What a bench batch hands to a recorder: the unit's tag values per scan, setpoints written, control events.

:func:`hil.stepped_batch.run_stepped_batch` calls a :class:`BatchRecorder` (when given one) with plant seconds
since StartBatch, so the batch lands in a historian as the twin would have recorded it (the twin's historian
keeps the mirrored tags, the setpoints the PLC accepted and the ``batch started`` / ``batch stopped`` events; the
recorder that writes a historian store is :class:`twin_server.historian.batch_recording.StoreBatchRecorder`, which
``hil`` does not import: the two meet only in this protocol).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["BatchRecorder"]


class BatchRecorder(Protocol):
    """Receives a bench batch as it runs; times are plant seconds since StartBatch (0 = StartBatch)."""

    def scan(self, batch_time_s: float, tags: Mapping[str, float | None]) -> None:
        """One scan of the unit's tags (engineering units; ``None`` = Bad/no value)."""

    def setpoint(self, batch_time_s: float, tag: str, value: float, source: str) -> None:
        """A setpoint the PLC accepted (``source``: recipe | mpc | fallback | operator)."""

    def event(self, batch_time_s: float, message: str) -> None:
        """A control event (``batch started in mode …``, ``batch stopped at t=… s (…)``, fallbacks)."""
