"""A control loop's conditions: NMPC fallback in use, estimator divergence.

- ``nmpc_fallback`` (AlarmConditionType) is active while the supervisor replaces the requested setpoint by its
  fallback (failed, late or non-finite solve, out-of-limit request) in AUTO/MPC mode; it clears at the first
  controller step that used the request, and when the loop goes to MANUAL.
- ``estimator_divergence`` (AlarmConditionType, only with ``[units.<unit>.alarms] innovation_bounds``) is active
  while the EKF's innovation (measured − predicted) of a bounded measurement exceeds its bound; it clears at the
  first estimator step with every bounded innovation inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from controllers.supervisor import Supervisor, SupervisorEvent
from process_models.estimator import Estimate
from twin_server.alarms.condition import AlarmCondition

if TYPE_CHECKING:
    from twin_server.alarms.manager import AlarmManager


class LoopAlarms:
    """What a :class:`~twin_server.control_loop.UnitControlLoop` reports to its conditions."""

    def __init__(self, manager: AlarmManager, unit: str, fallback: AlarmCondition,
                 divergence: AlarmCondition | None, bounds_si: dict[str, float]) -> None:
        self._manager = manager
        self.unit = unit
        self.fallback_condition = fallback
        self.divergence_condition = divergence
        self._bounds_si = bounds_si
        """Innovation bound per model output, in the output's SI unit."""

    async def supervisor_step(self, supervisor: Supervisor, events: Sequence[SupervisorEvent]) -> None:
        """One controller step in AUTO/MPC with the supervisor's new events (a mode change is one, not a
        fallback)."""
        await self.fallback([supervisor.describe(e) for e in events
                             if not (e.reason.startswith("mode ") and " -> " in e.reason)])

    async def fallback(self, reasons: Sequence[str]) -> None:
        """One controller step: the fallbacks the supervisor used (empty = none)."""
        if reasons:
            await self._manager.set_active(self.fallback_condition,
                                           f"{self.unit}: fallback in use: {'; '.join(reasons)}"[:400])
        else:
            await self._manager.set_inactive(self.fallback_condition, f"{self.unit}: control loop back on its "
                                                                      "requested setpoints")

    async def estimate(self, estimate: Estimate) -> None:
        """One estimator step: compare the bounded innovations with their bounds."""
        cond = self.divergence_condition
        if cond is None or estimate.predict_only:
            return
        beyond = []
        for output, bound in self._bounds_si.items():
            nu = estimate.innovation.get(output)
            if nu is None:
                continue
            size = float(np.max(np.abs(np.asarray(nu, dtype=float))))
            if not size <= bound:  # NaN counts as beyond
                beyond.append(f"{output} innovation {size:.4g} beyond {bound:.4g} (SI)")
        if beyond:
            await self._manager.set_active(cond, f"{self.unit}: estimator diverging: {'; '.join(beyond)}"[:400])
        else:
            await self._manager.set_inactive(cond, f"{self.unit}: estimator innovations back within bounds")
