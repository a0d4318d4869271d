"""What-if forecasts of a unit's quality outputs from its estimator, for a given input programme (kind-independent).

A forecast starts at the estimate's time from the estimator's mean and covariance of ``[states; online
parameters]`` and propagates them with the unscented transform (:mod:`process_models.forecast`) over the horizon,
for one of three input programmes:

* ``profile``: a client's programme of the manipulated tags (:func:`parse_profile`, below);
* ``nmpc_plan``: the NMPC's last plan (its moves per interval, the last move held after the plan ends);
* ``recipe`` (AUTO mode without a profile): the recipe from the estimate's time on; ``hold`` (MANUAL mode without a
  profile): the setpoint last written or read back, held.

The manipulated input is taken as applied as programmed (the jacket's own loop tracks its setpoint; the model's
thermal lag is the slurry's). The forecast's quantities are the plan's ``forecast_outputs`` (names of its published
outputs) in their engineering units.

Profile encoding (a JSON object; the ``Forecast`` method's ``profile`` argument, the CLI's ``--profile`` file)::

    {"time_s": [0, 1800, 3600, 7200],                    # s from the forecast's start, strictly increasing, >= 0
     "jacket_temperature_setpoint": [40, 36, 31, 25],    # one list per manipulated tag, in the tag's unit (°C)
     "interpolation": "linear"}                          # linear (default) | zoh (each value held to the next time)

Before the first time the first value holds, after the last time the last value. Values must lie inside the
supervisor's limits of the input (the NMPC's bounds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from controllers.commands import ControlMode
from controllers.control_plan import ControlPlan
from controllers.nmpc import NmpcResult
from process_models.forecast import BandCalibration, ForecastBand, unscented_forecast
from process_models.simulator import InputProgram

if TYPE_CHECKING:
    from controllers.batch_control import BatchControl

MAX_PROFILE_POINTS = 1000
MAX_PROFILE_CHARS = 100_000
FORECAST_POINTS = 121
"""Points of a forecast's time grid (the horizon in 120 intervals: one a minute for a 2 h batch)."""


class ProfileError(ValueError):
    """A profile or horizon that cannot be used. ``out_of_range``: well formed but a value outside its limits
    (``BadOutOfRange``); otherwise malformed (``BadInvalidArgument``)."""

    def __init__(self, message: str, out_of_range: bool = False) -> None:
        super().__init__(message)
        self.out_of_range = out_of_range


@dataclass(frozen=True)
class InputProfile:
    """A parsed profile: times (s from the forecast's start) and each manipulated input's values (SI)."""

    times_s: tuple[float, ...]
    values: Mapping[str, tuple[float, ...]]
    interpolation: str = "linear"

    def programmes(self, start_s: float) -> dict[str, InputProgram]:
        """The profile as model input programmes starting at model time ``start_s``."""
        times = tuple(start_s + t for t in self.times_s)
        return {name: InputProgram(times, vals, self.interpolation)  # type: ignore[arg-type]
                for name, vals in self.values.items()}


@dataclass(frozen=True)
class QualityForecast:
    """A forecast: ``times_s`` from its start (s), per quantity the mean, the 95 % band ``low`` / ``high`` and the
    1 σ, in the quantity's engineering unit (``unit_codes``); ``start_s`` (batch time of the estimate it starts
    from), ``source`` (``profile`` | ``nmpc_plan`` | ``recipe`` | ``hold``), ``sigma_points``, ``wall_time_s``."""

    start_s: float
    times_s: np.ndarray
    mean: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    unit_codes: dict[str, str]
    source: str
    sigma_points: int
    wall_time_s: float
    calibration: BandCalibration = BandCalibration()
    """How ``std`` and the band were calibrated (``std`` is the calibrated σ: k × the unscented transform's)."""

    @property
    def band_text(self) -> str:
        cal = self.calibration
        if cal.is_identity:
            return "95 % (mean ± 1.96 σ, unscented transform)"
        learnt = f"learnt from {cal.batches} past batches, Student's t" if cal.batches else "set"
        return f"95 % (mean ± {cal.quantile:.3f} σ; σ = {cal.scale:.3g} × the unscented transform's, {learnt})"

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: the method's result and the CLI's output."""
        return {"start_s": self.start_s, "source": self.source, "sigma_points": self.sigma_points,
                "wall_time_s": self.wall_time_s, "band": self.band_text,
                "band_scale": self.calibration.scale, "band_batches": self.calibration.batches,
                "time_s": [float(t) for t in self.times_s],
                "quantities": {name: {"unit": self.unit_codes[name], "mean": _floats(self.mean[name]),
                                      "low": _floats(self.low[name]), "high": _floats(self.high[name]),
                                      "std": _floats(self.std[name])} for name in self.mean}}


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def parse_profile(text: str, plan: ControlPlan) -> InputProfile:
    """The profile JSON (module docstring) checked against the plan's manipulated tags and limits. Raises
    :class:`ProfileError` naming the key and what was expected."""
    if len(text) > MAX_PROFILE_CHARS:
        raise ProfileError(f"profile: {len(text)} characters; expected at most {MAX_PROFILE_CHARS}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"profile: not JSON ({exc.msg} at character {exc.pos}); expected an object "
                           '{"time_s": [...], "<tag>": [...]}') from None
    if not isinstance(raw, dict):
        raise ProfileError(f"profile: got {type(raw).__name__}; expected a JSON object")
    tags = {m.tag: m for m in plan.manipulated}
    unknown = sorted(set(raw) - {"time_s", "interpolation", *tags})
    if unknown:
        raise ProfileError(f"profile: unknown key(s) {unknown}; expected time_s, interpolation, "
                           + ", ".join(sorted(tags)))
    interpolation = raw.get("interpolation", "linear")
    if interpolation not in ("linear", "zoh"):
        raise ProfileError(f"profile.interpolation: got {interpolation!r}; expected linear or zoh")
    times = _numbers(raw.get("time_s"), "time_s")
    if any(t < 0 for t in times) or any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ProfileError(f"profile.time_s: got {list(times)[:10]}; expected strictly increasing seconds >= 0")
    limits = {lim.name: lim for lim in plan.supervisor_config.limits}
    values: dict[str, tuple[float, ...]] = {}
    for tag, binding in tags.items():
        if tag not in raw:
            raise ProfileError(f"profile.{tag}: missing; expected {len(times)} values in {binding.unit.symbol}")
        vals = _numbers(raw[tag], tag)
        if len(vals) != len(times):
            raise ProfileError(f"profile.{tag}: {len(vals)} values; expected one per time ({len(times)})")
        lim = limits.get(binding.input)
        si = tuple(binding.to_model(v) for v in vals)
        if lim is not None:
            bad = [v for v, s in zip(vals, si, strict=True) if not lim.lower - 1e-9 <= s <= lim.upper + 1e-9]
            if bad:
                low, high = binding.to_tag(lim.lower), binding.to_tag(lim.upper)
                raise ProfileError(f"profile.{tag}: got {bad[:5]}; expected values in [{low:g}, {high:g}] "
                                   f"{binding.unit.symbol}", out_of_range=True)
        values[binding.input] = si
    return InputProfile(times, values, interpolation)


def _numbers(value: object, key: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ProfileError(f"profile.{key}: got {value!r:.60}; expected a non-empty list of numbers")
    if len(value) > MAX_PROFILE_POINTS:
        raise ProfileError(f"profile.{key}: {len(value)} values; expected at most {MAX_PROFILE_POINTS}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ProfileError(f"profile.{key}: got {value[:10]!r}; expected finite numbers")
    return tuple(float(v) for v in value)


def check_horizon(horizon_s: float, max_horizon_s: float) -> float:
    """The horizon (s) if it is finite, > 0 and at most ``max_horizon_s``; else :class:`ProfileError` (out of
    range)."""
    if not (math.isfinite(horizon_s) and 0 < horizon_s <= max_horizon_s):
        raise ProfileError(f"horizon_s: got {horizon_s!r}; expected 0 < horizon_s <= {max_horizon_s:g} s",
                           out_of_range=True)
    return float(horizon_s)


def nmpc_programmes(result: NmpcResult) -> dict[str, InputProgram]:
    """The NMPC plan's moves as step programmes (model time): each interval's move held, the last one after."""
    traj = result.trajectory
    starts = tuple(float(t) for t in traj.times_s[:-1])
    return {name: InputProgram(starts, tuple(float(v) for v in moves), "zoh") for name, moves in traj.inputs.items()}


def recipe_programmes(plan: ControlPlan) -> dict[str, InputProgram]:
    """The recipe's programmes (model time = batch time)."""
    recipe = plan.supervisor_config.recipe
    out: dict[str, InputProgram] = {}
    for m in plan.manipulated:
        points = recipe.points[m.input] if recipe is not None and m.input in recipe.points else ()
        if points:
            out[m.input] = InputProgram(tuple(float(t) for t, _ in points), tuple(float(v) for _, v in points),
                                        "linear")
    return out


def forecast_qualities(plan: ControlPlan, mean: np.ndarray, covariance: np.ndarray, start_s: float,
                       horizon_s: float, inputs: Mapping[str, InputProgram | float], source: str,
                       parameters: Mapping[str, float], parameter_bounds: Mapping[str, tuple[float, float]],
                       points: int = FORECAST_POINTS) -> QualityForecast:
    """Forecast the plan's quality outputs from ``mean`` / ``covariance`` of ``[states; online parameters]`` at
    batch time ``start_s`` over ``horizon_s`` under ``inputs`` (model inputs, SI, model time). ``parameters``: the
    deployed value of every parameter; ``parameter_bounds``: the online parameters' bounds. The band is calibrated
    by the plan's ``forecast_band`` (:class:`~process_models.forecast.BandCalibration`: σ × k, Student's t)."""
    published = {o.name: o for o in plan.published}
    wanted = [published[name] for name in plan.forecast_outputs]
    grid = start_s + np.linspace(0.0, horizon_s, points)
    band: ForecastBand = unscented_forecast(plan.model, mean, covariance, plan.estimated_parameters, grid, inputs,
                                            [o.output for o in wanted], parameters, parameter_bounds)
    cal = plan.forecast_band
    mean_eu: dict[str, np.ndarray] = {}
    low: dict[str, np.ndarray] = {}
    high: dict[str, np.ndarray] = {}
    std: dict[str, np.ndarray] = {}
    for o in wanted:
        convert = np.vectorize(o.from_si, otypes=[float])
        sigma = cal.scale * band.std[o.output]
        mean_eu[o.name] = convert(band.mean[o.output])
        low[o.name] = convert(band.mean[o.output] - cal.quantile * sigma)
        high[o.name] = convert(band.mean[o.output] + cal.quantile * sigma)
        std[o.name] = np.abs(convert(band.mean[o.output] + sigma) - mean_eu[o.name])
    return QualityForecast(start_s=start_s, times_s=band.times_s - start_s, mean=mean_eu, low=low, high=high, std=std,
                           unit_codes={o.name: o.unit_code for o in wanted}, source=source,
                           sigma_points=band.sigma_points, wall_time_s=band.wall_time_s, calibration=cal)


class NoEstimate(RuntimeError):
    """No batch runs, so there is no estimate to forecast from."""


def prepare_forecast(core: BatchControl, profile: InputProfile | None,
                     horizon_s: float) -> Callable[[], QualityForecast]:
    """Snapshot what a forecast of ``core``'s batch needs now (estimate, covariance, programme) and return the
    computation as a call (run it in a worker thread: the snapshot is not touched by later estimator steps).
    ``profile`` None: the NMPC's last plan in MPC mode, the recipe in AUTO, the last setpoint held in MANUAL.
    :class:`NoEstimate` before StartBatch."""
    estimator, estimate, plan = core.estimator, core.estimate, core.plan
    if estimator is None or estimate is None:
        raise NoEstimate("no batch estimate: StartBatch first")
    start = float(estimate.time_s)
    inputs: dict[str, InputProgram | float]
    if profile is not None:
        inputs, source = dict(profile.programmes(start)), "profile"
    elif core.mode is ControlMode.MPC and core.last_result is not None:
        inputs, source = dict(nmpc_programmes(core.last_result)), "nmpc_plan"
    elif core.mode is ControlMode.AUTO:
        inputs, source = dict(recipe_programmes(plan)), "recipe"
    else:
        inputs, source = {}, "hold"
    held = core.supervisor.last_written if core.supervisor is not None else {}
    for m in plan.manipulated:  # anything the programme does not give: the value last written / read back, held
        if m.input not in inputs:
            inputs[m.input] = float(held.get(m.input, math.nan))
    mean, cov = estimator.mean, estimator.covariance
    parameters = core.deployed_parameters()
    bounds = dict(estimator.parameter_bounds)

    def run() -> QualityForecast:
        return forecast_qualities(plan, mean, cov, start, horizon_s, inputs, source, parameters, bounds)

    return run
