"""Plant time: one clock for everything that counts plant seconds (control loop, plant pacing, alarm on-delays,
surrogate watch, the HIL bench).

Two implementations of :class:`PlantClock`:

* :class:`WallPacedClock` — plant seconds = wall seconds × ``speed`` since the clock was made (``speed`` = 1 for a
  real plant, N for a HIL bench running N× faster than real time). ``sleep_until`` sleeps on the wall clock.
* :class:`SteppedClock` — plant time moves only when its owner calls :meth:`SteppedClock.advance_to` (a stepped,
  lockstep closed loop: plant, PLC image, scan, estimator, NMPC and supervisor advance together as fast as the
  CPU allows). Nothing sleeps: ``sleep_until`` returns once another task has advanced the clock far enough.

It lives in ``process_models`` (the lowest layer that models the plant) so that ``controllers``, ``hil`` and
``twin_server`` can all read it without breaking the layer order (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class PlantClock(Protocol):
    """Plant time in seconds (any origin; differences are plant seconds)."""

    def now(self) -> float:
        """Current plant time, s."""
        ...

    async def sleep_until(self, plant_time_s: float) -> None:
        """Return once plant time has reached ``plant_time_s`` (at once if it already has)."""
        ...

    def wall_seconds(self, plant_s: float) -> float:
        """Wall seconds that ``plant_s`` plant seconds take on this clock (``inf`` for a stepped clock: plant time
        does not pass by itself), e.g. to bound a solver's wall-time budget."""
        ...


class WallPacedClock:
    """Plant time = (wall time − origin) × ``speed`` (today's behaviour of the twin and the bench).

    ``wall``: the wall clock in seconds (default :func:`time.monotonic`; the event loop's ``loop.time`` is the
    same clock on CPython's default loop).
    """

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"WallPacedClock: speed must be a finite number > 0 (plant s per wall s), got {speed!r}")
        self.speed = float(speed)
        self._wall = wall
        self._origin = wall()

    def now(self) -> float:
        return (self._wall() - self._origin) * self.speed

    async def sleep_until(self, plant_time_s: float) -> None:
        await asyncio.sleep(max(0.0, (plant_time_s - self.now()) / self.speed))

    def wall_seconds(self, plant_s: float) -> float:
        return plant_s / self.speed

    def hold(self, wall_s: float) -> None:
        """Plant time stands still for ``wall_s`` wall seconds that already passed (e.g. a stalled event loop):
        ``now()`` drops by ``wall_s × speed``."""
        self._origin += wall_s


class SteppedClock:
    """Plant time advanced explicitly by the loop that owns it; never sleeps, never reads the wall clock."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = float(start_s)
        self._advanced: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    def advance_to(self, plant_time_s: float) -> None:
        """Move plant time forward to ``plant_time_s`` (ValueError if that is in the past: time never runs back)."""
        if not plant_time_s >= self._now:
            raise ValueError(f"SteppedClock: cannot go back from {self._now:g} s to {plant_time_s!r} s")
        self._now = float(plant_time_s)
        if self._advanced is not None:
            self._advanced.set()
            self._advanced = None

    def advance(self, plant_s: float) -> None:
        """Move plant time forward by ``plant_s`` seconds."""
        self.advance_to(self._now + plant_s)

    async def sleep_until(self, plant_time_s: float) -> None:
        while self._now < plant_time_s:
            if self._advanced is None:
                self._advanced = asyncio.Event()
            await self._advanced.wait()

    def wall_seconds(self, plant_s: float) -> float:
        return math.inf
