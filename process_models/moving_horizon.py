"""Moving-horizon estimation (MHE) for any declared model, solved with casadi + IPOPT.

Over a window of the last N sample periods the estimator solves (C. V. Rao, J. B. Rawlings, D. Q. Mayne,
"Constrained state estimation for nonlinear discrete-time systems", IEEE TAC 48 (2003) 246-258)

    min  |x_0 - x_bar|^2_{P^-1} + sum_i |w_i / sigma_w|^2 + sum_{i=1..N} mask_i |(y_i - h(x_i)) / sigma_v|^2
    s.t. x_{i+1} = F(x_i, u_i, theta) + w_i,   declared state bounds,

with F the declared right-hand side integrated over one sample period by fixed-step RK4 and theta the estimated
parameters (constant over the window). The arrival cost (x_bar, P) is the "EKF update" of the same paper: x_bar is
the previous window's estimate of the new first node, P the covariance an extended Kalman filter running beside
the MHE had at that time. Reported standard deviations are that filter's current ones (an approximation; the MHE
itself returns no covariance). Missing / NaN measurements get ``mask = 0``. The NLP is built once, parametric in
the window data, and warm-started from the previous solution; a failed solve returns the EKF estimate instead and
says so in :attr:`MovingHorizonEstimator.last_status`.

While the window is filling, the unused leading intervals have zero length (their nodes coincide with the first),
so one NLP serves from the first sample on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import casadi as ca
import numpy as np

from process_models.declaration import CompiledModel
from process_models.discretization import rk4_interval
from process_models.estimator import Estimate, EstimatorError, ExtendedKalmanFilter


class MovingHorizonEstimator:
    """MHE over ``horizon`` sample periods; same arguments as :class:`ExtendedKalmanFilter` plus the horizon,
    RK4 ``substeps`` per sample period and IPOPT limits."""

    def __init__(self, model: CompiledModel, measured_outputs: Sequence[str], sample_period_s: float,
                 horizon: int, process_noise: Mapping[str, float], measurement_noise: Mapping[str, float],
                 estimate_parameters: Sequence[str] = (), parameters: Mapping[str, float] | None = None,
                 substeps: int = 2, max_cpu_time_s: float = 1.0, max_iter: int = 100) -> None:
        if horizon < 1 or substeps < 1:
            raise EstimatorError(f"MHE horizon and substeps must be >= 1, got {horizon}, {substeps}")
        self._ekf = ExtendedKalmanFilter(model, measured_outputs, sample_period_s, process_noise, measurement_noise,
                                         estimate_parameters, parameters)
        self.model = model
        self.horizon = int(horizon)
        self.sample_period_s = float(sample_period_s)
        self.measured_outputs = tuple(measured_outputs)
        self.estimate_parameters = tuple(estimate_parameters)
        self._p_nominal = model.pack_parameters(parameters)
        self._theta_index = [model.parameter_names.index(n) for n in self.estimate_parameters]
        self._rows = np.concatenate([np.arange(model.ny)[model.output_slices[n]] for n in self.measured_outputs])
        self._sigma_v = np.concatenate([np.full(model.output_slices[n].stop - model.output_slices[n].start,
                                                float(measurement_noise[n])) for n in self.measured_outputs])
        if np.any(self._sigma_v <= 0):
            raise EstimatorError("MHE needs measurement_noise > 0 for every measured output")
        sigma_w = np.zeros(model.nx)
        for name, sl in model.state_slices.items():
            sigma_w[sl] = float(process_noise.get(name, 0.0))
        self._sigma_w = sigma_w
        self._build(substeps, max_cpu_time_s, max_iter)
        self._window: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=self.horizon)
        self._history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.horizon + 1)  # EKF (mean, cov)
        self._arrival_mean: np.ndarray | None = None
        self._arrival_cov: np.ndarray | None = None
        self._previous_w: np.ndarray | None = None
        self.last_status = "not started"
        self.time_s = 0.0

    # -- construction ---------------------------------------------------------------------------
    def _build(self, substeps: int, max_cpu_time_s: float, max_iter: int) -> None:
        m = self.model
        n, nx, nth, ny = self.horizon, m.nx, len(self.estimate_parameters), self._rows.size
        step = rk4_interval(m, substeps, "mhe_interval")

        P_xbar = ca.SX.sym("x_bar", nx + nth)
        P_arrival_chol = ca.SX.sym("arrival_inv_chol", nx + nth, nx + nth)
        P_scale = ca.SX.sym("scale", nx + nth)
        P_u = ca.SX.sym("u", m.nu, n)
        P_y = ca.SX.sym("y", ny, n)
        P_mask = ca.SX.sym("mask", ny, n)
        P_dt = ca.SX.sym("dt", n)
        P_t0 = ca.SX.sym("t0")
        P_p = ca.SX.sym("p", m.np)
        params = ca.vertcat(P_xbar, ca.vec(P_arrival_chol), P_scale, ca.vec(P_u), ca.vec(P_y), ca.vec(P_mask), P_dt,
                            P_t0, P_p)
        Z = ca.SX.sym("Z", nx, n + 1)  # scaled states at the window nodes
        TH = ca.SX.sym("TH", nth)  # scaled parameters
        OM = ca.SX.sym("OM", nx, n)  # process noise in units of sigma_w
        s_x, s_th = P_scale[:nx], P_scale[nx:]
        theta = TH * s_th if nth else ca.SX(0, 1)
        p_full = P_p
        if nth:
            p_full = ca.vertcat(*[theta[self._theta_index.index(i)] if i in self._theta_index else P_p[i]
                                  for i in range(m.np)])
        arrival_err = ca.vertcat(Z[:, 0] * s_x, theta) - P_xbar
        obj = ca.sumsqr(P_arrival_chol @ arrival_err)
        g = []
        t = P_t0
        sigma_w = ca.DM(self._sigma_w)
        sigma_v = ca.DM(self._sigma_v)
        for i in range(n):
            x_i = Z[:, i] * s_x
            x_next = step(x_i, P_u[:, i], p_full, t, P_dt[i]) + sigma_w * OM[:, i] * (P_dt[i] / self.sample_period_s)
            g.append(Z[:, i + 1] - x_next / s_x)
            obj += ca.sumsqr(OM[:, i])
            t = t + P_dt[i]
            y = m.output(Z[:, i + 1] * s_x, P_u[:, i], p_full, t)[self._rows.tolist()]
            obj += ca.sumsqr(P_mask[:, i] * (P_y[:, i] - y) / sigma_v)
        w = ca.vertcat(ca.vec(Z), TH, ca.vec(OM))
        lower = np.concatenate([np.full(v.size, v.lower) for v in m.declaration.states])
        upper = np.concatenate([np.full(v.size, v.upper) for v in m.declaration.states])
        self._state_lower, self._state_upper = lower, upper
        ipopt = {"print_level": 0, "sb": "yes", "max_cpu_time": float(max_cpu_time_s), "max_iter": int(max_iter),
                 "tol": 1e-8, "acceptable_iter": 0}
        self._solver = ca.nlpsol("mhe", "ipopt", {"x": w, "p": params, "f": obj, "g": ca.vertcat(*g)},
                                 {"ipopt": ipopt, "print_time": False, "error_on_fail": False})
        self._ng = nx * n
        self._sizes = (nx, nth, n)

    # -- public API -------------------------------------------------------------------------------
    def initialize(self, x0: Mapping[str, float | np.ndarray], std0: Mapping[str, float | np.ndarray],
                   time_s: float = 0.0) -> Estimate:
        """Prior of the first window (same meaning as :meth:`ExtendedKalmanFilter.initialize`)."""
        first = self._ekf.initialize(x0, std0, time_s)
        theta = self._p_nominal[self._theta_index]
        self._arrival_mean = np.concatenate([self.model.pack_states(x0), theta])
        self._arrival_cov = self._ekf.covariance
        self._history.clear()
        self._history.append((self._ekf.mean, self._arrival_cov))
        self._window.clear()
        self._previous_w = None
        self.time_s = float(time_s)
        self._window_start_s = float(time_s)
        self.last_status = "initialized"
        return first

    def step(self, inputs: Mapping[str, float | np.ndarray],
             measurements: Mapping[str, float | np.ndarray | None]) -> Estimate:
        """Add one sample (inputs held over the last period, measurements at its end) and re-solve the window."""
        if self._arrival_mean is None:
            raise EstimatorError("MovingHorizonEstimator.initialize(x0, std0) must be called before step()")
        ekf_estimate = self._ekf.step(inputs, measurements)
        self._history.append((self._ekf.mean, self._ekf.covariance))
        u = self.model.pack_inputs(inputs)
        y = np.zeros(self._rows.size)
        mask = np.zeros(self._rows.size)
        start = 0
        for name in self.measured_outputs:
            sl = self.model.output_slices[name]
            size = sl.stop - sl.start
            raw = measurements.get(name)
            if raw is not None:
                arr = np.atleast_1d(np.asarray(raw, dtype=float)).ravel()
                if arr.size == size and np.all(np.isfinite(arr)):
                    y[start:start + size], mask[start:start + size] = arr, 1.0
            start += size
        if len(self._window) == self.horizon:
            self._shift_arrival()
        self._window.append((u, y, mask))
        self.time_s += self.sample_period_s
        return self._solve(ekf_estimate)

    # -- helpers ----------------------------------------------------------------------------------
    def _shift_arrival(self) -> None:
        """The oldest sample leaves the window: the arrival prior moves to the next node."""
        nx, nth, n = self._sizes
        ekf_mean, ekf_cov = self._history[0]
        if self._previous_w is None:  # the last window failed: start the next one from the EKF
            self._arrival_mean = ekf_mean
        else:
            z = self._previous_w[: nx * (n + 1)].reshape(n + 1, nx).T * self._last_scale[:nx, None]
            theta = self._previous_w[nx * (n + 1): nx * (n + 1) + nth] * self._last_scale[nx:]
            self._arrival_mean = np.concatenate([z[:, 1], theta])
        self._arrival_cov = ekf_cov
        self._window_start_s += self.sample_period_s

    def _solve(self, ekf_estimate: Estimate) -> Estimate:
        assert self._arrival_mean is not None and self._arrival_cov is not None
        nx, nth, n = self._sizes
        m = self.model
        filled = len(self._window)
        pad = n - filled
        u_mat = np.zeros((m.nu, n))
        y_mat = np.zeros((self._rows.size, n))
        mask = np.zeros((self._rows.size, n))
        for i, (u, y, msk) in enumerate(self._window):
            u_mat[:, pad + i], y_mat[:, pad + i], mask[:, pad + i] = u, y, msk
        if pad:
            u_mat[:, :pad] = u_mat[:, [pad]]
        dt = np.array([0.0] * pad + [self.sample_period_s] * filled)
        scale = np.maximum(np.abs(self._arrival_mean), np.sqrt(np.clip(np.diag(self._arrival_cov), 0, None)))
        scale[scale == 0] = 1.0
        cov_scaled = self._arrival_cov / np.outer(scale, scale)
        cov_scaled = 0.5 * (cov_scaled + cov_scaled.T) + 1e-12 * np.eye(nx + nth)
        inv_chol_scaled = np.linalg.inv(np.linalg.cholesky(cov_scaled))  # L^-1 with cov = L L^T
        arrival_weight = inv_chol_scaled / scale[None, :]
        pvec = np.concatenate([self._arrival_mean, arrival_weight.ravel(order="F"), scale, u_mat.ravel(order="F"),
                               y_mat.ravel(order="F"), mask.ravel(order="F"), dt, [self._window_start_s],
                               self._p_nominal])
        w0 = self._initial_guess(scale, u_mat, dt)
        lbx = np.concatenate([np.tile(self._state_lower / scale[:nx], n + 1), np.full(nth + nx * n, -np.inf)])
        ubx = np.concatenate([np.tile(self._state_upper / scale[:nx], n + 1), np.full(nth + nx * n, np.inf)])
        for i, k in enumerate(self._theta_index):
            spec = m.declaration.parameters[k]
            lbx[nx * (n + 1) + i] = spec.lower / scale[nx + i]
            ubx[nx * (n + 1) + i] = spec.upper / scale[nx + i]
        sol = self._solver(x0=w0, p=pvec, lbx=lbx, ubx=ubx, lbg=np.zeros(self._ng), ubg=np.zeros(self._ng))
        stats = self._solver.stats()
        self.last_status = str(stats.get("return_status", "unknown"))
        w = np.asarray(sol["x"], dtype=float).ravel()
        if not (stats.get("success", False) and np.all(np.isfinite(w))):
            self._previous_w = None
            self.last_status += " (EKF estimate used)"
            return ekf_estimate
        self._previous_w = w
        self._last_scale = scale
        z = w[: nx * (n + 1)].reshape(n + 1, nx).T * scale[:nx, None]
        theta = w[nx * (n + 1): nx * (n + 1) + nth] * scale[nx:]
        x_now = z[:, -1]

        def pick(vec: np.ndarray, sl: slice) -> float | np.ndarray:
            part = vec[sl]
            return float(part[0]) if part.size == 1 else part.copy()

        states = {name: pick(x_now, sl) for name, sl in m.state_slices.items()}
        params = {name: float(theta[i]) for i, name in enumerate(self.estimate_parameters)}
        return Estimate(time_s=self.time_s, states=states, std=ekf_estimate.std, parameters=params,
                        parameter_std=ekf_estimate.parameter_std, innovation=ekf_estimate.innovation,
                        measurements_used=ekf_estimate.measurements_used)

    def _initial_guess(self, scale: np.ndarray, u_mat: np.ndarray, dt: np.ndarray) -> np.ndarray:
        nx, nth, n = self._sizes
        assert self._arrival_mean is not None
        if self._previous_w is not None:  # shift by one node (also right while the window fills)
            z_prev = self._previous_w[: nx * (n + 1)].reshape(n + 1, nx).T * self._last_scale[:nx, None]
            z = np.column_stack([z_prev[:, 1:], z_prev[:, -1:]])
            theta = self._previous_w[nx * (n + 1): nx * (n + 1) + nth] * self._last_scale[nx:]
        else:
            z = np.repeat(self._arrival_mean[:nx, None], n + 1, axis=1)
            theta = self._arrival_mean[nx:]
        z = np.clip(z, self._state_lower[:, None], self._state_upper[:, None])
        zs = z / scale[:nx, None]
        return np.concatenate([zs.T.ravel(), theta / scale[nx:], np.zeros(nx * n)])
