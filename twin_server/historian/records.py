"""What the historian keeps, as plain tuples (cheap to build on the hot path, cheap to bind in SQL).

- sample row ``(series, t_s, value, status, server_t_s)``: a value of a historized node. ``series`` is the
  backend's integer id of the node's key (its string identifier, ``pilot_line.tank.level``, registered once
  with :meth:`HistoryBackend.series_id`), ``t_s`` the source timestamp and ``server_t_s`` the server's, as
  POSIX seconds (float: exact to the µs for present-day times), ``value`` ``None`` when the source had no
  value, ``status`` the OPC UA status code (0 = Good). Built on the hot path with no conversions: the
  store converts (SQLite does it in SQL, outside the GIL).
- setpoint row ``(key, t_us, value, source, user)``: a setpoint accepted by the PLC, with who decided it:
  ``source`` is one of :data:`SETPOINT_SOURCES`.
- event row ``(t_us, unit, source, message)``: a control event (mode change, fallback, refused write, batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

SampleRow = tuple[int, float, float | None, int, float]
SetpointRow = tuple[str, int, float, str, str]
EventRow = tuple[int, str, str, str]

SETPOINT_SOURCES = ("operator", "mpc", "recipe", "fallback")


@dataclass(slots=True)
class RawSeries:
    """Raw values of one node in time order (or reverse, as asked): parallel lists."""

    times_us: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    server_times_us: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times_us)


class HistoryBackend(Protocol):
    """A store of history. ``write`` runs on the recorder's thread, reads on worker threads."""

    name: str

    def series_id(self, key: str) -> int:
        """The integer id of a history key (registered on first use)."""
        ...

    def write(self, samples: Sequence[SampleRow], setpoints: Sequence[SetpointRow],
              events: Sequence[EventRow]) -> None:
        """Store one batch (one transaction where the store has them). Raises on failure."""
        ...

    def read_raw(self, key: str, start_us: int, end_us: int, limit: int = 0, reverse: bool = False) -> RawSeries:
        """Values with ``start_us <= t <= end_us``, ascending (descending if ``reverse``), at most ``limit`` (0 = all)
        """
        ...

    def idle(self) -> None:
        """Called on a flush with nothing new (store and forward replays its buffer here)."""
        ...

    def read_setpoints(self, key: str | None, start_us: int, end_us: int) -> list[SetpointRow]: ...

    def read_events(self, unit: str | None, start_us: int, end_us: int) -> list[EventRow]: ...

    def keys(self) -> list[str]: ...

    def purge_before(self, t_us: int) -> int:
        """Delete samples, setpoints and events older than ``t_us``; the number of rows deleted."""
        ...

    def state(self) -> str:
        """One word or short phrase for the status line (``ok``, ``down, 1234 buffered``)."""
        ...

    def stored_samples(self) -> int: ...

    def close(self) -> None: ...
