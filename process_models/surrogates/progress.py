"""A one-line progress bar on stderr for long surrogate operations (data generation, training)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``Progress("training", total=200, unit="epochs")``; :meth:`update` with the count done and an optional
    note (e.g. the loss). Quiet when ``enabled`` is False; redraws at most every 0.2 s."""

    def __init__(self, label: str, total: int, unit: str = "", enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.unit, self.enabled = label, max(int(total), 1), unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        frac = min(1.0, done / self.total)
        filled = int(round(frac * 30))
        self.stream.write(f"\r{self.label}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} {self.unit}"
                          f"  {now - self.started:.1f} s  {note}")
        self.stream.flush()
        self._shown = True

    def close(self, note: str = "") -> None:
        if self.enabled and self._shown:
            if note:
                self.stream.write(f"  {note}")
            self.stream.write("\n")
            self.stream.flush()
