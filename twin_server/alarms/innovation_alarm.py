"""A control loop's ``parameter_set_mismatch`` condition (AlarmConditionType): the deployed parameter set no longer
fits the plant.

After each estimator step the EKF's normalised innovation squared (NIS, :mod:`process_models.innovation_consistency`)
is compared with its χ² band at ``[units.<unit>.alarms] innovation_probability`` (default 95 %, dof = the number of
measured values the step used). The condition is raised once the NIS has stayed above the band (with
``innovation_sides = "both"``: or below it) for ``innovation_on_delay_s`` plant seconds (default 180 s: four
estimator steps of 60 s in a row), and cleared at the first step back inside. The on-delay is the limit alarms' own
(:class:`~twin_server.alarms.limits.LimitEvaluator`) run on the NIS's χ² quantile, so one band holds whatever the
step's dof; time is the estimate's plant time, and each batch (a fresh filter) starts the count again.

Why only above by default: a filter whose declared measurement noise is larger than its instruments' (the shipped
crystallizer: 0.1 °C against the Pt100's 0.02 °C) keeps its NIS below the band on a plant its parameters fit (the
nominal pilot batch: 44 % of steps below, none above); that says its noise model is pessimistic, not that the
parameters are wrong.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from process_models.estimator import Estimate
from process_models.innovation_consistency import NisBand, nis_quantile
from twin_server.alarms.condition import AlarmCondition
from twin_server.alarms.limits import LimitAlarmConfig, LimitEvaluator, LimitState

if TYPE_CHECKING:
    from twin_server.alarms.manager import AlarmManager


class NisOnDelay:
    """The alarm's decision without I/O: is the NIS out of its χ² band, and has it stayed out for the on-delay?
    (What :class:`InnovationAlarm` runs; ``benchmarks/innovation_alarm.py`` runs it on stepped batches.)"""

    def __init__(self, band: NisBand, on_delay_s: float, sides: str = "upper") -> None:
        self.band = band
        self.on_delay_s = on_delay_s
        self.sides = sides
        self._config = LimitAlarmConfig(high=band.high_quantile, low=band.low_quantile if sides == "both" else None,
                                        on_delay_s=on_delay_s)
        self._evaluator = LimitEvaluator(self._config)

    def restart(self) -> None:
        """A new batch (a fresh filter): the on-delay counts again from the next step."""
        self._evaluator = LimitEvaluator(self._config)

    def update(self, nis: float, dof: int, time_s: float) -> str | None:
        """One estimator step's NIS (``dof`` ≥ 1) at plant time ``time_s`` (s); ``"above"`` / ``"below"`` while the
        alarm is due (out of the band for the on-delay), None otherwise. A NaN NIS counts as above."""
        quantile = nis_quantile(nis, dof)
        state = self._evaluator.update(1.0 if math.isnan(quantile) else quantile, time_s)
        if state is None:
            return None
        return "above" if state in (LimitState.HIGH, LimitState.HIGH_HIGH) else "below"


class InnovationAlarm:
    """The NIS test of one unit's estimator, driving its ``parameter_set_mismatch`` condition."""

    def __init__(self, manager: AlarmManager, unit: str, condition: AlarmCondition, band: NisBand,
                 on_delay_s: float, sides: str = "upper") -> None:
        self._manager = manager
        self.unit = unit
        self.condition = condition
        self.band = band
        self.test = NisOnDelay(band, on_delay_s, sides)
        self.parameter_set = ""
        """The deployed parameter set's id, for the message."""

    def restart(self) -> None:
        """A new batch (a fresh filter): the on-delay counts again from the next step."""
        self.test.restart()

    async def update(self, estimate: Estimate) -> None:
        """One estimator step (a predict-only step, with no NIS, changes nothing)."""
        if estimate.nis is None or estimate.nis_dof < 1:
            return
        where = self.test.update(estimate.nis, estimate.nis_dof, estimate.time_s)
        low, high = self.band.limits(estimate.nis_dof)
        band = f"χ²({estimate.nis_dof}) {self.band.probability:.0%} band [{low:.3g}, {high:.3g}]"
        if where is None:
            await self._manager.set_inactive(self.condition, f"{self.unit}: estimator innovations consistent with "
                                                             f"parameter set {self.parameter_set} (NIS "
                                                             f"{estimate.nis:.3g} in {band})")
            return
        await self._manager.set_active(self.condition, (
            f"{self.unit}: deployed parameter set {self.parameter_set} no longer fits the plant: NIS "
            f"{estimate.nis:.3g} {where} its {band} for {self.test.on_delay_s:g} s (plant time)")[:400],
            value=estimate.nis)
