"""What a fit can and cannot tell: identifiability ranking, profile-likelihood intervals, residual statistics.

* **Identifiability** (:func:`identifiability`): the Fisher information of the estimated parameters at the estimate,
  ``F = J^T J / s^2`` (J: the weighted-residual Jacobian), scaled to relative parameters (``J diag|theta|``) so that
  parameters of different units compare. Its eigen-decomposition says which *directions* the data pin down (large
  eigenvalues) and which they do not (eigenvalue ratio ``lambda/lambda_max`` tiny: a combination of parameters the
  data cannot separate). Parameters are ranked by the orthogonalisation method of Yao, Shaw, Kou, McAuley & Bacon,
  *Polymer Reaction Engineering* 11 (2003) 563-588: repeatedly take the parameter whose scaled sensitivity column has
  the largest norm after projecting out the columns already taken; that residual norm is its score. A parameter is
  flagged **not identifiable** when its linearised relative standard error exceeds ``max_relative_se`` (default 1,
  i.e. the data cannot tell the value from zero or from twice it) or its information is numerically nil.
* **Profile likelihood** (:func:`profile_interval`): for parameter j, ``S_j(v)`` is the least weighted sum of squares
  with ``theta_j = v`` fixed and the others re-fitted. The 95 % interval is where the profile t statistic
  ``tau(v) = sign(v - theta_j) sqrt((S_j(v) - S_min) / s^2)`` stays within ``+/- t_{0.975, m-p}`` (Bates & Watts,
  *Nonlinear Regression Analysis and Its Applications*, Wiley 1988, sec. 6.1); with absolute weights (maximum
  likelihood) ``s^2 = 1`` and the bound is the likelihood-ratio ``sqrt(chi2_{1, 0.95})`` (Venzon & Moolgavkar,
  *Appl. Statist.* 37 (1988) 87). Each bound is found by secant steps on ``tau`` from the linearised bound, and is
  accepted within 2 % of the critical value. The re-fits along the profile stop at a relative change of
  :data:`PROFILE_REFIT_TOLERANCE` (the main fit polishes to 1e-10): a re-fit's ``S_j`` is then within about 1e-6
  of its minimum, which moves ``tau`` by ~1e-4 (``dtau = dS / (2 tau s^2)``, ``s^2 = S_min / dof``), far inside the
  2 % acceptance; the remaining least-squares iterations would polish the integrator's own noise (the fit's
  ``rtol``) at two to five times the cost.
* **Residual statistics** (:func:`residual_statistics`): per measured quantity the count, mean, standard deviation,
  RMS, largest |residual|, RMS of residual/sigma and the lag-1 autocorrelation (near 0 for white errors; near 1 says
  the model misses a trend).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from process_models.declaration import CompiledModel
from process_models.fitting import FitData, FitError, FitResult, fit_parameters, weighted_sum_of_squares

__all__ = ["Identifiability", "identifiability", "profile_interval", "residual_statistics"]

PROFILE_REFIT_TOLERANCE = 1e-6
"""least_squares' xtol/ftol/gtol of the re-fits along a profile (module docstring), unless the caller passes
``tolerance``."""

NIL_INFORMATION = 1e-12
"""Eigenvalue ratio (and orthogonalised score ratio) below which information counts as numerically nil."""


@dataclass(frozen=True)
class Identifiability:
    """Eigen-analysis and ranking of the scaled Fisher information (module docstring)."""

    ranking: tuple[str, ...]
    """Most to least identifiable (Yao et al. orthogonalisation)."""
    scores: Mapping[str, float]
    """Orthogonalised scaled-sensitivity norm per parameter, relative to the first."""
    relative_standard_errors: Mapping[str, float]
    eigenvalues: tuple[float, ...]
    """Of the scaled Fisher information, largest first."""
    eigenvectors: tuple[tuple[float, ...], ...]
    """Row i: the eigenvector of eigenvalue i (components in the order of ``names``)."""
    names: tuple[str, ...]
    condition_number: float
    not_identifiable: Mapping[str, str]
    """Parameter -> why the data cannot pin it down (empty: every parameter is identifiable)."""

    def message(self) -> str:
        """One line naming each flagged parameter and why (empty if none)."""
        return "; ".join(f"{n}: {why}" for n, why in self.not_identifiable.items())


def identifiability(fit: FitResult, jacobian: np.ndarray, max_relative_se: float = 1.0) -> Identifiability:
    """Identifiability of ``fit``'s parameters from the weighted-residual Jacobian ``jacobian`` (rows: residuals,
    columns: ``fit.names``) at the estimate (module docstring)."""
    names = fit.names
    theta = np.array([fit.estimates[n] for n in names])
    scale = np.where(np.abs(theta) > 0, np.abs(theta), 1.0)
    js = jacobian * scale[None, :]
    s2 = fit.residual_variance if fit.residual_variance > 0 else 1.0
    info = js.T @ js / s2
    eigval, eigvec = np.linalg.eigh(info)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    lam_max = float(eigval[0]) if eigval.size and eigval[0] > 0 else 0.0
    cond = float(eigval[0] / eigval[-1]) if eigval.size and eigval[-1] > 0 else math.inf
    # Yao et al. (2003) orthogonalisation ranking
    remaining = list(range(len(names)))
    chosen: list[int] = []
    scores: dict[str, float] = {}
    basis = np.zeros((js.shape[0], 0))
    first = None
    while remaining:
        if basis.shape[1]:
            coeff, *_ = np.linalg.lstsq(basis, js[:, remaining], rcond=None)
            resid = js[:, remaining] - basis @ coeff
        else:
            resid = js[:, remaining]
        norms = np.linalg.norm(resid, axis=0)
        k = int(np.argmax(norms))
        idx = remaining.pop(k)
        first = float(norms[k]) if first is None else first
        scores[names[idx]] = float(norms[k]) / first if first and first > 0 else 0.0
        chosen.append(idx)
        basis = js[:, chosen]
    rel_se = {n: (fit.standard_errors[n] / abs(fit.estimates[n]) if fit.estimates[n] != 0 else math.inf)
              for n in names}
    flagged: dict[str, str] = {}
    nil = [n for n in names if scores[n] < math.sqrt(NIL_INFORMATION)]
    for n in nil:   # the others' uncertainty is only defined once these are left out: judge them then
        flagged[n] = ("the data carry no information on it (its sensitivity is nil, or a combination of the "
                      "others'); fix it or record batches that excite it")
    for n in names:
        if nil:
            break
        if not math.isfinite(rel_se[n]):
            flagged[n] = "its standard error is not finite; fix it or record batches that excite it"
        elif rel_se[n] > max_relative_se:
            weak = int(np.argmax(np.abs(eigvec[names.index(n), :])))
            ratio = float(eigval[weak] / lam_max) if lam_max > 0 else 0.0
            flagged[n] = (f"relative standard error {100 * rel_se[n]:.0f} % > {100 * max_relative_se:.0f} % "
                          f"(it loads the information direction {weak + 1} of {len(names)}, eigenvalue ratio "
                          f"{ratio:.2g}); fix it or record batches that excite it")
    return Identifiability(
        ranking=tuple(names[i] for i in chosen), scores=scores, relative_standard_errors=rel_se,
        eigenvalues=tuple(float(v) for v in eigval),
        eigenvectors=tuple(tuple(float(x) for x in eigvec[:, i]) for i in range(len(names))),
        names=names, condition_number=cond, not_identifiable=flagged)


def profile_interval(model: CompiledModel, experiments: Sequence[FitData], fit: FitResult, name: str,
                     absolute_sigma: bool, bounds: Mapping[str, tuple[float, float]] | None = None,
                     weights: Mapping[str, float] | None = None, max_steps: int = 6,
                     on_step: Callable[[str, float, float], None] | None = None,
                     **options: object) -> tuple[float, float]:
    """The 95 % profile-likelihood interval of ``name`` (module docstring); a side that the declared bounds cut
    before the threshold is reached is that bound. ``on_step(name, value, tau)`` reports each profile point."""
    names = fit.names
    j = names.index(name)
    others = [n for n in names if n != name]
    declared = {p.name: p for p in model.declaration.parameters}
    lo_b, hi_b = (bounds or {}).get(name, (declared[name].lower, declared[name].upper))
    s2 = 1.0 if absolute_sigma else fit.residual_variance
    dof = fit.degrees_of_freedom
    crit = math.sqrt(stats.chi2.ppf(0.95, 1)) if absolute_sigma else float(stats.t.ppf(0.975, dof))
    s_min = 2.0 * fit.cost
    theta_hat = fit.estimates[name]
    se = fit.standard_errors[name]
    if not (math.isfinite(se) and se > 0):
        raise FitError(f"profile of {name}: no finite standard error to start from")
    cov = fit.covariance

    def tau(value: float) -> float:
        fixed = [replace(e, parameters={**e.parameters, name: value},
                         initial_state={**e.initial_state, **fit.initial_states.get(e.name or str(i), {})})
                 for i, e in enumerate(experiments)]
        if others or any(e.estimate_initial for e in experiments):
            # start from the linear prediction of the others along the profile (conditional mean)
            guess = {}
            for i, n in enumerate(names):
                if n == name:
                    continue
                g = fit.estimates[n] + cov[i, j] / cov[j, j] * (value - theta_hat)
                lo, hi = (bounds or {}).get(n, (declared[n].lower, declared[n].upper))
                guess[n] = float(min(max(g, lo), hi))
            sub = fit_parameters(model, fixed, others, initial_guess=guess, bounds=bounds, weights=weights,
                                 absolute_sigma=absolute_sigma,
                                 **{"tolerance": PROFILE_REFIT_TOLERANCE, **options})  # type: ignore[arg-type]
            s = 2.0 * sub.cost
        else:
            s = weighted_sum_of_squares(model, fixed, weights, **options)  # type: ignore[arg-type]
        value_tau = math.copysign(math.sqrt(max(s - s_min, 0.0) / s2), value - theta_hat)
        if on_step is not None:
            on_step(name, value, value_tau)
        return value_tau

    bounds_out = []
    for sign in (-1.0, 1.0):
        limit = lo_b if sign < 0 else hi_b
        target = sign * crit
        d0, t0 = 0.0, 0.0
        d1 = sign * crit * se
        if (theta_hat + d1 - limit) * sign >= 0:
            d1 = (limit - theta_hat) * 0.999
        t1 = tau(theta_hat + d1)
        found = None
        for _ in range(max_steps):
            if abs(t1 - target) < 0.02 * crit:
                found = theta_hat + d1
                break
            if t1 == t0:
                break
            d2 = d1 + (target - t1) * (d1 - d0) / (t1 - t0)
            if d2 * sign <= 0:
                d2 = d1 * 0.5
            if (theta_hat + d2 - limit) * sign >= 0:
                if abs(d1 - (limit - theta_hat) * 0.999) < 1e-12 * max(abs(d1), 1e-300):
                    found = limit
                    break
                d2 = (limit - theta_hat) * 0.999
            d0, t0 = d1, t1
            d1 = d2
            t1 = tau(theta_hat + d1)
        if found is None:
            found = theta_hat + d1
        bounds_out.append(float(found))
    return bounds_out[0], bounds_out[1]


def residual_statistics(fit: FitResult, experiments: Sequence[FitData], model: CompiledModel,
                        sigmas: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Per measured name: n, mean, std, rms, max_abs, standardised_rms (residual/sigma; sigma per sample from the
    experiments' ``sigmas``, else ``sigmas[name]``), lag1_autocorrelation (within each experiment, pooled)."""
    out: dict[str, dict[str, float]] = {}
    names = sorted({n for e in experiments for n in e.measurements})
    for name in names:
        parts, std_parts, lag_num, lag_den = [], [], 0.0, 0.0
        for res, exp in zip(fit.fits, experiments, strict=True):
            if name not in exp.measurements:
                continue
            rows = model.state_slices.get(name) or model.output_slices[name]
            src = res.states if name in model.state_slices else res.outputs
            measured = np.asarray(exp.measurements[name], dtype=float).reshape(rows.stop - rows.start, -1)
            r = src[rows] - measured
            mask = np.isfinite(measured)
            if name in exp.sigmas:
                sig = np.broadcast_to(np.asarray(exp.sigmas[name], dtype=float).reshape(measured.shape),
                                      measured.shape)
            else:
                sig = np.full(measured.shape, (sigmas or {}).get(name, math.nan))
            parts.append(r[mask])
            std_parts.append((r / sig)[mask])
            for row, row_mask in zip(r, mask, strict=True):
                seq = row[row_mask]
                if seq.size > 2:
                    c = seq - seq.mean()
                    lag_num += float(c[1:] @ c[:-1])
                    lag_den += float(c @ c)
        if not parts:
            continue
        r_all = np.concatenate(parts)
        z = np.concatenate(std_parts)
        out[name] = {
            "n": int(r_all.size), "mean": float(r_all.mean()), "std": float(r_all.std(ddof=1)) if r_all.size > 1
            else 0.0, "rms": float(np.sqrt(np.mean(r_all**2))), "max_abs": float(np.max(np.abs(r_all))),
            "standardised_rms": float(np.sqrt(np.mean(z**2))) if np.all(np.isfinite(z)) else math.nan,
            "lag1_autocorrelation": lag_num / lag_den if lag_den > 0 else 0.0,
        }
    return out
