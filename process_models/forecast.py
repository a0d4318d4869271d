"""What-if forecasts with a 95 % band: the unscented transform over a filter's state and parameter uncertainty.

From an estimate (mean ``z = [x; theta]`` and covariance ``P`` of the states and the estimated parameters, e.g.
:class:`process_models.estimator.ExtendedKalmanFilter`'s ``mean`` / ``covariance``) the model is simulated over the
horizon for a given input programme from each of ``2n + 1`` sigma points, and every requested output's mean and
standard deviation per time come from the weighted sigma-point results.

Method: the scaled unscented transform (S. J. Julier, "The scaled unscented transformation", Proc. American
Control Conference 2002, 4555-4559; E. A. Wan, R. van der Merwe, "The unscented Kalman filter for nonlinear
estimation", IEEE AS-SPCC 2000, 153-158) with ``alpha = 1, beta = 2, kappa = 0``: sigma points
``z ± sqrt(n) · column_i(chol(P))`` and the mean ``z``; mean weights ``1/(2n)`` (0 for the centre), covariance
weights ``1/(2n)`` and ``2`` for the centre (``beta = 2`` is optimal for a Gaussian prior). Unlike the filter's own
linearisation it carries the curvature of the batch-end outputs in the kinetic constants to second order, and costs
``2n + 1`` simulations (n = 9 for the crystallizer with two online parameters: 19 runs, a few tens of ms).

The band is ``mean ± 1.96 σ`` (a Gaussian 95 % interval of the propagated distribution). It covers the uncertainty
the filter knows of: its state and online-parameter covariance. Parameters the filter does not estimate are taken
as known (the deployed values), future process noise is not added, and the band is only as calibrated as the
filter's covariance is: ``benchmarks/forecast.py`` measures its coverage over seeded batches (docs/forecast.md).

**Band calibration** (:class:`BandCalibration`): where past batches show the propagated σ to be too wide or too narrow
(the filter's random walk on its online parameters inflates their covariance on purpose: it keeps the NMPC
adaptive), σ is scaled by ``k``, the RMS of the past batches' normalised errors ``(realised − mean) / σ``, and the band
is ``mean ± t σ_k`` with ``t`` the 97.5 % quantile of Student's t with ``n`` degrees of freedom, ``n`` the number of
past batches ``k`` was learnt from: for a new batch whose normalised error is Gaussian with the same scale,
``error / k`` is t-distributed with ``n`` degrees of freedom (a prediction interval with an estimated scale;
e.g. Hahn & Meeker, *Statistical Intervals*, Wiley 1991, sec. 4.6). ``k = 1, n = 0``: the band as propagated.

Sigma points are clipped into the states' and parameters' bounds (a moment cannot be negative); a sigma point whose
simulation fails is reported (:class:`ForecastError`), never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from process_models.declaration import CompiledModel
from process_models.simulator import InputSpec, SimulationError, simulate

Z_95 = 1.959963984540054
"""Two-sided 95 % quantile of the standard normal distribution."""


class ForecastError(ValueError):
    """A forecast cannot be made from what was given (names, sizes, a simulation that failed)."""


@dataclass(frozen=True)
class BandCalibration:
    """How the propagated σ is turned into the 95 % band (module docstring): ``scale`` k (σ × k), learnt from
    ``batches`` past batches (0: k taken as exact, the Gaussian 1.96)."""

    scale: float = 1.0
    batches: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0) or isinstance(self.batches, bool) or self.batches < 0:
            raise ForecastError(f"BandCalibration: scale must be a finite number > 0 and batches an integer >= 0; "
                                f"got scale={self.scale!r}, batches={self.batches!r}")

    @property
    def quantile(self) -> float:
        """The band's half-width in calibrated σ: 1.96, or Student's t_{0.975, batches}."""
        if self.batches == 0:
            return Z_95
        from scipy import stats  # here: importing scipy.stats costs ~1 CPU s, and every twin imports this module

        return float(stats.t.ppf(0.975, self.batches))

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.batches == 0

    @classmethod
    def learn(cls, normalised_errors: Sequence[float]) -> BandCalibration:
        """k = RMS of past batches' ``(realised − mean) / σ`` (σ as propagated, uncalibrated), n = their count."""
        e = np.asarray(normalised_errors, dtype=float)
        if e.size == 0 or not np.all(np.isfinite(e)) or not np.any(e != 0):
            raise ForecastError(f"BandCalibration.learn: need finite normalised errors, not all zero; got {e.size}")
        return cls(float(np.sqrt(np.mean(e**2))), int(e.size))


@dataclass(frozen=True)
class ForecastBand:
    """Forecast of ``outputs`` at ``times_s`` (model time, s): ``mean`` and ``std`` per output (arrays over
    ``times_s``, the output's SI unit) and the 95 % band ``low`` / ``high`` (mean ∓ 1.96 σ). ``sigma_points``: how
    many simulations were run; ``wall_time_s``: how long they took."""

    times_s: np.ndarray
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    sigma_points: int
    wall_time_s: float

    def low(self, name: str) -> np.ndarray:
        return self.mean[name] - Z_95 * self.std[name]

    def high(self, name: str) -> np.ndarray:
        return self.mean[name] + Z_95 * self.std[name]


def sigma_points(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma points (rows) and their mean and covariance weights (scaled UT, alpha = 1, beta = 2, kappa = 0).

    The square root of ``n · P`` is a Cholesky factor of the covariance scaled to unit diagonal (moments of 1e12
    beside temperatures of 300 keep it well conditioned), with a small jitter when ``P`` is only semi-definite."""
    z = np.asarray(mean, dtype=float).ravel()
    p = np.asarray(covariance, dtype=float)
    n = z.size
    if p.shape != (n, n) or not np.all(np.isfinite(p)) or not np.all(np.isfinite(z)):
        raise ForecastError(f"sigma_points: need a finite mean of n values and an n x n covariance; got {z.shape} "
                            f"and {p.shape}")
    sd = np.sqrt(np.clip(np.diag(p), 0.0, None))
    scale = np.where(sd > 0, sd, 1.0)
    corr = 0.5 * (p + p.T) / np.outer(scale, scale)
    root = _cholesky(corr) * scale[:, None]
    spread = math.sqrt(n) * root  # columns: sqrt(n) · chol(P)
    points = np.vstack([z, z + spread.T, z - spread.T])
    w_mean = np.full(2 * n + 1, 1.0 / (2 * n))
    w_mean[0] = 0.0
    w_cov = w_mean.copy()
    w_cov[0] = 2.0  # (1 - alpha^2 + beta) with alpha = 1, beta = 2
    return points, w_mean, w_cov


def _cholesky(corr: np.ndarray) -> np.ndarray:
    jitter = 0.0
    for _ in range(8):
        try:
            return np.linalg.cholesky(corr + jitter * np.eye(corr.shape[0]))
        except np.linalg.LinAlgError:
            jitter = 1e-12 if jitter == 0.0 else jitter * 100.0
    vals, vecs = np.linalg.eigh(corr)  # not even nearly positive definite: the symmetric square root of its PSD part
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def unscented_forecast(model: CompiledModel, mean: np.ndarray, covariance: np.ndarray,
                       estimated_parameters: Sequence[str], times_s: Sequence[float], inputs: Mapping[str, InputSpec],
                       outputs: Sequence[str], parameters: Mapping[str, float] | None = None,
                       parameter_bounds: Mapping[str, tuple[float, float]] | None = None) -> ForecastBand:
    """Forecast ``outputs`` of ``model`` at ``times_s`` (model time, s; the first is the estimate's time) under
    ``inputs`` (as :func:`process_models.simulator.simulate` takes them) from the estimate ``mean`` /
    ``covariance`` of ``[states; estimated_parameters]`` (SI). ``parameters``: every other parameter's value (the
    deployed set; default the declared values); ``parameter_bounds``: the estimated parameters' bounds (default the
    declared ones)."""
    import time

    started = time.perf_counter()
    unknown = [o for o in outputs if o not in model.output_slices]
    if unknown:
        raise ForecastError(f"model '{model.declaration.name}': outputs {unknown} unknown; expected some of "
                            f"{list(model.output_slices)}")
    nx, names = model.nx, tuple(estimated_parameters)
    z = np.asarray(mean, dtype=float).ravel()
    if z.size != nx + len(names):
        raise ForecastError(f"forecast: the mean has {z.size} values, expected {nx} states + {len(names)} parameters")
    points, w_mean, w_cov = sigma_points(z, covariance)
    lower = np.concatenate([np.full(v.size, v.lower) for v in model.declaration.states])
    upper = np.concatenate([np.full(v.size, v.upper) for v in model.declaration.states])
    specs = {p.name: p for p in model.declaration.parameters}
    bounds = [(parameter_bounds or {}).get(n, (specs[n].lower, specs[n].upper)) for n in names]
    base = dict(parameters or {})
    runs: list[np.ndarray] = []
    for point in points:
        x = np.clip(point[:nx], lower, upper)
        theta = {n: min(max(float(point[nx + i]), lo), hi) for i, (n, (lo, hi)) in enumerate(zip(names, bounds,
                                                                                                   strict=True))}
        try:
            result = simulate(model, model.unpack_states(x), times_s, inputs, parameters={**base, **theta})
        except SimulationError as exc:
            raise ForecastError(f"forecast: a sigma point's simulation failed ({exc})") from exc
        runs.append(np.stack([np.asarray(result.output(o), dtype=float).reshape(-1) for o in outputs]))
    stack = np.stack(runs)  # (points, outputs, times)
    avg = np.tensordot(w_mean, stack, axes=1)
    dev = stack - avg[None]
    var = np.tensordot(w_cov, dev**2, axes=1)
    grid = np.asarray(result.times_s, dtype=float)
    return ForecastBand(times_s=grid, mean={o: avg[i] for i, o in enumerate(outputs)},
                        std={o: np.sqrt(np.clip(var[i], 0.0, None)) for i, o in enumerate(outputs)},
                        sigma_points=len(points), wall_time_s=time.perf_counter() - started)
