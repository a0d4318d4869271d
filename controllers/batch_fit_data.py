"""A recorded batch as fitting data for a unit's model: the plan's tag bindings applied to the recorded tags.

From the tag series of one batch (plant seconds since StartBatch, the tags' engineering units, NaN = Bad) and the
unit's control plan (:class:`controllers.control_plan.ControlPlan`: which tag measures which model output in which
unit, which tag reads back each manipulated input, how the state at StartBatch follows from the measurements):

* **inputs**: each manipulated input from its read-back tag (the jacket temperature actually applied; the setpoint
  tag when no read-back is recorded), averaged over windows of ``input_interval_s`` and applied piecewise linearly
  between the window centres (averaging removes most of the sensor noise without lagging the signal). A read-back
  is a measurement: each knot's standard deviation, ``sigma / sqrt(n)`` for the ``n`` samples of its window, goes to
  ``FitData.input_std`` (errors in variables, :mod:`process_models.input_uncertainty`), with the tag's noise
  ``sigma`` estimated from the batch's successive differences (:func:`readback_noise_std`). A setpoint tag (no
  read-back recorded) is the commanded value itself and is taken as exact;
* **measurements**: at every ``sample_interval_s`` from StartBatch to the batch's end, each measured tag's recorded
  sample nearest to ``t + delay`` (the instrument reports what the process was ``delay`` seconds earlier: the
  value recorded at ``t + delay`` is the model's output at ``t``), converted to the model output's unit; NaN where
  no sample lies within ``max(2 x the tag's recording period, 1 s)`` or after the batch's end;
* **initial state**: ``plan.initial_estimate`` of the measurements at StartBatch (the EKF's start: seed from the
  control options, temperature and solute concentration measured): each measured tag's straight-line fit over the
  first ``initial_window_s`` after ``0 + delay``, read at ``0 + delay`` (one sample's noise would otherwise bias
  every estimate; a plain mean would be biased by the batch's early trend). With ``estimate_initial`` (default)
  the measured states' initial values (for the crystallizer: slurry temperature and solute concentration) are
  estimated with the parameters, per batch (``FitData.estimate_initial``): the supersaturation at the start, on
  which nucleation hangs, is a small difference of two measured quantities, and a window's noise in it biases the
  kinetic constants by more than their standard errors (seen on bench batches: 2.5 standard errors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from controllers.control_plan import ControlPlan
from process_models.fitting import FitData
from process_models.simulator import InputProgram

__all__ = ["BatchDataError", "batch_fit_data", "readback_noise_std"]


class BatchDataError(ValueError):
    """A recorded batch lacks what the fit needs (the message names the batch and the tag)."""


def _nearest(times: np.ndarray, values: np.ndarray, at: np.ndarray, tolerance_s: float) -> np.ndarray:
    finite = np.isfinite(values)
    t, v = times[finite], values[finite]
    out = np.full(at.shape, np.nan)
    if t.size == 0:
        return out
    idx = np.clip(np.searchsorted(t, at), 1, t.size - 1) if t.size > 1 else np.zeros(at.shape, dtype=int)
    if t.size > 1:
        left = idx - 1
        idx = np.where(np.abs(t[left] - at) <= np.abs(t[idx] - at), left, idx)
    near = np.abs(t[idx] - at) <= tolerance_s
    out[near] = v[idx[near]]
    return out


def readback_noise_std(values: np.ndarray) -> float:
    """A recorded signal's white-noise standard deviation from its successive differences, robustly: for independent
    errors of standard deviation sigma on a signal that moves little between samples, ``v[i+1] - v[i]`` has standard
    deviation ``sqrt(2) sigma`` (von Neumann, *Ann. Math. Statist.* 12 (1941) 367, the mean square successive
    difference); the median absolute difference / 0.6745 estimates that standard deviation unmoved by the few large
    steps of a setpoint change. 0 for fewer than 3 finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 3:
        return 0.0
    return float(np.median(np.abs(np.diff(v))) / 0.6745 / math.sqrt(2.0))


def _period(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if times.size > 1 else 1.0


def batch_fit_data(plan: ControlPlan, series: Mapping[str, tuple[np.ndarray, np.ndarray]], duration_s: float,
                   name: str, sample_interval_s: float = 60.0, input_interval_s: float = 60.0,
                   initial_window_s: float = 60.0,
                   delays_s: Mapping[str, float] | None = None,
                   parameters: Mapping[str, float] | None = None, estimate_initial: bool = True) -> FitData:
    """One batch as :class:`~process_models.fitting.FitData` (module docstring). ``series``: tag -> (times s since
    StartBatch, values in the tag's engineering unit); ``delays_s``: measured tag -> its instrument's delay (s);
    ``parameters``: the model parameter values to hold fixed (the parent set's)."""
    delays = dict(delays_s or {})
    unknown = sorted(set(delays) - {m.tag for m in plan.measurements})
    if unknown:
        raise BatchDataError(f"delays: {unknown} are not measured tags of the plan; measured tags: "
                             f"{[m.tag for m in plan.measurements]}")
    if not (math.isfinite(duration_s) and duration_s > sample_interval_s):
        raise BatchDataError(f"batch {name}: lasted {duration_s:.0f} s; expected more than one sample interval "
                             f"({sample_interval_s:g} s)")
    grid = np.arange(0.0, duration_s + 1e-9, sample_interval_s)
    measurements: dict[str, np.ndarray] = {}
    at_start: dict[str, float] = {}
    for m in plan.measurements:
        if m.tag not in series:
            continue
        t, v = (np.asarray(a, dtype=float) for a in series[m.tag])
        delay = float(delays.get(m.tag, 0.0))
        tol = max(2.0 * _period(t), 1.0)
        at = grid + delay
        raw = _nearest(t, v, at, tol)
        raw[at > duration_s + 1e-9] = np.nan
        model_values = np.array([m.to_model(x) if math.isfinite(x) else math.nan for x in raw])
        if np.isfinite(model_values).sum() == 0:
            continue
        measurements[m.output] = model_values
        first = (t >= delay - 1e-9) & (t <= delay + initial_window_s + 1e-9) & np.isfinite(v)
        if first.sum() >= 3:   # the straight line through the window's samples, at its start: no trend bias
            slope, intercept = np.polyfit(t[first] - delay, v[first], 1)
            at_start[m.output] = m.to_model(float(intercept))
        elif first.any():
            at_start[m.output] = m.to_model(float(v[first][0]))
    if not measurements:
        raise BatchDataError(f"batch {name}: no recorded values of the measured tags "
                             f"{[m.tag for m in plan.measurements]}")
    inputs = {}
    input_std = {}
    for b in plan.manipulated:
        readback = b.measured_tag is not None and b.measured_tag in series
        tag = b.measured_tag if readback else b.tag
        if tag not in series:
            raise BatchDataError(f"batch {name}: no recorded values of '{b.measured_tag or b.tag}' (input "
                                 f"'{b.input}'); expected the tag in the unit's history")
        t, v = (np.asarray(a, dtype=float) for a in series[tag])
        inside = (t >= -1e-9) & (t <= duration_s + 1e-9)
        # the tag's noise in the model's unit (the conversions are affine: a difference scales by their slope)
        noise = readback_noise_std(v[inside]) * abs(b.to_model(1.0) - b.to_model(0.0)) if readback else 0.0
        knots, values, stds = [], [], []
        for lo in np.arange(0.0, duration_s, input_interval_s):
            hi = min(lo + input_interval_s, duration_s)
            sel = (t >= lo - 1e-9) & (t <= hi + 1e-9) & np.isfinite(v)
            if sel.any():
                knots.append(float(np.mean(t[sel])))
                values.append(b.to_model(float(np.mean(v[sel]))))
                stds.append(noise / math.sqrt(int(sel.sum())))
        if len(knots) < 2:
            raise BatchDataError(f"batch {name}: too few values of '{tag}' (input '{b.input}') to rebuild it")
        inputs[b.input] = InputProgram(tuple(knots), tuple(values), "linear")
        if noise > 0:
            input_std[b.input] = np.array(stds)
    x0, _std = plan.initial_estimate(at_start)
    model = plan.model
    free = tuple(n for n in measurements if estimate_initial and n in model.state_slices
                 and model.state_slices[n].stop - model.state_slices[n].start == 1) if estimate_initial else ()
    return FitData(times_s=grid, measurements=measurements, inputs=inputs, initial_state=x0,
                   parameters=dict(parameters or {}), name=name, estimate_initial=free, input_std=input_std)
