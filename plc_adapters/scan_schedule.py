"""Drift-free periodic scan schedule on absolute deadlines.

Slot k is due at ``t0 + k * period_s`` (event-loop clock). After a scan the next slot is the first
one not yet passed; slots missed because a scan overran are skipped and counted, never caught up,
so lag never accumulates.
"""

from __future__ import annotations

import math


class ScanSchedule:
    """Deadlines ``t0 + k·period_s`` in seconds of a monotonic clock, skipping slots already passed."""

    def __init__(self, t0: float, period_s: float) -> None:
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"scan period must be a finite number of seconds > 0, got {period_s!r}")
        self.t0 = t0
        self.period_s = period_s
        self.slot = 0
        self.overruns = 0

    @property
    def deadline(self) -> float:
        """When the current slot is due (same clock as ``t0``)."""
        return self.t0 + self.slot * self.period_s

    def advance(self, now: float) -> int:
        """Move to the first slot due after ``now``-ish and return how many slots were skipped.

        A slot whose deadline equals ``now`` within a microsecond counts as not yet passed.
        """
        first_free = math.ceil((now - self.t0) / self.period_s - 1e-6 / self.period_s)
        next_slot = max(self.slot + 1, first_free)
        skipped = next_slot - self.slot - 1
        self.slot = next_slot
        self.overruns += skipped
        return skipped
