"""Is the twin's forecast band calibrated? Seeded stepped batches, each forecast from mid-batch to batch end.

For each seed: a plant drawn from the seed (growth and nucleation rate constants × a log-uniform factor in
``[1/spread, spread]``, optionally a solubility offset uniform in ``±solubility_offset_kg_per_kg``, the sensor-noise
seed) runs a batch of the scenario in lockstep
(:func:`hil.stepped_batch.run_stepped_batch`) under its recipe (linear cooling, so the input programme after the
forecast is known: the twin forecasts it as ``recipe``). At ``forecast_at_s`` the twin's forecast of the batch-end
d43 is taken from its estimator (:func:`controllers.forecasting.prepare_forecast`, exactly what the ``Forecast``
method computes); at batch end the plant's true d43 is compared with the 95 % band.

Coverage = the fraction of batches whose realised batch-end d43 lies in its band (target ≥ 90 %, issue 17); the
band's width is reported beside it (a band is only useful if it is also narrow), and the RMS of the normalised
errors ``(realised − mean) / σ`` (1 for a calibrated Gaussian band; well below 1: the band is wider than it needs to
be; above 1: too narrow).

**Learning the band's calibration** (:meth:`Calibration.learn`): the RMS of the batches' normalised errors against
the σ as propagated (before any calibration) is the scale ``k`` of
:class:`process_models.forecast.BandCalibration`, stored in the unit's control options (``forecast_band_scale = k``,
``forecast_band_batches = n``). :meth:`Calibration.with_band` applies a calibration to batches already run: the
forecast's mean does not depend on it, so a batch's calibrated band is its propagated σ × k, ± Student's t — what the
twin computes with those keys set (tested), without running the batches again. Learn on some batches and judge on
others (``benchmarks/forecast.py``: training seeds apart from the test seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from controllers.batch_control import BatchControl
from controllers.forecasting import QualityForecast, prepare_forecast
from hil.scenario import Scenario
from hil.stepped_batch import run_stepped_batch
from process_models.forecast import BandCalibration

QUANTITY = "d43"


@dataclass(frozen=True)
class CalibrationBatch:
    """One batch: seed, plant factors, the band (µm) forecast at ``forecast_at_s`` and the realised d43 (µm)."""

    seed: int
    growth_rate_factor: float
    nucleation_rate_factor: float
    solubility_offset_kg_per_kg: float
    forecast_mean_um: float
    forecast_low_um: float
    forecast_high_um: float
    realised_um: float
    forecast_wall_time_s: float
    forecast_std_um: float
    """The band's σ (calibrated: ``calibration.scale`` × the propagated σ)."""
    calibration: BandCalibration = BandCalibration()

    @property
    def inside(self) -> bool:
        return self.forecast_low_um <= self.realised_um <= self.forecast_high_um

    @property
    def width_um(self) -> float:
        return self.forecast_high_um - self.forecast_low_um

    @property
    def normalised_error(self) -> float:
        """(realised − mean) / σ, σ the band's (calibrated)."""
        sigma = self.forecast_std_um
        return (self.realised_um - self.forecast_mean_um) / sigma if sigma > 0 else math.inf

    @property
    def propagated_normalised_error(self) -> float:
        """(realised − mean) / σ with σ as the unscented transform propagated it (before calibration)."""
        return self.normalised_error * self.calibration.scale

    def with_band(self, calibration: BandCalibration) -> CalibrationBatch:
        """This batch's forecast under ``calibration`` instead of its own (same mean; σ and band rescaled)."""
        raw = self.forecast_std_um / self.calibration.scale
        sigma = calibration.scale * raw
        half = calibration.quantile * sigma
        return replace(self, forecast_low_um=self.forecast_mean_um - half,
                       forecast_high_um=self.forecast_mean_um + half, forecast_std_um=sigma, calibration=calibration)


@dataclass(frozen=True)
class Calibration:
    """All batches; ``coverage`` (fraction inside their band) and band widths (µm)."""

    forecast_at_s: float
    batches: tuple[CalibrationBatch, ...]

    @property
    def coverage(self) -> float:
        return sum(b.inside for b in self.batches) / len(self.batches) if self.batches else math.nan

    @property
    def mean_width_um(self) -> float:
        return float(np.mean([b.width_um for b in self.batches])) if self.batches else math.nan

    @property
    def rms_normalised_error(self) -> float:
        """RMS of (realised − mean) / σ over the batches (1: calibrated)."""
        return float(np.sqrt(np.mean([b.normalised_error**2 for b in self.batches]))) if self.batches else math.nan

    @property
    def mean_relative_width(self) -> float:
        """Mean band width relative to the realised d43."""
        return float(np.mean([b.width_um / b.realised_um for b in self.batches])) if self.batches else math.nan

    def learn(self) -> BandCalibration:
        """The band calibration these batches teach: k = RMS of their propagated normalised errors, n = their
        count."""
        return BandCalibration.learn([b.propagated_normalised_error for b in self.batches])

    def with_band(self, calibration: BandCalibration) -> Calibration:
        """These batches' forecasts under ``calibration`` (:meth:`CalibrationBatch.with_band`)."""
        return replace(self, batches=tuple(b.with_band(calibration) for b in self.batches))


def plant_factors(seed: int, spread: float, solubility_offset_kg_per_kg: float = 0.0) -> tuple[float, float, float]:
    """Growth and nucleation factors of the plant of ``seed`` (log-uniform in ``[1/spread, spread]``) and its
    solubility offset (kg/kg, uniform in ``±solubility_offset_kg_per_kg``)."""
    rng = np.random.default_rng(seed)
    low, high = -math.log(spread), math.log(spread)
    growth, nucleation = float(math.exp(rng.uniform(low, high))), float(math.exp(rng.uniform(low, high)))
    offset = float(rng.uniform(-solubility_offset_kg_per_kg, solubility_offset_kg_per_kg))
    return growth, nucleation, offset


def calibrate(scenario: Scenario, seeds: list[int], forecast_at_s: float, spread: float = 1.25,
              solubility_offset_kg_per_kg: float = 0.0, control: Mapping[str, Any] | None = None) -> Calibration:
    """Run one stepped batch per seed (module docstring) and collect each forecast and its outcome. ``control``:
    options added to the scenario's ``[control]`` (e.g. ``online_parameters``)."""
    batches: list[CalibrationBatch] = []
    for seed in seeds:
        growth, nucleation, offset = plant_factors(seed, spread, solubility_offset_kg_per_kg)
        plant = {**scenario.plant, "growth_rate_factor": growth, "nucleation_rate_factor": nucleation,
                 "solubility_offset_kg_per_kg": offset}
        run = replace(scenario, plant=plant, control={**scenario.control, **(control or {})})
        run = run.with_seed(seed).with_strategy("linear_cooling")
        taken: list[QualityForecast] = []

        def observe(t: float, core: BatchControl, taken: list[QualityForecast] = taken) -> None:
            if not taken and t >= forecast_at_s - 1e-9:
                taken.append(prepare_forecast(core, None, core.plan.batch_duration_s - t)())

        report = run_stepped_batch(run, on_tick=observe)
        if not taken:
            raise ValueError(f"forecast_at_s = {forecast_at_s:g} s: no estimator tick at or after it before batch end")
        band = taken[0]
        realised = float(report.timeline[-1].truth["d43_um"])
        batches.append(CalibrationBatch(seed, growth, nucleation, offset, float(band.mean[QUANTITY][-1]),
                                        float(band.low[QUANTITY][-1]), float(band.high[QUANTITY][-1]), realised,
                                        band.wall_time_s, float(band.std[QUANTITY][-1]), band.calibration))
    return Calibration(forecast_at_s, tuple(batches))
