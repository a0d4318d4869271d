"""Cut points of the product pool on a chromatography skid: the yield-maximising collection start and stop whose
pool purity meets the specification with a stated probability (a chance constraint), and the fixed-UV-threshold
rule that serves as the fallback and as the baseline.

**Model-based cuts** (:func:`plan_cuts`). The outlet is predicted as an *ensemble*: ``S`` equally likely outlet
curves ``c_i^(s)(t)`` (mol/m3) per component ``i``, e.g. from parameters sampled from the estimate's
distribution (:mod:`controllers.chromatography.elution_estimator`). For cut times ``t_1 < t_2`` (s) inside the
fractionation window, member ``s`` pools ``n_i^(s) = integral_{t_1}^{t_2} c_i^(s) dt`` (mol s/m3; times the
volumetric flow rate this is mol, the same factor for every component, so it cancels in yield and purity), with

* pool purity ``P^(s) = n_target / (n_target + sum_impurities n_j)`` and
* yield ``Y^(s) = n_target / N_target^(s)`` (``N``: the member's whole predicted product peak).

The decision is ``max_{t_1, t_2} mean_s Y^(s)`` subject to ``#{s : P^(s) >= P_spec} / S >= 1 - alpha`` (default
``1 - alpha = 0.95``): the sample-average approximation of the chance constraint ``Prob(P >= P_spec) >= 1 - alpha``
(Luedtke & Ahmed, "A sample approximation approach for optimization with probabilistic constraints", SIAM J. Optim.
19 (2008) 674-699; Pagnoncelli, Ahmed & Shapiro, J. Optim. Theory Appl. 142 (2009) 399-416; the scenario view:
Calafiore & Campi, IEEE Trans. Autom. Control 51 (2006) 742-753). It is solved exactly over the candidate cut
times (the ensemble's time grid inside the window): every start, all stops and all members at once (cumulative
trapezoid integrals), so the optimum is global on that grid. Yield and purity of a fraction follow Guiochon et al.,
*Fundamentals of Preparative and Nonlinear Chromatography*, 2006, ch. 18 (as :mod:`process_models.chromatography.
pooling`, which evaluates a cut on a single curve).

An online plan may be pinned: ``earliest_start_s`` (the valve cannot open in the past), ``fixed_start_s`` (the
valve opened already; only the stop is free), ``earliest_stop_s`` (the stop cannot be in the past).

**Oracle cuts** (:func:`oracle_cuts`): the same problem on the TRUE outlet (one member, so the constraint is
deterministic), on the true curve's grid, then each cut moved continuously to the purity boundary between grid
points (bisection). Any strategy whose cuts lie on that grid and meet the spec on the true outlet yields at most
the oracle's yield.

**Fixed UV thresholds** (:class:`UvThresholdRule`): the skid's conventional peak cutting on the UV signal (mAU): once
the fractionation window is open, start collecting when the UV rises through ``start_level_mau`` (it must have been
below that level inside the window first, so the tail of an earlier peak does not start the pool), stop when, after
the peak maximum, it falls through ``stop_level_mau``, or when the window closes. Causal: it sees only the UV so far.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from process_models.chromatography.pooling import PoolingError, pool_fraction

__all__ = [
    "CutPlan",
    "PoolingError",
    "PoolingSpec",
    "UvThresholdRule",
    "oracle_cuts",
    "plan_cuts",
    "pool_on_curves",
    "threshold_cuts",
    "tune_uv_thresholds",
]


@dataclass(frozen=True)
class PoolingSpec:
    """What the pool must be: ``target`` (the product), the ``impurities`` counted against its purity (the salt is
    not), ``purity_min`` (fraction, 0-1), ``confidence`` (the chance constraint's ``1 - alpha``, 0-1), the
    fractionation window ``[window_start_s, window_end_s]`` (s) outside which the valve never collects, and the
    shortest pool ``min_pool_duration_s`` (s)."""

    target: str
    impurities: tuple[str, ...]
    purity_min: float
    window_start_s: float
    window_end_s: float
    confidence: float = 0.95
    min_pool_duration_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.impurities or self.target in self.impurities:
            raise PoolingError(f"pooling spec: impurities {list(self.impurities)} must be non-empty and must not "
                               f"include the target '{self.target}'")
        for key, value in (("purity_min", self.purity_min), ("confidence", self.confidence)):
            if not (math.isfinite(value) and 0.0 < value < 1.0):
                raise PoolingError(f"pooling spec: '{key}' = {value}, expected 0 < value < 1")
        if not (math.isfinite(self.window_start_s) and math.isfinite(self.window_end_s)
                and self.window_start_s < self.window_end_s):
            raise PoolingError(f"pooling spec: window [{self.window_start_s}, {self.window_end_s}] s, expected "
                               f"finite start < end")
        if not (math.isfinite(self.min_pool_duration_s) and self.min_pool_duration_s >= 0):
            raise PoolingError(f"pooling spec: 'min_pool_duration_s' = {self.min_pool_duration_s}, expected >= 0")

    @property
    def components(self) -> tuple[str, ...]:
        return (self.target, *self.impurities)


@dataclass(frozen=True)
class CutPlan:
    """Planned (or, for the oracle, best) cut points and what the ensemble predicts for that pool.

    ``start_s``/``stop_s``: collection valve open/close (s); ``expected_yield``: mean predicted yield (0-1);
    ``expected_purity``: mean predicted purity (0-1); ``purity_at_confidence``: the purity that the pool reaches
    with the spec's confidence (the ``1 - confidence`` quantile over the ensemble); ``probability_on_spec``:
    fraction of members whose pool meets the spec; ``source``: ``"model"``, ``"oracle"`` or
    ``"fixed_thresholds"``; ``reason``: why this source (empty for the model's own plan)."""

    start_s: float
    stop_s: float
    expected_yield: float
    expected_purity: float
    purity_at_confidence: float
    probability_on_spec: float
    members: int
    source: str = "model"
    reason: str = ""


def _cumulative(times: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid integral along the last axis (same shape, 0 at the first time)."""
    steps = 0.5 * (curves[..., 1:] + curves[..., :-1]) * np.diff(times)
    return np.concatenate([np.zeros(curves.shape[:-1] + (1,)), np.cumsum(steps, axis=-1)], axis=-1)


def _ensemble_array(times: np.ndarray, ensemble: Mapping[str, np.ndarray], spec: PoolingSpec) -> np.ndarray:
    """(S, 1 + n_impurities, T) array: target first, negative concentrations clipped to 0."""
    missing = [c for c in spec.components if c not in ensemble]
    if missing:
        raise PoolingError(f"pooling: the predicted outlet has no curve for {missing}; it has {sorted(ensemble)}")
    arrays = []
    for c in spec.components:
        a = np.atleast_2d(np.asarray(ensemble[c], dtype=float))
        if a.ndim != 2 or a.shape[1] != times.size:
            raise PoolingError(f"pooling: curve '{c}' has shape {np.shape(ensemble[c])}, expected (members, "
                               f"{times.size}) or ({times.size},)")
        if not np.all(np.isfinite(a)):
            raise PoolingError(f"pooling: curve '{c}' has non-finite values")
        arrays.append(np.maximum(a, 0.0))
    members = {a.shape[0] for a in arrays}
    if len(members) != 1:
        raise PoolingError(f"pooling: curves have different member counts {sorted(members)}")
    return np.stack(arrays, axis=1)


def _check_times(times_s: np.ndarray) -> np.ndarray:
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or times.size < 2 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise PoolingError("pooling: times_s must be a strictly increasing 1-D array of >= 2 finite times")
    return times


_CHUNK_ENTRIES = 1 << 17  # members x starts x stops that plan_cuts evaluates at once (1 MiB per float array)


def _with_time(grid: np.ndarray, arr: np.ndarray, time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The grid with ``time_s`` added and the curves ``arr`` (..., T) on it: ``np.interp``'s value at ``time_s``,
    the grid's own values elsewhere (so nothing changes when ``time_s`` is a grid time)."""
    times = np.unique(np.concatenate([grid, [time_s]]))
    if times.size == grid.size:
        return times, arr
    k = int(np.searchsorted(grid, time_s))
    at = np.array([np.interp(time_s, grid, row) for row in arr.reshape(-1, grid.size)]).reshape(arr.shape[:-1])
    return times, np.concatenate([arr[..., :k], at[..., None], arr[..., k:]], axis=-1)


def _pools(by_time_product: np.ndarray, by_time_impurity: np.ndarray, chunk: np.ndarray, stops: np.ndarray,
           valid: np.ndarray, purity_min: float, floats: np.ndarray, flags: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each member's pool from each start in ``chunk`` to each of ``stops`` (time indices; ``valid``, (I, J): the
    stops each start may use), from the (T, S) cumulative amounts: the (I, J, S) product, impurities, whether the
    pool is on spec, and a spare float array. All are views into the scratch buffers ``floats`` (4, n) and
    ``flags`` (2, n, bool), n >= I J S: fresh arrays of that size for every chunk would cost more than the
    arithmetic. Members are the last, contiguous axis, so a mean over them is numpy's pairwise sum per pool, as
    over the members of one start's (S, J) arrays (contiguous too: column-wise fancy indexing)."""
    shape = (chunk.size, stops.size, by_time_product.shape[1])
    n = math.prod(shape)
    product, impurity, lhs, rhs = (buffer[:n].reshape(shape) for buffer in floats)
    on_spec, positive = (buffer[:n].reshape(shape) for buffer in flags)
    np.subtract(by_time_product[None, stops, :], by_time_product[chunk, None, :], out=product)
    np.subtract(by_time_impurity[None, stops, :], by_time_impurity[chunk, None, :], out=impurity)
    np.greater_equal(np.multiply(product, 1.0 - purity_min, out=lhs), np.multiply(purity_min, impurity, out=rhs),
                     out=on_spec)
    on_spec &= np.greater(product, 0.0, out=positive)
    on_spec &= valid[:, :, None]
    return product, impurity, on_spec, lhs


def _feasible_means(values: np.ndarray, feasible: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row of the (I, S) ``values`` selected by ``rows``, the mean over its ``feasible`` entries, bit for bit
    ``values[a, feasible[a]].mean()`` (the rows with as many entries are compacted and summed together); -inf
    for the other rows."""
    means = np.full(values.shape[0], -np.inf)
    counts = feasible.sum(axis=1)
    for n in np.unique(counts[rows]):
        group = np.flatnonzero(rows & (counts == n))
        means[group] = values[group][feasible[group]].reshape(group.size, n).mean(axis=1)
    return means


def _most_probable(probability: np.ndarray, purity: np.ndarray, valid: np.ndarray) -> tuple[int, int] | None:
    """(start, stop) indices of the largest (probability, purity) pair over the (I, J) candidates ``valid``: per
    start the last such stop (as the last of ``np.lexsort``), then the first start; None without candidates."""
    eligible = valid.any(axis=1)
    if not eligible.any():
        return None
    p = np.where(valid, probability, -np.inf)
    top_p = p.max(axis=1)
    q = np.where(p == top_p[:, None], purity, -np.inf)
    top_q = q.max(axis=1)
    ties = (p == top_p[:, None]) & (q == top_q[:, None])
    last = ties.shape[1] - 1 - np.argmax(ties[:, ::-1], axis=1)
    best_p = top_p[eligible].max()
    best_q = top_q[eligible & (top_p == best_p)].max()
    a = int(np.argmax(eligible & (top_p == best_p) & (top_q == best_q)))
    return a, int(last[a])


def plan_cuts(times_s: np.ndarray, ensemble: Mapping[str, np.ndarray], spec: PoolingSpec, *,
              earliest_start_s: float | None = None, fixed_start_s: float | None = None,
              earliest_stop_s: float | None = None, stop_with_recourse: bool = False, best_effort: bool = False,
              source: str = "model") -> CutPlan | None:
    """The chance-constrained yield-maximising cuts (see the module docstring) on the candidate times
    ``times_s`` (s) inside the window, or ``None`` when no candidate pool meets the chance constraint.

    ``ensemble``: component -> outlet concentration (mol/m3), shape (members, T) or (T,) for one member, for the
    target and every impurity (other components are ignored). ``fixed_start_s``: the valve is open since then (it
    need not be a grid time).

    ``stop_with_recourse``: choose the start knowing the stop will be chosen later, when the outlet up to it has
    been seen (a two-stage programme with recourse; Birge & Louveaux, *Introduction to Stochastic Programming*,
    2nd ed., Springer 2011, ch. 3): each member gets its own best on-spec stop, the objective is the mean of those
    yields over the members that have one and the constraint is that at least ``confidence`` of the members have
    one. (Counting a member without an on-spec stop as yield 0 instead maximises the expected on-spec yield: a
    different, stricter programme, which drives the probability towards 1 rather than ``confidence`` and so
    delays the start — on the shipped skid by 10-20 s, 1.5-2 % yield.)
    The plan's stop is then the median of the members' stops (it is re-planned before it is reached).
    ``best_effort``: when no candidate meets the constraint, return the one with the highest probability (then
    the highest mean purity) instead of None — for a pool already in progress, whose valve must close somewhere.

    The starts are evaluated in vectorised chunks (members x starts x stops arrays of about ``_CHUNK_ENTRIES``
    entries), with the same candidates, sums and ties as one start at a time: the earliest start with the largest
    objective wins, and within a start the earliest stop.

    Raises :class:`PoolingError` for malformed curves or pins outside the window.
    """
    times = _check_times(times_s)
    arr = _ensemble_array(times, ensemble, spec)
    n_members = arr.shape[0]
    w0, w1 = spec.window_start_s, spec.window_end_s
    if fixed_start_s is not None and not (w0 - 1e-9 <= fixed_start_s <= w1):
        raise PoolingError(f"pooling: fixed_start_s = {fixed_start_s} s outside the window [{w0}, {w1}] s")
    if fixed_start_s is not None:
        times, arr = _with_time(times, arr, fixed_start_s)
    cum = _cumulative(times, arr)  # (S, C, T)
    cum_product, cum_impurity = cum[:, 0, :], cum[:, 1:, :].sum(axis=1)  # (S, T) each
    totals = cum_product[:, -1]  # whole predicted product peak per member
    inside = (times >= w0 - 1e-9) & (times <= w1 + 1e-9)
    starts = np.flatnonzero(inside & (times >= (earliest_start_s if earliest_start_s is not None else -np.inf)))
    if fixed_start_s is not None:
        starts = np.flatnonzero(np.isclose(times, fixed_start_s, rtol=0.0, atol=1e-9))
    stop_ok = inside & (times >= (earliest_stop_s if earliest_stop_s is not None else -np.inf))
    min_duration = max(spec.min_pool_duration_s, 1e-12)
    threshold = spec.confidence - 1e-12
    has_total = totals > 0
    divisor = np.where(has_total, totals, 1.0)
    by_time = np.ascontiguousarray(cum_product.T), np.ascontiguousarray(cum_impurity.T)  # (T, S) each
    most_stops = int(np.count_nonzero(stop_ok & (times >= times[starts[0]] + min_duration))) if starts.size else 0
    scratch = min(max(_CHUNK_ENTRIES, n_members * most_stops), starts.size * n_members * most_stops)
    floats, flags = np.empty((4, scratch)), np.empty((2, scratch), dtype=bool)
    best: tuple[float, int, int] | None = None  # (objective, i, j)
    fallback: tuple[float, float, int, int] | None = None  # (probability, purity, i, j) for best_effort
    recourse_stops: np.ndarray | None = None
    member_best = np.full((starts.size, n_members), -np.inf)  # recourse: each member's best on-spec yield
    has_stop = np.zeros(starts.size, dtype=bool)
    position = 0
    while position < starts.size:
        # a chunk of starts (ascending) against the stops of its first start, which include those of the others
        stops = np.flatnonzero(stop_ok & (times >= times[starts[position]] + min_duration))
        if stops.size == 0:
            break  # the later starts have no stop either
        rows = slice(position, position + max(1, _CHUNK_ENTRIES // (n_members * stops.size)))
        chunk = starts[rows]
        position += chunk.size
        valid = times[stops][None, :] >= (times[chunk] + min_duration)[:, None]
        product, impurity, on_spec, spare = _pools(*by_time, chunk, stops, valid, spec.purity_min, floats, flags)
        has_stop[rows] = valid.any(axis=1)
        if stop_with_recourse:  # the largest on-spec yield (product / total) is at the largest on-spec product
            largest = np.max(np.multiply(product, on_spec, out=spare), axis=1)  # (I, S); on spec: > 0, else 0
            member_best[rows] = np.where(largest > 0, np.where(has_total, largest / divisor, 0.0), -np.inf)
            continue
        yields = np.divide(product, divisor, out=spare)
        yields[:, :, ~has_total] = 0.0
        probability = on_spec.mean(axis=2)  # (I, J)
        mean_yield = np.where(valid & (probability >= threshold), yields.mean(axis=2), -np.inf)
        k = np.argmax(mean_yield, axis=1)  # each start's first best stop
        values = mean_yield[np.arange(chunk.size), k]
        a = int(np.argmax(values))  # the chunk's first start with the largest objective
        if np.isfinite(values[a]) and (best is None or values[a] > best[0]):
            best = (float(values[a]), int(chunk[a]), int(stops[k[a]]))
        if best_effort and best is None:  # only while no start is feasible: a feasible one discards the fallback
            counted = product + impurity
            purity = np.where(counted > 0, product / np.where(counted > 0, counted, 1.0), 0.0).mean(axis=2)
            pick = _most_probable(probability, purity, valid)
            if pick is not None:
                candidate = (float(probability[pick]), float(purity[pick]), int(chunk[pick[0]]), int(stops[pick[1]]))
                if fallback is None or candidate[:2] > fallback[:2]:
                    fallback = candidate
    if stop_with_recourse:
        feasible = np.isfinite(member_best)
        values = _feasible_means(member_best, feasible, (feasible.mean(axis=1) >= threshold) & has_stop)
        a = int(np.argmax(values)) if values.size else 0  # the first start with the largest objective
        if values.size and np.isfinite(values[a]):
            i, members = int(starts[a]), feasible[a]
            stops = np.flatnonzero(stop_ok & (times >= times[i] + min_duration))
            product, _, on_spec, spare = _pools(*by_time, starts[a:a + 1], stops, np.ones((1, stops.size), dtype=bool),
                                                spec.purity_min, floats, flags)
            yields = np.divide(product[0], divisor, out=spare[0])  # (J, S)
            yields[:, ~has_total] = 0.0
            member_yields = np.where(on_spec[0], yields, -np.inf)
            recourse_stops = np.full(n_members, -1)  # each member's first stop with its best on-spec yield
            recourse_stops[members] = stops[np.argmax(member_yields[:, members], axis=0)]
            best = (float(values[a]), i, int(np.median(recourse_stops[members])))
    if best is None and fallback is not None:
        best = (fallback[1], fallback[2], fallback[3])
    if best is None:
        return None
    _, i, j = best
    # each member's pool: at the plan's stop, or (recourse) at the member's own stop
    own = np.full(n_members, j) if recourse_stops is None else np.where(recourse_stops >= 0, recourse_stops, j)
    amounts = cum[np.arange(n_members), :, own] - cum[:, :, i]
    counted = amounts.sum(axis=1)
    purity = np.where(counted > 0, amounts[:, 0] / np.where(counted > 0, counted, 1.0), 0.0)
    yields = np.where(totals > 0, amounts[:, 0] / np.where(totals > 0, totals, 1.0), 0.0)
    return CutPlan(start_s=float(times[i]), stop_s=float(times[j]), expected_yield=float(yields.mean()),
                   expected_purity=float(purity.mean()),
                   purity_at_confidence=float(np.quantile(purity, 1.0 - spec.confidence)),
                   probability_on_spec=float(np.mean(purity >= spec.purity_min)), members=n_members, source=source)


def pool_on_curves(times_s: np.ndarray, curves: Mapping[str, np.ndarray], spec: PoolingSpec, start_s: float,
                   stop_s: float) -> tuple[float, float]:
    """``(yield, purity)`` (fractions) of the pool ``[start_s, stop_s]`` on one set of outlet curves (mol/m3),
    purity counted over the spec's target and impurities (:func:`process_models.chromatography.pooling.
    pool_fraction`)."""
    counted = {c: np.asarray(curves[c], dtype=float) for c in spec.components}
    result = pool_fraction(times_s, counted, spec.target, start_s, stop_s)
    return result.yield_fraction, result.purity_fraction


def _boundary(times: np.ndarray, curves: Mapping[str, np.ndarray], spec: PoolingSpec, fixed: float, inner: float,
              outer: float, moving_stop: bool) -> float:
    """Move one cut from ``inner`` (on spec) towards ``outer`` (off spec) to the purity boundary (bisection, 40
    halvings)."""
    def ok(t: float) -> bool:
        a, b = (fixed, t) if moving_stop else (t, fixed)
        return pool_on_curves(times, curves, spec, a, b)[1] >= spec.purity_min

    if ok(outer):
        return outer
    for _ in range(40):
        mid = 0.5 * (inner + outer)
        inner, outer = (mid, outer) if ok(mid) else (inner, mid)
    return inner


def oracle_cuts(times_s: np.ndarray, true_curves: Mapping[str, np.ndarray], spec: PoolingSpec) -> CutPlan:
    """The best cuts knowing the true outlet (mol/m3 per component on ``times_s``, s): the largest yield whose
    pool meets the purity spec, on the grid then refined continuously (module docstring). Raises
    :class:`PoolingError` when no pool inside the window meets the spec."""
    times = _check_times(times_s)
    curves = {c: np.asarray(true_curves[c], dtype=float) for c in spec.components if c in true_curves}
    plan = plan_cuts(times, curves, spec, source="oracle")
    if plan is None:
        raise PoolingError(f"oracle: no pool inside the window [{spec.window_start_s}, {spec.window_end_s}] s "
                           f"reaches purity {spec.purity_min}")
    start, stop = plan.start_s, plan.stop_s
    dt = float(np.max(np.diff(times)))
    for _ in range(2):
        stop = _boundary(times, curves, spec, start, stop, min(stop + dt, spec.window_end_s, float(times[-1])), True)
        start = _boundary(times, curves, spec, stop, start, max(start - dt, spec.window_start_s, float(times[0])),
                          False)
    y, p = pool_on_curves(times, curves, spec, start, stop)
    return CutPlan(start_s=start, stop_s=stop, expected_yield=y, expected_purity=p, purity_at_confidence=p,
                   probability_on_spec=1.0, members=1, source="oracle")


@dataclass
class UvThresholdRule:
    """Fixed UV-threshold peak cutting (module docstring), fed one UV sample at a time.

    ``start_level_mau``/``stop_level_mau``: UV levels (mAU) at which collection starts (rising) and stops (falling,
    after the peak maximum); ``peak_drop_fraction``: the UV must fall this fraction below its maximum since the
    start before the stop is armed (so noise at the top does not stop the pool)."""

    spec: PoolingSpec
    start_level_mau: float
    stop_level_mau: float
    peak_drop_fraction: float = 0.05
    collecting: bool = False
    start_s: float | None = None
    stop_s: float | None = None
    _seen_below: bool = field(default=False, repr=False)
    _peak_mau: float = field(default=-math.inf, repr=False)

    def __post_init__(self) -> None:
        for key in ("start_level_mau", "stop_level_mau"):
            value = getattr(self, key)
            if not math.isfinite(value):
                raise PoolingError(f"UV threshold rule: '{key}' = {value}, expected a finite level in mAU")
        if not 0.0 <= self.peak_drop_fraction < 1.0:
            raise PoolingError(f"UV threshold rule: 'peak_drop_fraction' = {self.peak_drop_fraction}, "
                               f"expected 0 <= value < 1")

    @property
    def done(self) -> bool:
        return self.stop_s is not None

    def observe(self, time_s: float, uv_mau: float, valve_open: bool | None = None) -> bool:
        """Take one UV sample (mAU) at ``time_s`` (s); return whether the valve should be collecting now.

        ``valve_open``: the valve's actual state up to this sample when something else commands it (the
        model-based loop, for which this rule is the fallback): an open valve is a pool in progress (its peak
        tracked from now), a closed valve the rule wanted open is a pool not started."""
        s = self.spec
        if valve_open is not None and valve_open != self.collecting:
            self.collecting = valve_open
            self.start_s = time_s if valve_open else None
            self._peak_mau = uv_mau
        if self.done:
            return False
        inside = s.window_start_s <= time_s <= s.window_end_s
        if self.collecting:
            self._peak_mau = max(self._peak_mau, uv_mau)
            armed = uv_mau <= (1.0 - self.peak_drop_fraction) * self._peak_mau
            if time_s >= s.window_end_s or (armed and uv_mau <= self.stop_level_mau):
                self.collecting, self.stop_s = False, min(time_s, s.window_end_s)
            return self.collecting
        if not inside:
            return False
        if uv_mau < self.start_level_mau:
            self._seen_below = True
        elif self._seen_below and time_s < s.window_end_s:
            self.collecting, self.start_s, self._peak_mau = True, time_s, uv_mau
        return self.collecting

    def cuts(self, end_s: float) -> tuple[float, float] | None:
        """The rule's cuts after a run ending at ``end_s`` (s; closes a pool still open), None if it never
        collected."""
        if self.start_s is None:
            return None
        return self.start_s, self.stop_s if self.stop_s is not None else min(end_s, self.spec.window_end_s)


def threshold_cuts(times_s: Sequence[float], uv_mau: Sequence[float], spec: PoolingSpec, start_level_mau: float,
                   stop_level_mau: float) -> tuple[float, float] | None:
    """Cuts of :class:`UvThresholdRule` run over a whole UV record (times s, UV mAU)."""
    rule = UvThresholdRule(spec, start_level_mau, stop_level_mau)
    for t, uv in zip(times_s, uv_mau, strict=True):
        rule.observe(float(t), float(uv))
    return rule.cuts(float(times_s[-1]))


def tune_uv_thresholds(times_s: np.ndarray, references: Sequence[tuple[np.ndarray, Mapping[str, np.ndarray]]],
                       spec: PoolingSpec, purity_margin: float = 0.0, levels_mau: Sequence[float] | None = None
                       ) -> tuple[float, float]:
    """Start and stop levels (mAU) of :class:`UvThresholdRule` as process development sets them: on reference
    runs (each its UV as the skid sees it, mAU, and its true outlet curves, mol/m3, on ``times_s``; e.g. the
    nominal process alone, or the corners of the design space), the pair with the largest mean yield whose pool
    meets ``spec.purity_min + purity_margin`` in every reference (grid search over ``levels_mau``, default 5 mAU
    steps up to the largest UV). Raises :class:`PoolingError` if no pair does."""
    times = _check_times(times_s)
    if not references:
        raise PoolingError("UV thresholds: at least one reference run expected")
    top = max(float(np.max(uv)) for uv, _ in references)
    grid = np.asarray(levels_mau if levels_mau is not None else np.arange(5.0, top, 5.0), dtype=float)
    best: tuple[float, float, float] | None = None
    for start_level in grid:
        for stop_level in grid:
            yields = []
            for uv, curves in references:
                cuts = threshold_cuts(times, np.asarray(uv, dtype=float), spec, float(start_level), float(stop_level))
                if cuts is None or cuts[1] <= cuts[0]:
                    break
                y, p = pool_on_curves(times, curves, spec, *cuts)
                if p < spec.purity_min + purity_margin:
                    break
                yields.append(y)
            else:
                if best is None or float(np.mean(yields)) > best[0]:
                    best = (float(np.mean(yields)), float(start_level), float(stop_level))
    if best is None:
        raise PoolingError(f"UV thresholds: no start/stop levels reach purity {spec.purity_min + purity_margin} "
                           f"on the {len(references)} reference run(s)")
    return best[1], best[2]
