"""Pacing a plant simulation against the wall clock, for every kind of virtual PLC (Modbus or OPC UA).

The pace is a wall-paced plant clock (:class:`process_models.plant_clock.WallPacedClock` at ``speed``, started at
each start of the loop): step k (counted from a start) is due when that clock reads ``k·step_s``, i.e. at
``t0 + k·period`` wall seconds with ``period = step_s / speed``, so plant time does not drift against the wall
clock. Due steps run back to back, yielding to the PLC's server at least
every ``MAX_BURST_WALL_S``; a backlog over ``MAX_BACKLOG_WALL_S`` is dropped (counted in ``dropped_steps``, with a
warning when the plant's own steps cost more CPU than the pace allows, else an info line: the machine was busy).
A wake-up later than asked by more than ``MAX_BACKLOG_WALL_S`` means the event loop was blocked elsewhere (e.g.
the twin building its solvers in the same process): the plant clock pauses for the stall (``paused_wall_s``,
logged at debug level; :meth:`~process_models.plant_clock.WallPacedClock.hold`) instead of reporting plant lag.
(The stepped lockstep loop does not pace: :mod:`hil.stepped_plc` steps the plant when told; a socket PLC in
lockstep steps through :meth:`PlantPacer.step_now`.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from process_models.plant_clock import WallPacedClock

MAX_BACKLOG_WALL_S = 1.0
"""Wall seconds of due steps kept; a larger backlog is dropped."""
MAX_BURST_WALL_S = 0.02
"""Longest run of back-to-back steps before the loop yields to the PLC's server, wall s."""
WARM_UP_STEPS = 5
"""Steps left out of the step-cost average (the first calls pay one-off set-up, e.g. casadi)."""


class PlantPacer:
    """Runs ``step_once`` (one plant step of ``step_s`` plant seconds) at ``speed``× real time.

    ``after_burst`` (optional) runs after each run of back-to-back steps (e.g. publishing measurements once).
    Log lines name the PLC as ``virtual PLC '<name>'`` on ``logger``.
    """

    def __init__(self, name: str, step_s: float, speed: float, step_once: Callable[[], None],
                 logger: logging.Logger, after_burst: Callable[[], None] | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        self.name = name
        self.step_s = step_s
        self.speed = speed
        self._step_once = step_once
        self._after_burst = after_burst
        self._log = logger
        self.steps = 0
        """Plant steps taken since construction (across restarts)."""
        self.dropped_steps = 0
        """Steps skipped because the loop fell more than MAX_BACKLOG_WALL_S behind (0 on a healthy bench)."""
        self.paused_wall_s = 0.0
        """Wall seconds the plant clock paused because the event loop was blocked elsewhere."""
        self.step_cost_s = 0.0
        """CPU time of one plant step (moving average after the warm-up), s."""
        self._warned_slow = False
        self._wall = wall
        """The wall clock the pace follows (default: the event loop's)."""

    @property
    def plant_time_s(self) -> float:
        """Plant time advanced since construction, s."""
        return self.steps * self.step_s

    def step_now(self, steps: int) -> None:
        """Lockstep: run ``steps`` plant steps at once (no pacing, nothing dropped), then the ``after_burst`` hook —
        for a bench whose plant time moves only when its driver says so (:attr:`hil.virtual_plc_base.
        VirtualPlcBase.lockstep`)."""
        for _ in range(steps):
            self._step_once()
            self.steps += 1
        if steps > 0 and self._after_burst is not None:
            self._after_burst()

    async def run(self) -> None:
        """Pace the plant until cancelled. An exception from the plant is logged and re-raised (plant frozen)."""
        wall = self._wall if self._wall is not None else asyncio.get_running_loop().time
        clock = WallPacedClock(self.speed, wall=wall)  # plant seconds since this start
        period = clock.wall_seconds(self.step_s)
        max_backlog = max(1, int(MAX_BACKLOG_WALL_S / period))
        origin = self.steps  # step count at plant time 0 of the clock
        wake_at: float | None = None  # when the loop asked to run again
        try:
            while True:
                now = wall()
                if wake_at is not None and now - wake_at > MAX_BACKLOG_WALL_S:
                    self._pause_for_stall(now - wake_at)
                    clock.hold(now - wake_at)
                due = origin + int(clock.now() / self.step_s + 1e-9)
                if due - self.steps > max_backlog:
                    dropped = due - self.steps - 1
                    self._drop_backlog(dropped, period)
                    origin -= dropped
                    due -= dropped
                burst_end = now + MAX_BURST_WALL_S
                ran = False
                while self.steps < due and wall() < burst_end:
                    started = time.thread_time()
                    self._step_once()
                    self.steps += 1
                    ran = True
                    if self.steps - origin > WARM_UP_STEPS:
                        self.step_cost_s += 0.05 * (time.thread_time() - started - self.step_cost_s)
                if ran and self._after_burst is not None:
                    self._after_burst()
                if self.steps < due:
                    wake_at = wall()
                    await asyncio.sleep(0)  # let the server's requests in, then continue the burst
                    continue
                wait_s = clock.wall_seconds((self.steps - origin + 1) * self.step_s - clock.now())
                wake_at = wall() + max(wait_s, 0.0)
                await asyncio.sleep(max(0.0, wait_s))
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("virtual PLC '%s': plant loop failed at plant time %.3f s; plant frozen",
                                self.name, self.plant_time_s)
            raise

    def _drop_backlog(self, dropped: int, period: float) -> None:
        """Skip ``dropped`` steps; a warning if the plant's own steps cost more CPU than the pace allows."""
        first = self.dropped_steps == 0
        self.dropped_steps += dropped
        if self.step_cost_s >= period:
            log = self._log.debug if self._warned_slow else self._log.warning
            self._warned_slow = True
            log("virtual PLC '%s': plant loop %d steps behind (plant slower than %g× real time: one step costs "
                "%.2f ms of CPU, the pace allows %.2f ms); dropping the backlog, plant time now lags", self.name,
                dropped, self.speed, 1e3 * self.step_cost_s, 1e3 * period)
        else:
            log = self._log.info if first else self._log.debug
            log("virtual PLC '%s': plant loop %d steps behind although one step costs only %.2f ms of CPU for a "
                "%.2f ms pace: the event loop or the machine was busy elsewhere; dropping the backlog, plant time "
                "now lags", self.name, dropped, 1e3 * self.step_cost_s, 1e3 * period)

    def _pause_for_stall(self, stalled_s: float) -> None:
        """The event loop was blocked by something else for ``stalled_s``: not plant lag, the clock pauses."""
        self.paused_wall_s += stalled_s
        self._log.debug("virtual PLC '%s': event loop blocked elsewhere for %.2f s; plant clock paused at plant "
                        "time %.1f s (not counted as plant lag)", self.name, stalled_s, self.plant_time_s)
