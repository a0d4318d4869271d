"""Errors in variables: the share of a fit's parameter covariance that comes from the noise of its measured inputs.

A fit takes its inputs (for a batch: the jacket temperature rebuilt from the read-back tag, :mod:`controllers.
batch_fit_data`) as known. They are measured too: each knot of an :class:`~process_models.simulator.InputProgram`
is the mean of noisy samples, with the standard deviation ``FitData.input_std[input][k]``. That noise moves the
estimate, and ``s^2 (J^T J)^-1`` (:mod:`process_models.fitting`) does not contain it.

First-order propagation (the law of propagation of uncertainty, JCGM 100:2008 *Guide to the expression of
uncertainty in measurement*, sec. 5.1.2, applied to the estimator): at the estimate the normal equations
``J^T r(theta, u) = 0`` hold; differentiating them (Gauss-Newton, the residuals' curvature neglected as in the
covariance itself) gives the estimate's sensitivity to the input knots ``u``

    d theta / d u = -(J^T J)^-1 J^T J_u,        J_u = d r / d u   (weighted residuals),

and, the knots' errors independent with standard deviations ``sigma_u``, the input's share of the covariance

    C_u = G diag(sigma_u^2) G^T,   G = (J^T J)^-1 J^T J_u,

which is added to the measurement-noise covariance (the two noises are independent). ``J`` is the fit's Jacobian
with the nuisance initial states projected out (``FitResult.jacobian``): by the Frisch-Waugh-Lovell theorem (Davidson
& MacKinnon, *Estimation and Inference in Econometrics*, Oxford 1993, sec. 1.4) the estimated parameters' part of a
least-squares solution is the regression on that projected Jacobian, so ``C_u`` is the marginal share with the
initial states re-estimated. ``J_u`` comes from forward differences of the weighted residuals, one knot at a time
(one simulation per knot and one at the estimate: the residuals are nearly linear in a step of 1e-4 of the input,
and central differences would double the cost), in the same units and row order as ``J``. Both matrices are taken
in relative parameters (``diag|theta|``), as the fit's covariance is.

For a model linear in its parameter and input (``y = a u``, measured ``y`` with ``sigma_y`` and ``u`` with
``sigma_u``) this gives ``var(a) = (sigma_y^2 + a^2 sigma_u^2) / sum u^2``, the classical first-order
errors-in-variables variance (tested in ``tests/process_models/test_input_uncertainty.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from process_models.declaration import CompiledModel
from process_models.fitting import FitData, FitError, FitResult, weighted_residual_vector
from process_models.simulator import InputProgram

__all__ = ["input_noise_covariance", "with_input_uncertainty"]


def _knot_step(value: float) -> float:
    """Difference step for one knot: 1e-4 of its magnitude (as the fit's nuisance initial states), large against the
    integrator's relative tolerance, small enough for the residuals to be linear in it."""
    return 1e-4 * max(abs(value), 1.0)


def input_noise_covariance(model: CompiledModel, experiments: Sequence[FitData], fit: FitResult,
                           weights: Mapping[str, float] | None = None, integrator: str = "cvodes",
                           rtol: float = 1e-8, atol: float = 1e-10) -> np.ndarray:
    """``C_u`` of the module docstring: the covariance of ``fit.names`` due to the experiments' ``input_std``.

    ``experiments``: those the fit was made with (with the same ``sigmas`` / ``weights`` as its final pass);
    ``weights``: as given to :func:`~process_models.fitting.fit_parameters` (unused where an experiment carries
    ``sigmas``). Returns a ``(p, p)`` matrix in the parameters' units (zeros when no experiment declares input
    noise). Raises :class:`~process_models.fitting.FitError` for an ``input_std`` that does not match its input.
    """
    n_p = len(fit.names)
    if fit.jacobian is None:
        raise FitError("input_noise_covariance: the fit carries no Jacobian")
    j_theta = np.asarray(fit.jacobian, dtype=float)
    values = np.array([fit.estimates[n] for n in fit.names])
    d = np.where(np.abs(values) > 0, np.abs(values), 1.0)
    j_rel = j_theta * d[None, :]
    columns: list[np.ndarray] = []      # sigma_k * dr/du_k, rows of every experiment
    offsets = np.cumsum([0] + [_row_count(e) for e in experiments])
    if offsets[-1] != j_theta.shape[0]:
        raise FitError(f"input_noise_covariance: the experiments give {offsets[-1]} residuals, the fit's Jacobian "
                       f"{j_theta.shape[0]} rows; pass the experiments the fit was made with")
    for i, exp in enumerate(experiments):
        base: np.ndarray | None = None
        for name, stds in exp.input_std.items():
            program = exp.inputs.get(name)
            sig = np.asarray(stds, dtype=float).ravel()
            if not isinstance(program, InputProgram) or sig.size != len(program.values):
                raise FitError(f"experiment {i} {exp.name!r}: input_std['{name}'] needs the input to be an "
                               f"InputProgram with one standard deviation per knot; got {sig.size} for "
                               f"{type(program).__name__}")
            if not np.all(np.isfinite(sig) & (sig >= 0)):
                raise FitError(f"experiment {i} {exp.name!r}: input_std['{name}'] must be finite and >= 0")
            for k, s in enumerate(sig):
                if s == 0:
                    continue
                if base is None:
                    base = _residuals(model, exp, fit, i, weights, integrator, rtol, atol)
                h = _knot_step(program.values[k])
                knots = list(program.values)
                knots[k] += h
                moved = replace(exp, inputs={**exp.inputs, name: replace(program, values=tuple(knots))})
                column = np.zeros(j_theta.shape[0])
                column[offsets[i]:offsets[i + 1]] = float(s) * (
                    _residuals(model, moved, fit, i, weights, integrator, rtol, atol) - base) / h
                columns.append(column)
    if not columns:
        return np.zeros((n_p, n_p))
    s_u = np.column_stack(columns)
    a = j_rel.T @ j_rel
    try:
        g = np.linalg.solve(a, j_rel.T @ s_u)
    except np.linalg.LinAlgError:
        g = np.linalg.pinv(a) @ (j_rel.T @ s_u)
    return (g @ g.T) * np.outer(d, d)


def with_input_uncertainty(fit: FitResult, input_covariance: np.ndarray) -> FitResult:
    """``fit`` with ``input_covariance`` added: covariance, standard errors, linearised intervals (same ``t``) and
    correlation of the total; ``measurement_covariance`` keeps the fit's own, ``input_covariance`` the input's."""
    c_u = np.asarray(input_covariance, dtype=float)
    n_p = len(fit.names)
    if c_u.shape != (n_p, n_p) or not np.all(np.isfinite(c_u)):
        raise FitError(f"with_input_uncertainty: expected a finite ({n_p}, {n_p}) matrix, got shape {c_u.shape}")
    own = np.asarray(fit.covariance, dtype=float)
    total = own + c_u
    se = np.sqrt(np.clip(np.diag(total), 0.0, None))
    infinite = [not math.isfinite(fit.standard_errors[n]) for n in fit.names]
    se = np.where(infinite, math.inf, se)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = total / np.outer(se, se)
    return replace(
        fit, covariance=total, correlation=corr,
        standard_errors={n: float(e) for n, e in zip(fit.names, se, strict=True)},
        confidence_intervals={n: (fit.estimates[n] - fit.t_value * float(e), fit.estimates[n] + fit.t_value * float(e))
                              for n, e in zip(fit.names, se, strict=True)},
        measurement_covariance=own, input_covariance=c_u)


def _fitted(exp: FitData, fit: FitResult, index: int) -> FitData:
    """The experiment at the estimate: fitted parameters and estimated initial states."""
    initial = fit.initial_states.get(exp.name or str(index), {})
    return replace(exp, parameters={**exp.parameters, **fit.estimates},
                   initial_state={**exp.initial_state, **initial})


def _residuals(model: CompiledModel, exp: FitData, fit: FitResult, index: int, weights: Mapping[str, float] | None,
               integrator: str, rtol: float, atol: float) -> np.ndarray:
    return weighted_residual_vector(model, _fitted(exp, fit, index), weights, integrator=integrator, rtol=rtol,
                                    atol=atol)


def _row_count(exp: FitData) -> int:
    return int(sum(np.isfinite(np.asarray(v, dtype=float)).sum() for v in exp.measurements.values()))
