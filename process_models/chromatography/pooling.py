"""Pooling of a chromatogram: amounts, yield and purity of a fraction collected between two cut points.

For outlet concentration curves ``c_i(t)`` (mol/m3) the amount of component *i* collected between cut times
``t_1`` and ``t_2`` is ``n_i = Q * integral_{t_1}^{t_2} c_i dt`` (mol, Q volumetric flow rate in m3/s); then

* yield of the target ``= n_target(t_1, t_2) / n_target(whole run)`` (or a given reference amount, e.g. the
  amount loaded);
* purity of the target ``= n_target / sum_i n_i`` over the components that count (by default all but the ones
  listed in ``ignore``, e.g. the salt).

(Guiochon et al., *Fundamentals of Preparative and Nonlinear Chromatography*, 2006, ch. 18 "Optimization":
production rate, recovery yield and purity of a collected fraction.) Integrals use the trapezoidal rule on the
sampled curve, with the curve linearly interpolated at the cut points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

OUTLET_PREFIX = "outlet_concentration_"


class PoolingError(ValueError):
    """Bad cut points, unknown component or malformed curves."""


class _HasOutlets(Protocol):
    times_s: np.ndarray

    def output(self, name: str) -> np.ndarray: ...


@dataclass(frozen=True)
class PoolResult:
    """A collected fraction. ``amounts_mol``: per component, mol if a flow rate was given, else mol*s/m3
    (concentration-time integral). ``yield_fraction`` and ``purity_fraction`` are in [0, 1]."""

    target: str
    start_time_s: float
    end_time_s: float
    amounts_mol: dict[str, float]
    yield_fraction: float
    purity_fraction: float


def outlet_curves(result: _HasOutlets, components: Sequence[str]) -> dict[str, np.ndarray]:
    """``component -> outlet concentration (mol/m3)`` from a simulation result of a chromatography model."""
    return {c: np.asarray(result.output(f"{OUTLET_PREFIX}{c}"), dtype=float) for c in components}


def _integral(times: np.ndarray, curve: np.ndarray, t1: float, t2: float) -> float:
    inside = (times > t1) & (times < t2)
    t = np.concatenate([[t1], times[inside], [t2]])
    c = np.concatenate([[np.interp(t1, times, curve)], curve[inside], [np.interp(t2, times, curve)]])
    return float(np.sum(0.5 * (c[1:] + c[:-1]) * np.diff(t)))


def _check_curves(times_s: np.ndarray, curves: Mapping[str, np.ndarray]) -> np.ndarray:
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0):
        raise PoolingError("pooling: times_s must be a strictly increasing 1-D array of at least 2 times")
    for name, curve in curves.items():
        if np.shape(curve) != times.shape:
            raise PoolingError(f"pooling: curve '{name}' has shape {np.shape(curve)}, expected {times.shape}")
    return times


def pool_fraction(times_s: np.ndarray, curves: Mapping[str, np.ndarray], target: str, start_time_s: float,
                  end_time_s: float, ignore: Sequence[str] = (), flow_rate_m3_per_s: float | None = None,
                  reference_amounts: Mapping[str, float] | None = None) -> PoolResult:
    """Yield and purity of ``target`` collected from ``start_time_s`` to ``end_time_s`` (s).

    ``curves``: component -> outlet concentration (mol/m3) at ``times_s``. ``ignore``: components left out of the
    purity (e.g. the salt). ``reference_amounts``: amount per component that 100 % yield refers to (same unit as
    ``amounts_mol``); default: the whole curve.
    """
    times = _check_curves(times_s, curves)
    if target not in curves:
        raise PoolingError(f"pooling: unknown target '{target}'; curves: {list(curves)}")
    unknown = [c for c in ignore if c not in curves]
    if unknown or target in ignore:
        raise PoolingError(f"pooling: ignore = {list(ignore)} must name curves other than the target")
    if not (times[0] <= start_time_s < end_time_s <= times[-1]):
        raise PoolingError(f"pooling: cut points [{start_time_s}, {end_time_s}] s must satisfy "
                           f"{times[0]} <= start < end <= {times[-1]}")
    scale = 1.0 if flow_rate_m3_per_s is None else float(flow_rate_m3_per_s)
    if not (math.isfinite(scale) and scale > 0):
        raise PoolingError(f"pooling: flow_rate_m3_per_s = {flow_rate_m3_per_s}, expected > 0")
    amounts = {c: scale * _integral(times, np.asarray(v, float), start_time_s, end_time_s) for c, v in curves.items()}
    if reference_amounts is not None and target in reference_amounts:
        total = float(reference_amounts[target])
    else:
        total = scale * _integral(times, np.asarray(curves[target], float), float(times[0]), float(times[-1]))
    counted = sum(max(a, 0.0) for c, a in amounts.items() if c not in ignore)
    target_amount = max(amounts[target], 0.0)
    return PoolResult(
        target=target,
        start_time_s=float(start_time_s),
        end_time_s=float(end_time_s),
        amounts_mol=amounts,
        yield_fraction=target_amount / total if total > 0 else 0.0,
        purity_fraction=target_amount / counted if counted > 0 else 0.0,
    )


def pool_result(result: _HasOutlets, components: Sequence[str], target: str, start_time_s: float,
                end_time_s: float, ignore: Sequence[str] = (), flow_rate_m3_per_s: float | None = None,
                reference_amounts: Mapping[str, float] | None = None) -> PoolResult:
    """:func:`pool_fraction` on a simulation result's ``outlet_concentration_<component>`` outputs."""
    return pool_fraction(result.times_s, outlet_curves(result, components), target, start_time_s, end_time_s,
                         ignore, flow_rate_m3_per_s, reference_amounts)


def cut_points_by_threshold(times_s: np.ndarray, curve: np.ndarray, fraction_of_peak: float) -> tuple[float, float]:
    """First and last time (s) the curve is at or above ``fraction_of_peak`` of its maximum (a peak-cut rule),
    linearly interpolated between samples."""
    times = _check_curves(times_s, {"curve": np.asarray(curve)})
    c = np.asarray(curve, dtype=float)
    if not (0 < fraction_of_peak < 1):
        raise PoolingError(f"pooling: fraction_of_peak = {fraction_of_peak}, expected 0 < value < 1")
    level = fraction_of_peak * float(np.max(c))
    above = np.flatnonzero(c >= level)
    if level <= 0 or above.size == 0:
        raise PoolingError("pooling: curve has no positive peak")
    i, j = int(above[0]), int(above[-1])

    def crossing(a: int, b: int) -> float:
        if a < 0 or b >= times.size:
            return float(times[max(a, 0)] if a >= 0 else times[0]) if b < times.size else float(times[-1])
        ca_, cb_ = c[a], c[b]
        return float(times[a] + (level - ca_) / (cb_ - ca_) * (times[b] - times[a])) if cb_ != ca_ else float(times[a])

    start = crossing(i - 1, i) if i > 0 else float(times[0])
    end = crossing(j, j + 1) if j < times.size - 1 else float(times[-1])
    return start, end
