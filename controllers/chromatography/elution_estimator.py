"""Estimate of a chromatography run's uncertain parameters from the UV and conductivity seen so far, and the
predicted outlet as an ensemble (what :func:`controllers.chromatography.pooling_decision.plan_cuts` needs).

**Fast model.** The column as a coarse high-order discretisation (DG spectral elements, :mod:`process_models.
chromatography.spectral`; the bench uses 2 elements of degree 3 and 3 particle collocation points: 0.2-0.5 %
relative L2 from the fine solution on the load-wash-elute case, 0.3-0.6 s a run on the shared 2-core machine) under
the skid's :class:`~process_models.chromatography.
elution_method.ElutionMethod`, from the start of the run to the end of the fractionation window.

**Parameters** ``theta`` (in this order): ``ln`` of the SMA adsorption-rate factor of each protein in
``isotherm_components``, ``ln`` of the feed-titre factor of each protein in ``titre_components``, the relative
gradient-slope deviation (``factor - 1``), the UV baseline offset (mAU) and its drift (mAU/min). The last two enter
the UV linearly: ``UV = 1000 A_model(t) + offset + drift max(t - t_elute, 0) / 60`` — the monitor is zeroed before
the run and drifts from the start of elution ``t_elute`` (the method's gradient start), as a baseline does when the
mobile phase changes.

**Fit.** Maximum a posteriori (Gaussian prior ``theta ~ N(0, diag(prior_std^2))``, Gaussian sensor noise):
Levenberg-Marquardt on the weighted residuals ``[(UV_meas - UV)/sigma_UV; (kappa_meas - kappa)/sigma_kappa;
theta / prior_std]`` over every sample so far, the Jacobian by forward differences of the model (one run per
model parameter). Linearised covariance (Laplace approximation; Bard, *Nonlinear Parameter Estimation*, 1974,
ch. 7): ``Sigma = (J^T J)^{-1}`` of those weighted residuals, inflated by the reduced chi-square of the data
residuals when it exceeds 1 (a model that fits worse than the noise says it is less certain).

**Ensemble.** ``theta_s ~ N(theta_hat, Sigma)``, ``s = 1..S`` (seeded), each outlet predicted to first order
``c(theta_s) = c(theta_hat) + (dc/dtheta)(theta_s - theta_hat)`` with the Jacobian from the fit (no extra model
runs; clipped at 0): cheap, and accurate while the spread is small against the peak width — it is wide only before
the product peak is seen, when the plan is conservative anyway.

**Update** (:meth:`ElutionEstimator.update`). Between full estimates, new samples are taken without a model run:
the Gauss-Newton minimiser of the MAP cost linearised at the last full estimate (its prediction and Jacobian), with
the same covariance, ensemble and trust test. It lets the pooling loop decide on every sample at the cost of a
linear solve; the next full estimate re-linearises.

**Trust.** The estimate is *not* trustworthy (the loop falls back to fixed UV thresholds) when a model run failed,
when the data residuals' reduced chi-square exceeds ``chi2_limit`` (the model cannot explain the signal: a
sensor fault, an unmodelled event), when a parameter's posterior standard deviation exceeds its prior's
(the fit diverged), or when a parameter lies beyond ``prior_limit`` (4) prior standard deviations (the fit explains
the signal with an implausible value — e.g. an unmodelled baseline taken for an early-eluting protein).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from process_models.chromatography.column import ChromatographyColumn, simulate_column
from process_models.chromatography.elution_method import ElutionMethod, MethodDeviation, adsorption_overrides
from process_models.simulator import SimulationError

_MAU_PER_AU = 1000.0
_MS_PER_CM_PER_S_PER_M = 10.0


class EstimationError(ValueError):
    """Malformed estimation options or samples (names the key and what was expected)."""


@dataclass(frozen=True)
class EstimationSpec:
    """What is estimated and how sure the prior is. Standard deviations: ``adsorption_prior_std`` and
    ``titre_prior_std`` in ln units (0.25 ~ 25 %), ``gradient_prior_std`` relative, UV offset mAU, UV drift
    mAU/min (from the start of elution); sensor noise: UV mAU, conductivity mS/cm."""

    isotherm_components: tuple[str, ...] = ("ribonuclease", "cytochrome", "lysozyme")
    titre_components: tuple[str, ...] = ("cytochrome",)
    estimate_gradient_slope: bool = True
    adsorption_prior_std: float = 0.25
    titre_prior_std: float = 0.25
    gradient_prior_std: float = 0.1
    uv_offset_prior_std_mau: float = 5.0
    uv_drift_prior_std_mau_per_min: float = 5.0
    uv_noise_mau: float = 0.5
    conductivity_noise_ms_per_cm: float = 0.05
    iterations: int = 3
    ensemble_size: int = 200
    chi2_limit: float = 25.0
    prior_limit: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("adsorption_prior_std", "titre_prior_std", "gradient_prior_std", "uv_offset_prior_std_mau",
                    "uv_drift_prior_std_mau_per_min", "uv_noise_mau", "conductivity_noise_ms_per_cm", "chi2_limit",
                    "prior_limit"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise EstimationError(f"estimation: '{key}' = {value!r}, expected a number > 0")
        for key in ("iterations", "ensemble_size"):
            value = getattr(self, key)
            if not (isinstance(value, int) and value >= 1):
                raise EstimationError(f"estimation: '{key}' = {value!r}, expected an integer >= 1")

    def parameter_names(self) -> tuple[str, ...]:
        names = [f"ln_adsorption_factor_{c}" for c in self.isotherm_components]
        names += [f"ln_feed_titre_factor_{c}" for c in self.titre_components]
        if self.estimate_gradient_slope:
            names.append("gradient_slope_deviation")
        return (*names, "uv_baseline_offset_mau", "uv_baseline_drift_mau_per_min")

    def prior_std(self) -> np.ndarray:
        std = [self.adsorption_prior_std] * len(self.isotherm_components)
        std += [self.titre_prior_std] * len(self.titre_components)
        if self.estimate_gradient_slope:
            std.append(self.gradient_prior_std)
        return np.asarray([*std, self.uv_offset_prior_std_mau, self.uv_drift_prior_std_mau_per_min], dtype=float)


@dataclass(frozen=True)
class Prediction:
    """Model outlet on the estimator's grid: UV (mAU, without baseline), conductivity (mS/cm), concentrations
    (mol/m3) by component, shape (T,) each."""

    uv_mau: np.ndarray
    conductivity_ms_per_cm: np.ndarray
    curves: Mapping[str, np.ndarray]

    def stacked(self) -> np.ndarray:
        """(2 + n_components, T): UV, conductivity, then the curves in insertion order."""
        return np.vstack([self.uv_mau, self.conductivity_ms_per_cm, *self.curves.values()])


@dataclass(frozen=True)
class OutletEstimate:
    """The estimate at ``time_s``: ``theta`` (names: ``parameter_names``), covariance, the predicted outlet at the
    estimate and sampled (``ensemble``: component -> (S, T) mol/m3 on ``times_s``), the data residuals' reduced
    chi-square, ``trusted`` and, if not, ``reason``."""

    time_s: float
    parameter_names: tuple[str, ...]
    theta: np.ndarray
    covariance: np.ndarray
    times_s: np.ndarray
    prediction: Prediction
    ensemble: Mapping[str, np.ndarray]
    reduced_chi2: float
    samples: int
    trusted: bool
    reason: str = ""

    def parameter_std(self) -> dict[str, float]:
        return dict(zip(self.parameter_names, np.sqrt(np.maximum(np.diag(self.covariance), 0.0)).tolist(),
                        strict=True))


class ElutionEstimator:
    """Fit of the fast column model to the samples so far (module docstring). ``times_s``: the model's grid
    (s, from 0 to the end of the fractionation window; the sample times should be on it)."""

    def __init__(self, column: ChromatographyColumn, method: ElutionMethod, times_s: np.ndarray,
                 spec: EstimationSpec | None = None) -> None:
        self.column = column
        self.method = method
        self.spec = spec if spec is not None else EstimationSpec()
        self.times_s = np.asarray(times_s, dtype=float)
        if self.times_s.ndim != 1 or self.times_s.size < 2 or self.times_s[0] != 0.0 \
                or np.any(np.diff(self.times_s) <= 0):
            raise EstimationError("estimator: times_s must be strictly increasing from 0 s")
        proteins = set(column.components) - {method.salt}
        for key in ("isotherm_components", "titre_components"):
            unknown = sorted(set(getattr(self.spec, key)) - proteins)
            if unknown:
                raise EstimationError(f"estimator: {key} {unknown} are not proteins of the column {sorted(proteins)}")
        self._nominal = column.declaration.parameter_values(None)
        self._drift_minutes = np.maximum(self.times_s - method.elution_start_s, 0.0) / 60.0
        self.parameter_names = self.spec.parameter_names()
        self._n_model = len(self.parameter_names) - 2
        self._prior_std = self.spec.prior_std()
        self._theta = np.zeros(len(self.parameter_names))
        self._sample_t: list[float] = []
        self._sample_uv: list[float] = []
        self._sample_cond: list[float] = []
        self.model_runs = 0
        self._linearisation: tuple[np.ndarray, Prediction, np.ndarray] | None = None

    # ------------------------------------------------------------------ samples
    def add_sample(self, time_s: float, uv_mau: float, conductivity_ms_per_cm: float) -> None:
        """One UV (mAU) and conductivity (mS/cm) sample at ``time_s`` (s, increasing, on the model grid)."""
        if self._sample_t and time_s <= self._sample_t[-1]:
            raise EstimationError(f"estimator: sample time {time_s} s is not after the last ({self._sample_t[-1]} s)")
        if not (self.times_s[0] <= time_s <= self.times_s[-1]):
            raise EstimationError(f"estimator: sample time {time_s} s outside the model grid "
                                  f"[{self.times_s[0]}, {self.times_s[-1]}] s")
        self._sample_t.append(float(time_s))
        self._sample_uv.append(float(uv_mau))
        self._sample_cond.append(float(conductivity_ms_per_cm))

    # ------------------------------------------------------------------ model
    def deviation(self, theta: np.ndarray) -> MethodDeviation:
        s = self.spec
        k = len(s.isotherm_components)
        m = k + len(s.titre_components)
        return MethodDeviation(
            feed_factors={c: float(np.exp(v)) for c, v in zip(s.titre_components, theta[k:m], strict=True)},
            adsorption_factors={c: float(np.exp(v)) for c, v in zip(s.isotherm_components, theta[:k], strict=True)},
            gradient_slope_factor=float(1.0 + theta[m]) if s.estimate_gradient_slope else 1.0)

    def predict(self, theta: np.ndarray) -> Prediction:
        """The fast model's outlet for ``theta`` (baseline excluded). Raises SimulationError if the run fails."""
        dev = self.deviation(np.asarray(theta, dtype=float))
        program = self.method.program(self.column.components, float(self.times_s[-1]), dev,
                                      porosity=self.column.spec.flow_porosity)
        result = simulate_column(self.column, program, self.times_s,
                                 parameters=adsorption_overrides(self._nominal, dev.adsorption_factors))
        self.model_runs += 1
        curves = {c: result.output(f"outlet_concentration_{c}") for c in self.column.components}
        return Prediction(_MAU_PER_AU * result.output("outlet_uv_absorbance"),
                          _MS_PER_CM_PER_S_PER_M * result.output("outlet_conductivity"), curves)

    def _jacobian(self, theta: np.ndarray, base: Prediction) -> np.ndarray:
        """d(stacked prediction)/d(theta), (2 + n_components, T, n_theta); baseline columns analytic."""
        y0 = base.stacked()
        jac = np.zeros(y0.shape + (theta.size,))
        for k in range(self._n_model):
            h = 0.01
            step = theta.copy()
            step[k] += h
            jac[:, :, k] = (self.predict(step).stacked() - y0) / h
        jac[0, :, -2] = 1.0
        jac[0, :, -1] = self._drift_minutes
        return jac

    # ------------------------------------------------------------------ fit
    def _residuals(self, theta: np.ndarray, pred: Prediction, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(data residuals, prior residuals), weighted."""
        s = self.spec
        uv = pred.uv_mau[idx] + theta[-2] + theta[-1] * self._drift_minutes[idx]
        r_uv = (np.asarray(self._sample_uv) - uv) / s.uv_noise_mau
        r_cond = (np.asarray(self._sample_cond) - pred.conductivity_ms_per_cm[idx]) / s.conductivity_noise_ms_per_cm
        return np.concatenate([r_uv, r_cond]), theta / self._prior_std

    def _weighted_jacobian(self, jac: np.ndarray, idx: np.ndarray) -> np.ndarray:
        s = self.spec
        return np.vstack([-jac[0, idx, :] / s.uv_noise_mau, -jac[1, idx, :] / s.conductivity_noise_ms_per_cm,
                          np.diag(1.0 / self._prior_std)])

    def _sample_indices(self) -> np.ndarray:
        if not self._sample_t:
            raise EstimationError("estimator: no samples yet")
        idx = np.clip(np.searchsorted(self.times_s, np.asarray(self._sample_t)), 0, self.times_s.size - 1)
        if not np.allclose(self.times_s[idx], self._sample_t, rtol=0, atol=1e-6):
            raise EstimationError("estimator: sample times must lie on the model grid times_s")
        return idx

    def estimate(self, time_s: float) -> OutletEstimate:
        """Fit to every sample so far (warm-started from the last estimate) and sample the predicted outlet."""
        s = self.spec
        if not self._sample_t:
            raise EstimationError("estimator: no samples yet")
        idx = self._sample_indices()
        theta = self._theta.copy()
        try:
            pred = self.predict(theta)
            r_data, r_prior = self._residuals(theta, pred, idx)
            cost = float(r_data @ r_data + r_prior @ r_prior)
            lam = 1e-3
            jac = self._jacobian(theta, pred)
            for iteration in range(s.iterations):
                jw = self._weighted_jacobian(jac, idx)
                r = np.concatenate([r_data, r_prior])
                a = jw.T @ jw
                g = jw.T @ r
                step = np.linalg.solve(a + lam * np.diag(np.diag(a)), -g)
                trial = theta + step
                trial_pred = self.predict(trial)
                t_data, t_prior = self._residuals(trial, trial_pred, idx)
                trial_cost = float(t_data @ t_data + t_prior @ t_prior)
                if trial_cost < cost:
                    theta, pred, r_data, r_prior, cost = trial, trial_pred, t_data, t_prior, trial_cost
                    lam = max(lam / 10.0, 1e-6)
                    if np.all(np.abs(step) < 0.02 * self._prior_std) or iteration == s.iterations - 1:
                        break  # (the Jacobian of the last linearisation serves the covariance and the ensemble)
                    jac = self._jacobian(theta, pred)
                else:
                    lam *= 10.0
        except (SimulationError, np.linalg.LinAlgError) as exc:
            return self._untrusted(time_s, f"model run or fit failed: {exc}")
        self._linearisation = (theta.copy(), pred, jac)
        return self._outlet_estimate(time_s, theta, pred, jac, idx, r_data)

    def update(self, time_s: float) -> OutletEstimate:
        """The estimate with every sample so far at no model run: the Gauss-Newton minimiser of the MAP cost
        linearised at the last :meth:`estimate` (its prediction and Jacobian), ``theta = theta_0 + (J^T J)^{-1}
        J^T r(theta_0)`` over the weighted residuals, the outlet ``c(theta_0) + (dc/dtheta)(theta - theta_0)``,
        covariance, ensemble and trust test as in :meth:`estimate`. Accurate while ``theta`` stays near the
        linearisation point (the next full estimate re-linearises); before any full estimate it is one."""
        if self._linearisation is None:
            return self.estimate(time_s)
        idx = self._sample_indices()
        theta0, pred0, jac = self._linearisation
        r_data, r_prior = self._residuals(theta0, pred0, idx)
        jw = self._weighted_jacobian(jac, idx)
        try:
            step = np.linalg.lstsq(jw, -np.concatenate([r_data, r_prior]), rcond=None)[0]
        except np.linalg.LinAlgError as exc:
            return self._untrusted(time_s, f"linearised update failed: {exc}")
        theta = theta0 + step
        model_step = step.copy()
        model_step[-2:] = 0.0  # the UV baseline is not part of the prediction (see _residuals)
        stacked = pred0.stacked() + jac @ model_step
        names = list(pred0.curves)
        pred = Prediction(stacked[0], stacked[1], {c: stacked[2 + k] for k, c in enumerate(names)})
        r_data, _ = self._residuals(theta, pred, idx)
        return self._outlet_estimate(time_s, theta, pred, jac, idx, r_data)

    def _outlet_estimate(self, time_s: float, theta: np.ndarray, pred: Prediction, jac: np.ndarray,
                         idx: np.ndarray, r_data: np.ndarray) -> OutletEstimate:
        """Covariance, ensemble and trust test of the estimate ``theta`` (prediction ``pred``, Jacobian ``jac``)."""
        s = self.spec
        jw = self._weighted_jacobian(jac, idx)
        dof = max(r_data.size - theta.size, 1)
        chi2 = float(r_data @ r_data) / dof
        try:
            cov = np.linalg.inv(jw.T @ jw) * max(chi2, 1.0)
        except np.linalg.LinAlgError:
            return self._untrusted(time_s, "singular information matrix")
        self._theta = theta
        rng = np.random.default_rng(s.seed)
        draws = rng.multivariate_normal(np.zeros(theta.size), cov, size=s.ensemble_size, method="cholesky")
        curves = {}
        for k, c in enumerate(self.column.components):
            dc = jac[2 + k]  # (T, n_theta)
            curves[c] = np.maximum(pred.curves[c][None, :] + draws @ dc.T, 0.0)
        reason = ""
        std = np.sqrt(np.diag(cov))
        if chi2 > s.chi2_limit:
            reason = f"the model does not explain the signal (reduced chi-square {chi2:.1f} > {s.chi2_limit})"
        elif np.any(std > 1.5 * self._prior_std):
            worst = self.parameter_names[int(np.argmax(std / self._prior_std))]
            reason = f"the fit diverged ('{worst}' less certain than its prior)"
        elif np.any(np.abs(theta) > s.prior_limit * self._prior_std):
            worst = self.parameter_names[int(np.argmax(np.abs(theta) / self._prior_std))]
            reason = (f"'{worst}' = {theta[self.parameter_names.index(worst)]:.3g} is beyond {s.prior_limit:g} prior "
                      f"standard deviations (the model explains the signal with an implausible parameter)")
        return OutletEstimate(float(time_s), self.parameter_names, theta, cov, self.times_s, pred, curves, chi2,
                              len(self._sample_t), trusted=not reason, reason=reason)

    def _untrusted(self, time_s: float, reason: str) -> OutletEstimate:
        n = len(self.parameter_names)
        empty = Prediction(np.zeros(0), np.zeros(0), {})
        return OutletEstimate(float(time_s), self.parameter_names, self._theta.copy(), np.full((n, n), np.nan),
                              self.times_s, empty, {}, math.inf, len(self._sample_t), trusted=False, reason=reason)


def true_outlet(column: ChromatographyColumn, method: ElutionMethod, times_s: np.ndarray,
                deviation: MethodDeviation | None = None) -> dict[str, np.ndarray]:
    """Outlet concentrations (mol/m3) by component, UV (``"uv_mau"``) and conductivity (``"conductivity_ms_per_cm"``)
    of ``column`` run under ``method`` with ``deviation`` (the plant side of a stepped pooling run and the oracle's
    truth)."""
    dev = deviation if deviation is not None else MethodDeviation()
    nominal: Mapping[str, float] = column.declaration.parameter_values(None)
    program = method.program(column.components, float(times_s[-1]), dev, porosity=column.spec.flow_porosity)
    result = simulate_column(column, program, times_s, parameters=adsorption_overrides(nominal,
                                                                                         dev.adsorption_factors))
    out = {c: result.output(f"outlet_concentration_{c}") for c in column.components}
    out["uv_mau"] = _MAU_PER_AU * result.output("outlet_uv_absorbance")
    out["conductivity_ms_per_cm"] = _MS_PER_CM_PER_S_PER_M * result.output("outlet_conductivity")
    return out
