"""One chromatography run's pooling as the skid's PLC executes it: samples in, the two cut setpoints out.

The skid opens its collection valve while ``cut_start_time <= run_time < cut_stop_time`` (:mod:`hil.plants.
fractionation`), so the twin writes cut *times*, not valve positions: a plan's cuts are armed in the PLC ahead of
time and land exactly whatever the twin's latency; a decision made late (the fallback's threshold crossing, seen one
scan after it happened) is a time already past and acts at once.

Strategies: ``threshold`` — the fixed UV-threshold rule (:class:`~controllers.chromatography.pooling_decision.
UvThresholdRule`); ``model_based`` — the online loop (:class:`~controllers.chromatography.pooling_loop.PoolingLoop`:
estimate, chance-constrained cuts, the threshold rule as its fallback). Cut setpoints (s of run time) from the
strategy's state:

* pool closed: its ``(start, stop)``; pool open: its start and the plan's stop (the window's end while the
  fallback rules: the pool always closes at the window's end);
* not yet open: the plan's ``(start, stop)`` (model), or ``(0, 0)`` — nothing armed (threshold, fallback).

:meth:`PoolingRun.status` is what the twin publishes: source, fallback reason, planned cuts, predicted peak (time,
concentration) and predicted pool purity and yield, each with its standard deviation over the estimate's ensemble.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from controllers.chromatography.elution_estimator import ElutionEstimator, OutletEstimate
from controllers.chromatography.pooling_decision import UvThresholdRule, pool_on_curves
from controllers.chromatography.pooling_loop import FALLBACK, PoolingLoop
from controllers.chromatography.pooling_plan import PoolingPlan
from process_models.chromatography.column import ChromatographyColumn, column_from_options


def fast_column(plan: PoolingPlan) -> ChromatographyColumn:
    """The estimator's column: the unit's case at the plan's (coarse DG) discretisation."""
    return column_from_options(plan.model_options, where="pooling control model")


@dataclass(frozen=True)
class PoolingStatus:
    """What the loop decided and predicts. Times s of run time, concentrations mol/m3, purity and yield fractions;
    ``*_std`` one standard deviation over the ensemble; NaN where there is nothing (no estimate, no plan)."""

    strategy: str
    source: str
    reason: str
    collecting: bool
    samples: int
    replans: int
    planned_start_s: float = np.nan
    planned_stop_s: float = np.nan
    peak_time_s: float = np.nan
    peak_time_std_s: float = np.nan
    peak_concentration_mol_per_m3: float = np.nan
    peak_concentration_std_mol_per_m3: float = np.nan
    pool_purity: float = np.nan
    pool_purity_std: float = np.nan
    pool_purity_at_confidence: float = np.nan
    pool_yield: float = np.nan
    pool_yield_std: float = np.nan


class PoolingRun:
    """One run under ``strategy`` (``threshold`` | ``model_based``; module docstring). ``column``: the fast model
    (build it once per plan with :func:`fast_column`); ``seed``: the estimate's ensemble."""

    def __init__(self, plan: PoolingPlan, strategy: str, column: ChromatographyColumn, seed: int = 0) -> None:
        self.plan = plan
        self.strategy = strategy
        self.times_s = plan.times_s()
        self._last_t: float | None = None
        self.samples = 0
        self._rule: UvThresholdRule | None = None
        self._loop: PoolingLoop | None = None
        if strategy == "threshold":
            self._rule = UvThresholdRule(plan.spec, plan.loop.start_level_mau, plan.loop.stop_level_mau)
        else:
            spec = dataclasses.replace(plan.estimation, seed=seed)
            estimator = ElutionEstimator(column, plan.method, self.times_s, spec)
            self._loop = PoolingLoop(plan.spec, estimator, plan.loop)
        self._status_cache: tuple[int, PoolingStatus] | None = None
        self._armed: tuple[float, float] | None = None

    @property
    def done(self) -> bool:
        """The pool has closed (or the window is over)."""
        if self._loop is not None:
            return self._loop.done
        assert self._rule is not None
        return self._rule.done

    def snap(self, run_time_s: float) -> float | None:
        """The grid time (s) of a sample at ``run_time_s`` (nearest grid point), None when it is not after the last
        sample or beyond the window's end."""
        k = int(round(run_time_s / self.plan.sample_interval_s))
        if k < 0 or k >= self.times_s.size:
            return None
        t = float(self.times_s[k])
        return t if self._last_t is None or t > self._last_t else None

    def step(self, run_time_s: float, uv_mau: float, conductivity_ms_per_cm: float) -> bool:
        """Take one sample (run time s, UV mAU, conductivity mS/cm); False when skipped (not a new grid time)."""
        t = self.snap(run_time_s)
        if t is None:
            return False
        self._last_t = t
        self.samples += 1
        if self._loop is not None:
            self._loop.step(t, uv_mau, conductivity_ms_per_cm)
        else:
            assert self._rule is not None
            self._rule.observe(t, uv_mau)
        return True

    def setpoints(self) -> tuple[float, float]:
        """``(cut_start_time, cut_stop_time)`` (s of run time) the PLC should hold now (module docstring). Once the
        pool has closed, the stop is the earlier of the one armed and the one the strategy saw: a planned stop
        closed the valve in the PLC at the armed time (the loop sees it at its next sample), a stop decided on a
        sample (the threshold rule, the fallback) closes it now."""
        wanted = self._wanted()
        if self.done and self._armed is not None and self._armed != (0.0, 0.0):
            return self._armed[0], min(self._armed[1], wanted[1])
        self._armed = wanted
        return wanted

    def _wanted(self) -> tuple[float, float]:
        end = self.plan.spec.window_end_s
        if self._loop is not None:
            loop = self._loop
            if loop.start_s is not None and loop.stop_s is not None:
                return loop.start_s, loop.stop_s
            if loop.collecting and loop.start_s is not None:
                return loop.start_s, loop.plan.stop_s if loop.plan is not None else end
            if loop.plan is not None:
                return loop.plan.start_s, loop.plan.stop_s
            return 0.0, 0.0
        rule = self._rule
        assert rule is not None
        if rule.start_s is None:
            return 0.0, 0.0
        return rule.start_s, rule.stop_s if rule.stop_s is not None else end

    def status(self) -> PoolingStatus:
        """The published state (module docstring); the ensemble statistics are computed once per plan."""
        if self._rule is not None:
            start, stop = self.setpoints()
            armed = start > 0.0 or stop > 0.0
            return PoolingStatus(self.strategy, FALLBACK, "strategy threshold", self._rule.collecting, self.samples,
                                 0, start if armed else np.nan, stop if armed else np.nan)
        loop = self._loop
        assert loop is not None
        key = len(loop.plans)
        if self._status_cache is not None and self._status_cache[0] == key:
            cached = self._status_cache[1]
            return PoolingStatus(**{**cached.__dict__, "collecting": loop.collecting, "samples": self.samples})
        start, stop = self.setpoints()
        armed = start > 0.0 or stop > 0.0
        base = dict(strategy=self.strategy, source=loop.source, reason=loop.reason, collecting=loop.collecting,
                    samples=self.samples, replans=len(loop.plans), planned_start_s=start if armed else np.nan,
                    planned_stop_s=stop if armed else np.nan)
        estimate = loop.estimates[-1] if loop.estimates else None
        if estimate is not None and estimate.trusted:
            base.update(self._predictions(estimate, start, stop, armed))
        status = PoolingStatus(**base)  # type: ignore[arg-type]
        self._status_cache = (key, status)
        return status

    def _predictions(self, estimate: OutletEstimate, start: float, stop: float, armed: bool) -> dict[str, float]:
        spec = self.plan.spec
        times = estimate.times_s
        peak = estimate.prediction.curves[spec.target]
        members = estimate.ensemble[spec.target]
        out = {"peak_time_s": float(times[int(np.argmax(peak))]), "peak_concentration_mol_per_m3": float(np.max(peak)),
               "peak_time_std_s": float(np.std(times[np.argmax(members, axis=1)])),
               "peak_concentration_std_mol_per_m3": float(np.std(np.max(members, axis=1)))}
        if armed and stop > start:
            pools = np.array([pool_on_curves(times, {c: estimate.ensemble[c][s] for c in spec.components}, spec,
                                             start, stop) for s in range(members.shape[0])])
            out.update(pool_yield=float(np.mean(pools[:, 0])), pool_yield_std=float(np.std(pools[:, 0])),
                       pool_purity=float(np.mean(pools[:, 1])), pool_purity_std=float(np.std(pools[:, 1])),
                       pool_purity_at_confidence=float(np.quantile(pools[:, 1], 1.0 - spec.confidence)))
        return out
