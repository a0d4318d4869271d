"""Maximum-likelihood fitting with a measurement-variance model per instrument.

Each measured quantity ``k`` (an instrument) has Gaussian errors with a variance model:

* ``constant``: ``sigma_ik = sigma_k`` (the same for every sample of the instrument);
* ``relative``: ``sigma_ik = r_k * max(|y_model,ik|, floor_k)`` (a constant relative error; ``floor_k`` keeps a
  zero reading from getting infinite weight: 1e-3 x the largest |measured value|).

The variance parameters (``sigma_k`` or ``r_k``) are estimated together with the model parameters by iteratively
reweighted least squares (generalised least squares with estimated variance function: Carroll & Ruppert,
*Transformation and Weighting in Regression*, Chapman & Hall 1988, sec. 2.1-2.3; the variance-model estimation gPROMS
offers): fit the parameters by weighted least squares with the current sigmas, re-estimate each instrument's variance
parameter from its residuals (``sigma_k^2 = SSR_k / n_k``, ``r_k^2 = mean((r_ik / max(|y_ik|, floor))^2)``),
repeat until the estimates move by less than 1e-3 of their standard errors (at most ``max_iterations``). At the fixed
point the parameter estimates maximise the Gaussian likelihood for the estimated variances; their covariance is then
``(J^T W J)^-1`` with the weights taken as exact (``absolute_sigma``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from process_models.declaration import CompiledModel
from process_models.fitting import FitData, FitError, FitResult, fit_parameters

__all__ = ["VARIANCE_MODELS", "MaximumLikelihoodFit", "fit_maximum_likelihood"]

VARIANCE_MODELS = ("constant", "relative")


@dataclass(frozen=True)
class MaximumLikelihoodFit:
    """The final weighted fit, the estimated variance parameter per instrument and the log-likelihood."""

    fit: FitResult
    variance_models: Mapping[str, str]
    variance_parameters: Mapping[str, float]
    """Per measured name: ``sigma_k`` (its unit) for ``constant``, ``r_k`` (fraction) for ``relative``."""
    log_likelihood: float
    iterations: int
    converged: bool
    experiments: tuple[FitData, ...]
    """The experiments with the final per-sample sigmas (for profiles and diagnostics)."""


def _model_values(result: FitResult, experiments: Sequence[FitData],
                  model: CompiledModel) -> list[dict[str, np.ndarray]]:
    out = []
    for res, exp in zip(result.fits, experiments, strict=True):
        values = {}
        for name, measured in exp.measurements.items():
            src = res.states if name in model.state_slices else res.outputs
            rows = model.state_slices[name] if name in model.state_slices else model.output_slices[name]
            values[name] = np.asarray(src[rows], dtype=float).reshape(np.asarray(measured, dtype=float).shape)
        out.append(values)
    return out


def _variance_parameters(model_values: list[dict[str, np.ndarray]], experiments: Sequence[FitData],
                         variance_models: Mapping[str, str], floors: Mapping[str, float]) -> dict[str, float]:
    params = {}
    for name, kind in variance_models.items():
        num, n = 0.0, 0
        for values, exp in zip(model_values, experiments, strict=True):
            measured = np.asarray(exp.measurements[name], dtype=float)
            mask = np.isfinite(measured)
            r = (values[name] - measured)[mask]
            if kind == "relative":
                r = r / np.maximum(np.abs(values[name][mask]), floors[name])
            num += float(r @ r)
            n += int(mask.sum())
        params[name] = math.sqrt(num / n) if n else math.nan
        if not (math.isfinite(params[name]) and params[name] > 0):
            params[name] = max(params[name], 1e-12) if math.isfinite(params[name]) else 1.0
    return params


def _sigmas(model_values: list[dict[str, np.ndarray]], experiments: Sequence[FitData],
            variance_models: Mapping[str, str], params: Mapping[str, float],
            floors: Mapping[str, float]) -> list[FitData]:
    out = []
    for values, exp in zip(model_values, experiments, strict=True):
        sig = {}
        for name, kind in variance_models.items():
            shape = np.asarray(exp.measurements[name], dtype=float).shape
            if kind == "constant":
                sig[name] = np.full(shape, params[name])
            else:
                sig[name] = params[name] * np.maximum(np.abs(values[name]), floors[name])
        out.append(replace(exp, sigmas=sig))
    return out


def fit_maximum_likelihood(model: CompiledModel, data: FitData | Sequence[FitData], estimate: Sequence[str],
                           variance_models: Mapping[str, str], initial_sigmas: Mapping[str, float],
                           initial_guess: Mapping[str, float] | None = None,
                           bounds: Mapping[str, tuple[float, float]] | None = None, max_iterations: int = 6,
                           max_evaluations: int = 60, progress: bool = False, **options: object
                           ) -> MaximumLikelihoodFit:
    """Estimate ``estimate`` and each instrument's variance parameter by maximum likelihood (module docstring).

    ``variance_models``: per measured name, ``constant`` or ``relative`` (every measured name needs one);
    ``initial_sigmas``: per measured name, the standard deviation of its first weighted fit (the instrument's
    declared noise, its unit). Other arguments as :func:`process_models.fitting.fit_parameters`.
    """
    experiments = [data] if isinstance(data, FitData) else list(data)
    if not experiments:
        raise FitError("fit_maximum_likelihood: no experiments given")
    measured = sorted({n for e in experiments for n in e.measurements})
    bad = {k: v for k, v in variance_models.items() if v not in VARIANCE_MODELS}
    missing = [n for n in measured if n not in variance_models]
    unknown = [n for n in variance_models if n not in measured]
    if bad or missing or unknown:
        raise FitError(f"fit_maximum_likelihood: variance models {dict(variance_models)}: expected one of "
                       f"{list(VARIANCE_MODELS)} for each measured name {measured} (bad {bad}, missing {missing}, "
                       f"not measured {unknown})")
    no_sigma = [n for n in measured if not (initial_sigmas.get(n, 0.0) > 0 and math.isfinite(initial_sigmas[n]))]
    if no_sigma:
        raise FitError(f"fit_maximum_likelihood: initial_sigmas: expected a finite number > 0 for {no_sigma}")
    floors = {}
    for name in measured:
        finite = np.concatenate([np.abs(np.asarray(e.measurements[name], dtype=float)).ravel() for e in experiments])
        finite = finite[np.isfinite(finite)]
        floors[name] = max(1e-3 * float(finite.max()) if finite.size else 0.0, 1e-300)
    weights = {n: 1.0 / float(initial_sigmas[n]) for n in measured}
    current = [replace(e, sigmas={}) for e in experiments]
    result = fit_parameters(model, current, estimate, initial_guess=initial_guess, weights=weights, bounds=bounds,
                            absolute_sigma=True, max_evaluations=max_evaluations, **options)  # type: ignore[arg-type]
    params: dict[str, float] = {}
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is reported
        values = _model_values(result, current, model)
        params = _variance_parameters(values, experiments, variance_models, floors)
        current = _sigmas(values, experiments, variance_models, params, floors)
        if progress:
            text = ", ".join(f"{k} {variance_models[k]} {v:.4g}" for k, v in params.items())
            sys.stderr.write(f"fit {model.declaration.name}: ML iteration {iterations}: variance parameters {text}\n")
        previous = result
        result = fit_parameters(model, current, estimate, initial_guess=dict(previous.estimates), bounds=bounds,
                                absolute_sigma=True, max_evaluations=max_evaluations,
                                **options)  # type: ignore[arg-type]
        moves = [abs(result.estimates[n] - previous.estimates[n]) / max(result.standard_errors[n], 1e-300)
                 for n in result.names]
        if all(m < 1e-3 for m in moves):
            converged = True
            break
    n_obs = result.weighted_residuals.size
    log_det = 0.0
    for exp in current:
        for name, sig in exp.sigmas.items():
            mask = np.isfinite(np.asarray(exp.measurements[name], dtype=float))
            log_det += float(np.sum(np.log(sig[mask])))
    log_likelihood = -0.5 * n_obs * math.log(2 * math.pi) - log_det - result.cost
    return MaximumLikelihoodFit(fit=result, variance_models=dict(variance_models), variance_parameters=params,
                                log_likelihood=log_likelihood, iterations=iterations, converged=converged,
                                experiments=tuple(current))
