"""NMPC steps from worker threads (as the twin runs them): serialised, and reset() wins over a running solve.

Issue #7: the first NMPC solve after a finished crystallizer batch failed with IPOPT ``Invalid_Number_Detected``.
The twin runs each solve in a worker thread bounded by a deadline it cannot enforce on IPOPT, so a late solve
(e.g. the last one of the batch) kept running while the next one started on the same casadi solver, and stored
its solution as the warm start of the next batch after StartBatch had reset it. A test subclass holds a step at
a known point (its initial guess) with a threading.Event, so the overlap is produced deterministically.
"""

from __future__ import annotations

import threading

import numpy as np

from controllers import ManipulatedInput, NmpcConfig, NonlinearMpc, OutputTracking
from tests.controllers.models import thermal_tank

AMBIENT = {"ambient_temperature": 293.15}
TIMEOUT_S = 120.0


class HeldNmpc(NonlinearMpc):
    """A NonlinearMpc whose first step waits at its initial guess until ``release`` is set."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.active = 0
        self.max_active = 0
        self._count_lock = threading.Lock()

    def _initial_guess(self, *args, **kwargs) -> np.ndarray:
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            first = not self.entered.is_set()
            self.entered.set()
        try:
            if first:
                assert self.release.wait(TIMEOUT_S), "test never released the held step"
            return super()._initial_guess(*args, **kwargs)
        finally:
            with self._count_lock:
                self.active -= 1


def _mpc() -> HeldNmpc:
    config = NmpcConfig(sample_period_s=10.0, horizon=10,
                        inputs=(ManipulatedInput("jacket_temperature", 280.0, 360.0, max_move=2.0),),
                        tracking=(OutputTracking("temperature_celsius", 1.0, 1.0),))
    return HeldNmpc(thermal_tank(), config)


def _step(mpc: NonlinearMpc, results: list, t: float = 0.0) -> None:
    results.append(mpc.step(t, {"temperature": 293.15}, {"jacket_temperature": 300.0},
                            {"temperature_celsius": 40.0}, disturbances=AMBIENT))


def test_a_solve_still_running_at_reset_leaves_no_warm_start_behind():
    mpc = _mpc()
    results: list = []
    late = threading.Thread(target=_step, args=(mpc, results))
    late.start()
    assert mpc.entered.wait(TIMEOUT_S)
    mpc.reset()  # StartBatch of the next batch while the last solve of the previous one still runs
    mpc.release.set()
    late.join(TIMEOUT_S)
    assert results and results[0].success, results
    assert not mpc.has_warm_start  # the next batch starts cold, not from the finished batch's solution


def test_concurrent_steps_run_one_after_the_other():
    mpc = _mpc()
    results: list = []
    first = threading.Thread(target=_step, args=(mpc, results))
    first.start()
    assert mpc.entered.wait(TIMEOUT_S)
    second = threading.Thread(target=_step, args=(mpc, results, 10.0))
    second.start()
    second.join(0.5)  # it must be waiting for the first solve (a bounded join, not synchronisation)
    assert second.is_alive() and mpc.active == 1
    mpc.release.set()
    first.join(TIMEOUT_S)
    second.join(TIMEOUT_S)
    assert mpc.max_active == 1
    assert len(results) == 2 and all(r.success for r in results), [r.status for r in results]
    assert mpc.has_warm_start  # a step after a step (no reset) keeps its warm start
