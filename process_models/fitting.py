"""Fitting model parameters to measured trajectories by weighted least squares.

Method: single shooting over the simulator — the model is simulated from the known initial state
with the recorded inputs, and ``scipy.optimize.least_squares`` (trust-region reflective, declared
parameter bounds) minimises ``sum_i (w_i (y_model,i - y_measured,i))^2``. The Jacobian comes from
CVODES forward sensitivities (:func:`~process_models.simulator.trajectory_sensitivity`), not finite
differences. Parameters are scaled by their initial guess inside the optimiser.

Statistics (Bates & Watts, *Nonlinear Regression Analysis and Its Applications*, Wiley 1988, ch. 2;
Seber & Wild, *Nonlinear Regression*, Wiley 1989, sec. 5.1): with J the weighted-residual Jacobian at
the estimate, the covariance is ``s^2 (J^T J)^-1`` where ``s^2 = SSR / (m - p)`` (weights taken as
relative), or ``(J^T J)^-1`` when ``absolute_sigma=True`` (weights are exactly 1/sigma). 95 %
confidence intervals use Student's t with ``m - p`` degrees of freedom:
``theta_j +/- t_{0.975, m-p} se_j`` (linearised intervals).

Measurements may name any state or output of the model; NaN marks a missing sample.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from process_models.declaration import CompiledModel
from process_models.simulator import (
    InputSpec,
    SimulationError,
    SimulationResult,
    simulate,
    trajectory_sensitivity,
)

__all__ = ["FitData", "FitError", "FitResult", "fit_parameters", "weighted_residual_vector", "weighted_sum_of_squares"]


class FitError(ValueError):
    """A fit request is malformed (unknown parameter or measurement, no data, bad weights)."""


@dataclass(frozen=True)
class FitData:
    """One experiment: inputs applied from a known initial state and the values measured.

    ``measurements``: name of a state or output -> values at ``times_s`` (shape ``(n_times,)``, or
    ``(size, n_times)`` for a vector quantity); NaN for a missing sample. ``parameters``: values of
    parameters that are known for this experiment (overrides of the declared defaults). ``sigmas``: per measured
    name, the standard deviation of each sample (same shape as its values, the measurement's unit): the sample's
    residual weight is ``1/sigma``, overriding ``fit_parameters(weights=...)`` (a variance model that changes along
    the trajectory, :mod:`process_models.likelihood_fit`). ``estimate_initial``: scalar states whose initial values
    are estimated with the parameters (nuisance parameters of this experiment; ``initial_state`` is their start).
    ``input_std``: per input given as an :class:`~process_models.simulator.InputProgram`, the standard deviation of
    each knot's value (the input's unit; a measured input: errors in variables). The fit itself takes the inputs as
    given; :mod:`process_models.input_uncertainty` adds their noise to the covariance.
    """

    times_s: Sequence[float]
    measurements: Mapping[str, np.ndarray]
    inputs: Mapping[str, InputSpec]
    initial_state: Mapping[str, float | np.ndarray]
    parameters: Mapping[str, float] = field(default_factory=dict)
    name: str = ""
    sigmas: Mapping[str, np.ndarray] = field(default_factory=dict)
    estimate_initial: tuple[str, ...] = ()
    input_std: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class FitResult:
    """Estimates with linearised statistics; see the module docstring for the formulas."""

    names: tuple[str, ...]
    estimates: Mapping[str, float]
    standard_errors: Mapping[str, float]
    confidence_intervals: Mapping[str, tuple[float, float]]
    covariance: np.ndarray
    correlation: np.ndarray
    residuals: Mapping[str, np.ndarray]
    weighted_residuals: np.ndarray
    cost: float
    degrees_of_freedom: int
    residual_variance: float
    t_value: float
    success: bool
    message: str
    n_evaluations: int
    wall_time_s: float
    fits: tuple[SimulationResult, ...]
    jacobian: np.ndarray | None = None
    """The weighted-residual Jacobian at the estimate (rows: the finite samples, columns: ``names``; with nuisance
    initial states, their directions projected out)."""
    initial_states: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per experiment name: its estimated initial states (``FitData.estimate_initial``)."""
    measurement_covariance: np.ndarray | None = None
    """With the inputs' noise added (:func:`process_models.input_uncertainty.with_input_uncertainty`): the
    covariance from the measurements alone; ``covariance`` is then the total."""
    input_covariance: np.ndarray | None = None
    """The inputs' share of ``covariance`` (None: not computed, the inputs taken as exact)."""

    def summary(self) -> str:
        """A table: estimate, standard error, 95 % interval per parameter."""
        lines = [f"{'parameter':<36}{'estimate':>14}{'std. error':>14}{'95 % interval':>32}"]
        for n in self.names:
            lo, hi = self.confidence_intervals[n]
            lines.append(f"{n:<36}{self.estimates[n]:>14.6g}{self.standard_errors[n]:>14.4g}"
                         f"{f'[{lo:.6g}, {hi:.6g}]':>32}")
        lines.append(f"cost {self.cost:.6g}, dof {self.degrees_of_freedom}, s^2 {self.residual_variance:.4g}, "
                     f"{self.n_evaluations} evaluations, {self.wall_time_s:.2f} s; {self.message}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Series:
    """One measured quantity of one experiment, flattened to the rows of the model's state/output vector."""

    kind: str            # "state" | "output"
    name: str
    rows: slice
    values: np.ndarray   # (size, n_times)
    weight: np.ndarray   # (size, n_times): 1/sigma per sample


def _series(model: CompiledModel, data: FitData, weights: Mapping[str, float], where: str) -> list[_Series]:
    n_t = len(data.times_s)
    out = []
    if not data.measurements:
        raise FitError(f"{where}: no measurements")
    for name, values in data.measurements.items():
        if name in model.state_slices:
            kind, rows = "state", model.state_slices[name]
        elif name in model.output_slices:
            kind, rows = "output", model.output_slices[name]
        else:
            raise FitError(
                f"{where}: measurement '{name}' is neither a state nor an output of '{model.declaration.name}'; "
                f"states {list(model.state_slices)}, outputs {list(model.output_slices)}"
            )
        size = rows.stop - rows.start
        arr = np.asarray(values, dtype=float)
        if arr.size % size != 0 or (size > 1 and arr.ndim != 2):
            raise FitError(f"{where}: measurement '{name}' has shape {arr.shape}, expected ({size}, {n_t})")
        arr = arr.reshape(size, -1)
        if arr.shape[1] != n_t:
            raise FitError(f"{where}: measurement '{name}' has {arr.shape[1]} samples, expected {n_t} (one per time)")
        weight = weights.get(name)
        if name in data.sigmas:
            sig = np.broadcast_to(np.asarray(data.sigmas[name], dtype=float).reshape(size, -1), arr.shape)
            bad = np.isfinite(arr) & ~(np.isfinite(sig) & (sig > 0))
            if bad.any():
                raise FitError(f"{where}: sigmas['{name}'] must be finite and > 0 where '{name}' was measured")
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(_Series(kind, name, rows, arr, np.where(np.isfinite(arr), 1.0 / sig, 0.0)))
            continue
        if weight is None:
            finite = arr[np.isfinite(arr)]
            if finite.size == 0:
                raise FitError(f"{where}: measurement '{name}' has no finite sample")
            scale = max(float(np.std(finite)), 1e-3 * float(np.max(np.abs(finite))), 1e-12)
            weight = 1.0 / scale
        elif not (math.isfinite(weight) and weight > 0):
            raise FitError(f"weights['{name}'] must be a finite number > 0 (1/standard deviation), got {weight!r}")
        out.append(_Series(kind, name, rows, arr, np.full(arr.shape, float(weight))))
    return out


def fit_parameters(model: CompiledModel, data: FitData | Sequence[FitData], estimate: Sequence[str],
                   initial_guess: Mapping[str, float] | None = None, weights: Mapping[str, float] | None = None,
                   bounds: Mapping[str, tuple[float, float]] | None = None, absolute_sigma: bool = False,
                   max_evaluations: int = 100, progress: bool = False, integrator: str = "cvodes",
                   rtol: float = 1e-8, atol: float = 1e-10, tolerance: float = 1e-10) -> FitResult:
    """Estimate the parameters ``estimate`` of ``model`` from one or more experiments.

    ``initial_guess``: starting values (default: the declared values); ``weights``: per measured name,
    the factor applied to its residuals, normally ``1/sigma`` in the measurement's unit (default:
    ``1/std`` of the measured values); ``bounds``: per parameter (default: the declared bounds).
    ``progress`` prints one line per model evaluation to stderr. ``tolerance``: least_squares' ``xtol``, ``ftol``
    and ``gtol`` (relative; the default polishes far below the data's information, a profile's re-fits take a
    looser one: :data:`process_models.fit_diagnostics.PROFILE_REFIT_TOLERANCE`).

    An experiment's ``estimate_initial`` states are estimated too, as nuisance parameters of that experiment
    (starting from its ``initial_state``, within the states' declared bounds; their sensitivities by central
    differences). They count against the degrees of freedom, the reported statistics are those of ``estimate``
    with the nuisance parameters' uncertainty included (the marginal covariance block), and
    ``FitResult.initial_states`` gives their estimates. ``estimate`` may then be empty (a profile point).
    """
    started = time.perf_counter()
    experiments = [data] if isinstance(data, FitData) else list(data)
    if not experiments:
        raise FitError("fit_parameters: no experiments given")
    names = tuple(estimate)
    nuisance = [(i, st) for i, exp in enumerate(experiments) for st in exp.estimate_initial]
    if not names and not nuisance:
        raise FitError("fit_parameters: 'estimate' names no parameter")
    for i, st in nuisance:
        if st not in model.state_slices or model.state_slices[st].stop - model.state_slices[st].start != 1:
            raise FitError(f"fit_parameters: experiment {i} {experiments[i].name!r}: estimate_initial '{st}' is not "
                           f"a scalar state of '{model.declaration.name}'; states {list(model.state_slices)}")
    unknown = [n for n in names if n not in model.parameter_names]
    if unknown or len(set(names)) != len(names):
        raise FitError(f"fit_parameters: estimate {list(names)}: unknown or repeated {unknown}; "
                       f"expected distinct names from {list(model.parameter_names)}")
    weights = dict(weights or {})
    declared = {p.name: p for p in model.declaration.parameters}
    state_decl = {v.name: v for v in model.declaration.states}
    guess = dict(initial_guess or {})
    bad = [k for k in guess if k not in names]
    if bad:
        raise FitError(f"fit_parameters: initial_guess names {bad}, which are not being estimated {list(names)}")
    theta0 = np.array([float(guess.get(n, declared[n].value)) for n in names]
                      + [float(np.asarray(experiments[i].initial_state[st], dtype=float).ravel()[0])
                         for i, st in nuisance])
    lower = np.array([float((bounds or {}).get(n, (declared[n].lower, declared[n].upper))[0]) for n in names]
                     + [state_decl[st].lower for _, st in nuisance])
    upper = np.array([float((bounds or {}).get(n, (declared[n].lower, declared[n].upper))[1]) for n in names]
                     + [state_decl[st].upper for _, st in nuisance])
    if np.any(theta0 < lower) or np.any(theta0 > upper) or not np.all(np.isfinite(theta0)):
        raise FitError(f"fit_parameters: initial guess {dict(zip(names, theta0, strict=False))} outside bounds "
                       f"{dict(zip(names, zip(lower, upper, strict=False), strict=False))}")
    scale = np.where(np.abs(theta0) > 0, np.abs(theta0), 1.0)
    n_p = len(names)

    prepared = []
    for i, exp in enumerate(experiments):
        where = f"fit_parameters: experiment {i} {exp.name!r}"
        fixed = {k: v for k, v in exp.parameters.items() if k not in names}
        prepared.append((exp, fixed, _series(model, exp, weights, where)))
    n_obs = sum(int(np.isfinite(s.values).sum()) for _, _, series in prepared for s in series)
    if n_obs <= theta0.size:
        raise FitError(f"fit_parameters: {n_obs} finite samples cannot determine {theta0.size} parameters")

    evaluations = 0

    def params_of(z: np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, (z * scale)[:n_p], strict=True)}

    def initial_states_of(z: np.ndarray) -> list[dict[str, float | np.ndarray]]:
        states = [dict(exp.initial_state) for exp in experiments]
        for (i, st), v in zip(nuisance, (z * scale)[n_p:], strict=True):
            states[i][st] = float(v)
        return states

    def residual_vector(results: list[SimulationResult]) -> np.ndarray:
        parts = []
        for res, (_, _, series) in zip(results, prepared, strict=True):
            for s in series:
                model_vals = (res.states if s.kind == "state" else res.outputs)[s.rows]
                r = s.weight * (model_vals - s.values)
                parts.append(r[np.isfinite(s.values)])
        return np.concatenate(parts)

    def experiment_residuals(res: SimulationResult, series: list[_Series]) -> np.ndarray:
        parts = []
        for s in series:
            model_vals = (res.states if s.kind == "state" else res.outputs)[s.rows]
            parts.append((s.weight * (model_vals - s.values))[np.isfinite(s.values)])
        return np.concatenate(parts)

    def fun(z: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        theta = params_of(z)
        x0s = initial_states_of(z)
        try:
            results = [simulate(model, x0, exp.times_s, exp.inputs, {**fixed, **theta},
                                integrator=integrator, rtol=rtol, atol=atol)
                       for x0, (exp, fixed, _) in zip(x0s, prepared, strict=True)]
        except SimulationError as exc:
            if progress:
                sys.stderr.write(f"fit {model.declaration.name}: evaluation {evaluations} failed ({exc}); "
                                 "treated as a very poor fit\n")
            return np.full(n_obs, 1e6)
        r = residual_vector(results)
        if progress:
            text = ", ".join(f"{k}={v:.6g}" for k, v in theta.items())
            sys.stderr.write(
                f"fit {model.declaration.name}: evaluation {evaluations}: cost {0.5 * r @ r:.6g}  {text}\n"
            )
        return r

    def jacobian_full(z: np.ndarray) -> tuple[np.ndarray, list[SimulationResult]]:
        """Weighted-residual Jacobian wrt the unscaled vector (parameters, then nuisance initial states)."""
        theta = params_of(z)
        x0s = initial_states_of(z)
        values = z * scale
        row_blocks = []
        results = []
        for e, (x0, (exp, fixed, series)) in enumerate(zip(x0s, prepared, strict=True)):
            p = {**fixed, **theta}
            if names:
                sens = trajectory_sensitivity(model, x0, exp.times_s, exp.inputs, p, names, integrator=integrator,
                                              rtol=rtol, atol=atol)
                res = sens.result
                blocks = []
                for s in series:
                    d = sens.d_states if s.kind == "state" else sens.d_outputs     # (n_t, rows, n_wrt)
                    d_rows = np.transpose(d[:, s.rows, :], (1, 0, 2))             # (size, n_t, n_wrt)
                    mask = np.isfinite(s.values)
                    blocks.append(s.weight[mask][:, None] * d_rows[mask])
                j_theta = np.vstack(blocks)
            else:
                res = simulate(model, x0, exp.times_s, exp.inputs, p, integrator=integrator, rtol=rtol, atol=atol)
                j_theta = np.zeros((experiment_residuals(res, series).size, 0))
            results.append(res)
            j_nuis = np.zeros((j_theta.shape[0], len(nuisance)))
            for k, (i, st) in enumerate(nuisance):
                if i != e:
                    continue
                h = 1e-4 * max(abs(values[n_p + k]), 1e-12)
                plus, minus = dict(x0), dict(x0)
                plus[st] = values[n_p + k] + h
                minus[st] = values[n_p + k] - h
                r_plus = experiment_residuals(simulate(model, plus, exp.times_s, exp.inputs, p,
                                                       integrator=integrator, rtol=rtol, atol=atol), series)
                r_minus = experiment_residuals(simulate(model, minus, exp.times_s, exp.inputs, p,
                                                        integrator=integrator, rtol=rtol, atol=atol), series)
                j_nuis[:, k] = (r_plus - r_minus) / (2 * h)
            row_blocks.append(np.hstack([j_theta, j_nuis]))
        return np.vstack(row_blocks), results

    last_jacobian: list[tuple[np.ndarray, np.ndarray, list[SimulationResult]]] = []

    def jac(z: np.ndarray) -> np.ndarray:
        j_full, results = jacobian_full(z)
        last_jacobian[:] = [(z.copy(), j_full, results)]  # least_squares' last one is at its solution: kept
        return j_full * scale[None, :]

    try:
        solution = optimize.least_squares(fun, theta0 / scale, jac=jac, bounds=(lower / scale, upper / scale),
                                          method="trf", x_scale="jac", max_nfev=max_evaluations,
                                          xtol=tolerance, ftol=tolerance, gtol=tolerance)
    except SimulationError as exc:
        raise FitError(f"fit_parameters: model evaluation failed: {exc}") from exc
    theta_hat = params_of(solution.x)
    if last_jacobian and np.array_equal(last_jacobian[0][0], solution.x):
        _, j_full, results = last_jacobian[0]  # the same point: the same sensitivities, not integrated again
    else:
        j_full, results = jacobian_full(solution.x)
    r = residual_vector(results)
    dof = n_obs - theta0.size
    ssr = float(r @ r)
    s2 = 1.0 if absolute_sigma else ssr / dof
    # in relative parameters (J diag|value|): parameters of very different magnitudes (1e-5 and 1e11) would
    # otherwise make J^T J look singular to the rank test
    values_hat = solution.x * scale
    d = np.where(np.abs(values_hat) > 0, np.abs(values_hat), 1.0)
    j_rel = j_full * d[None, :]
    jtj = j_rel.T @ j_rel
    try:
        cov_full = np.linalg.inv(jtj) * s2 * np.outer(d, d)
    except np.linalg.LinAlgError:
        cov_full = np.linalg.pinv(jtj) * s2 * np.outer(d, d)
    cov = cov_full[:n_p, :n_p]
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if np.linalg.matrix_rank(j_rel) < theta0.size:
        se = np.full(n_p, math.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(se, se)
    t_val = float(stats.t.ppf(0.975, dof))
    # the parameters' Jacobian with the nuisance directions projected out: its J^T J is the marginal information
    j_theta = j_full[:, :n_p]
    if nuisance:
        j_n = j_full[:, n_p:]
        coeff, *_ = np.linalg.lstsq(j_n, j_theta, rcond=None)
        j_theta = j_theta - j_n @ coeff
    initial_states: dict[str, dict[str, float]] = {}
    for (i, st), v in zip(nuisance, values_hat[n_p:], strict=True):
        initial_states.setdefault(experiments[i].name or str(i), {})[st] = float(v)

    residuals: dict[str, list[np.ndarray]] = {}
    for res, (_, _, series) in zip(results, prepared, strict=True):
        for s in series:
            model_vals = (res.states if s.kind == "state" else res.outputs)[s.rows]
            residuals.setdefault(s.name, []).append((model_vals - s.values)[np.isfinite(s.values)])
    return FitResult(
        names=names,
        estimates=theta_hat,
        standard_errors={n: float(e) for n, e in zip(names, se, strict=True)},
        confidence_intervals={n: (theta_hat[n] - t_val * float(e), theta_hat[n] + t_val * float(e))
                              for n, e in zip(names, se, strict=True)},
        covariance=cov,
        correlation=corr,
        residuals={k: np.concatenate(v) for k, v in residuals.items()},
        weighted_residuals=r,
        cost=0.5 * ssr,
        degrees_of_freedom=dof,
        residual_variance=ssr / dof,
        t_value=t_val,
        success=bool(solution.success),
        message=str(solution.message),
        n_evaluations=evaluations,
        wall_time_s=time.perf_counter() - started,
        fits=tuple(results),
        jacobian=j_theta,
        initial_states=initial_states,
    )


def weighted_residual_vector(model: CompiledModel, data: FitData, weights: Mapping[str, float] | None = None,
                             integrator: str = "cvodes", rtol: float = 1e-8, atol: float = 1e-10) -> np.ndarray:
    """One experiment's weighted residuals ``w_i (y_model,i - y_measured,i)`` over its finite samples, every parameter
    as the experiment fixes it (its ``parameters`` over the declared values), in the row order of
    :func:`fit_parameters`' Jacobian; weights as :func:`fit_parameters` takes them."""
    res = simulate(model, data.initial_state, data.times_s, data.inputs, data.parameters, integrator=integrator,
                   rtol=rtol, atol=atol)
    parts = []
    for s in _series(model, data, dict(weights or {}), f"experiment {data.name!r}"):
        values = (res.states if s.kind == "state" else res.outputs)[s.rows]
        parts.append((s.weight * (values - s.values))[np.isfinite(s.values)])
    return np.concatenate(parts)


def weighted_sum_of_squares(model: CompiledModel, data: FitData | Sequence[FitData],
                            weights: Mapping[str, float] | None = None, integrator: str = "cvodes",
                            rtol: float = 1e-8, atol: float = 1e-10, **_ignored: object) -> float:
    """``sum_i (w_i (y_model,i - y_measured,i))^2`` with every parameter as the experiments fix it (their
    ``parameters`` over the declared values); weights as :func:`fit_parameters` takes them."""
    experiments = [data] if isinstance(data, FitData) else list(data)
    total = 0.0
    for exp in experiments:
        r = weighted_residual_vector(model, exp, weights, integrator=integrator, rtol=rtol, atol=atol)
        total += float(r @ r)
    return total
