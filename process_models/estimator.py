"""Extended Kalman filter for any declared model, with random-walk parameter augmentation.

The filter lives in ``process_models`` (not ``controllers``) because it is pure model maths: it needs the
declaration's equations and Jacobians, does no I/O, and its estimates are used by more than the NMPC
(historian, OPC UA estimate variables, surrogate checks).

Discrete-time model: the declared continuous-time right-hand side integrated over one sample period with a
casadi integrator (CVODES by default); the transition Jacobians d x(t+T) / d x(t) and d x(t+T) / d theta come
from the integrator's forward sensitivities, the measurement Jacobian from the declared output expressions.
The filter is the standard discrete EKF (e.g. D. Simon, *Optimal State Estimation*, Wiley 2006, ch. 13) with
the Joseph-form covariance update for numerical robustness. Internally the covariance is kept in scaled
coordinates (each state divided by its initial magnitude) so that models whose states differ by many orders of
magnitude (moments of a crystal size distribution: 1e12 #/m3 beside 1e-3 m3/m3) stay well conditioned.

Uncertain parameters listed in ``estimate_parameters`` are appended to the state as random walks
(theta_{k+1} = theta_k + w_k), kept inside their declared bounds or the narrower ``parameter_bounds`` given. A
measurement that is ``None`` or NaN (missing or Bad quality) is skipped; when none is usable the step is
predict-only and the covariance grows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import casadi as ca
import numpy as np

from process_models.declaration import CompiledModel

_log = logging.getLogger(__name__)


class EstimatorError(ValueError):
    """The estimator was configured or called with inconsistent names or values."""


@dataclass(frozen=True)
class Estimate:
    """One filter result at ``time_s`` (s).

    ``states`` / ``std``: estimate and one-sigma standard deviation per state name (float for scalar states,
    array for vector states), in the state's declared SI unit. ``parameters`` / ``parameter_std``: the same for
    the estimated parameters. ``innovation``: measured minus predicted value per measured output actually used
    this step (empty on a predict-only step). ``measurements_used``: names of the outputs used.
    ``nis``: the normalised innovation squared ν'S⁻¹ν of this step (S = H P⁻ H' + R, the innovation covariance the
    filter predicted), χ²-distributed with ``nis_dof`` degrees of freedom (the number of measured values used) when
    the model and its noise fit the plant (Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking
    and Navigation*, Wiley 2001, §5.4.2); None on a predict-only step.
    """

    time_s: float
    states: dict[str, float | np.ndarray]
    std: dict[str, float | np.ndarray]
    parameters: dict[str, float] = field(default_factory=dict)
    parameter_std: dict[str, float] = field(default_factory=dict)
    innovation: dict[str, float | np.ndarray] = field(default_factory=dict)
    measurements_used: tuple[str, ...] = ()
    innovation_std: dict[str, float | np.ndarray] = field(default_factory=dict)
    """One-sigma of each innovation as the filter predicted it (sqrt of the diagonal of H P H' + R), same unit."""
    nis: float | None = None
    nis_dof: int = 0

    @property
    def predict_only(self) -> bool:
        """True when no measurement was usable this step."""
        return not self.measurements_used


def _scalar_or_array(values: np.ndarray) -> float | np.ndarray:
    return float(values[0]) if values.size == 1 else values.copy()


EKF_CVODES_OPTIONS: dict[str, object] = {"abstol": 1e-10, "reltol": 1e-8, "max_num_steps": 20000}
"""The tolerances of the EKF's CVODES integration over a sample period."""


def sample_period_integrator(model: CompiledModel, sample_period_s: float, plugin: str,
                             options: Mapping[str, object]) -> ca.Function:
    """casadi integrator of ``model`` over one sample period (s) from ``t_start``, inputs held:
    ``(x0, p = [u; p; t_start]) -> xf``; what the EKF's transition differentiates."""
    tau = ca.SX.sym("tau")
    t_start = ca.SX.sym("t_start")
    ode = ca.substitute(model.xdot_expr, model.t_sym, t_start + tau)
    dae = {"x": model.x_sym, "p": ca.vertcat(model.u_sym, model.p_sym, t_start), "t": tau, "ode": ode}
    return ca.integrator("ekf_integrator", plugin, dae, 0.0, sample_period_s, dict(options))


class ExtendedKalmanFilter:
    """Discrete-time EKF over one sample period of a :class:`CompiledModel`.

    ``measured_outputs``: names of declared outputs that are measured. ``sample_period_s``: time between
    steps (s). ``process_noise``: one-sigma random change per sample period for every state and every
    estimated parameter (same unit as the state / parameter; missing names default to 0). ``measurement_noise``:
    one-sigma noise per measured output (required for each). ``estimate_parameters``: parameter names appended
    as random-walk states. ``parameters``: overrides of the declared parameter values (initial guesses for the
    estimated ones). ``integrator``: casadi integrator plugin name. ``keep_state_constraints``: shorten a correction
    that would leave the declaration's state constraints (off by default; see :meth:`_admissible_gain_fraction`).
    """

    def __init__(self, model: CompiledModel, measured_outputs: Sequence[str], sample_period_s: float,
                 process_noise: Mapping[str, float], measurement_noise: Mapping[str, float],
                 estimate_parameters: Sequence[str] = (), parameters: Mapping[str, float] | None = None,
                 integrator: str = "cvodes", clip_to_bounds: bool = True,
                 parameter_bounds: Mapping[str, tuple[float, float]] | None = None,
                 keep_state_constraints: bool = False) -> None:
        self.model = model
        decl = model.declaration
        if not (sample_period_s > 0 and math.isfinite(sample_period_s)):
            raise EstimatorError(f"sample_period_s must be a positive finite number (s), got {sample_period_s}")
        self.sample_period_s = float(sample_period_s)
        unknown_y = [n for n in measured_outputs if n not in model.output_slices]
        if unknown_y or not measured_outputs:
            raise EstimatorError(f"model '{decl.name}': measured_outputs {list(measured_outputs)} must be a "
                                 f"non-empty subset of outputs {list(model.output_slices)}; unknown {unknown_y}")
        self.measured_outputs = tuple(measured_outputs)
        unknown_p = [n for n in estimate_parameters if n not in model.parameter_names]
        if unknown_p:
            raise EstimatorError(f"model '{decl.name}': estimate_parameters {unknown_p} unknown; expected some of "
                                 f"{list(model.parameter_names)}")
        self.estimate_parameters = tuple(estimate_parameters)
        self._p_nominal = model.pack_parameters(parameters)
        self.parameter_bounds = self._check_parameter_bounds(parameter_bounds or {})
        """``name -> (lower, upper)`` the estimate of each estimated parameter is kept in (its unit)."""
        self._theta_index = [model.parameter_names.index(n) for n in self.estimate_parameters]
        known_noise = set(model.state_slices) | set(self.estimate_parameters)
        bad = sorted(set(process_noise) - known_noise)
        if bad:
            raise EstimatorError(f"model '{decl.name}': process_noise keys {bad} unknown; expected states or "
                                 f"estimated parameters {sorted(known_noise)}")
        missing_r = [n for n in self.measured_outputs if n not in measurement_noise]
        extra_r = sorted(set(measurement_noise) - set(self.measured_outputs))
        if missing_r or extra_r:
            raise EstimatorError(f"model '{decl.name}': measurement_noise needs one std per measured output; "
                                 f"missing {missing_r}, unknown {extra_r}")
        for name, value in [*process_noise.items(), *measurement_noise.items()]:
            if not (float(value) >= 0 and math.isfinite(float(value))):
                raise EstimatorError(f"noise std for '{name}' must be finite and >= 0, got {value}")
        self._nx = model.nx
        self._nth = len(self.estimate_parameters)
        self._nz = self._nx + self._nth
        q = np.zeros(self._nz)
        for name, sl in model.state_slices.items():
            q[sl] = float(process_noise.get(name, 0.0)) ** 2
        for i, name in enumerate(self.estimate_parameters):
            q[self._nx + i] = float(process_noise.get(name, 0.0)) ** 2
        self._q_diag = q
        self._r_by_output = {n: float(measurement_noise[n]) ** 2 for n in self.measured_outputs}
        self.measurement_std: dict[str, float] = {n: float(measurement_noise[n]) for n in self.measured_outputs}
        """The declared measurement noise, 1 sigma per measured output (the output's SI unit)."""
        self._lower = np.concatenate([np.full(v.size, v.lower) for v in decl.states])
        self._upper = np.concatenate([np.full(v.size, v.upper) for v in decl.states])
        self._clip = clip_to_bounds
        self.keep_state_constraints = keep_state_constraints
        """Shorten a correction that would leave the declaration's state constraints
        (:meth:`_admissible_gain_fraction`)."""
        self._transition = self._build_transition(integrator)
        self._measurement = ca.Function(
            "ekf_measurement", [model.x_sym, model.u_sym, model.p_sym, model.t_sym],
            [model.y_expr, ca.jacobian(model.y_expr, model.x_sym), ca.jacobian(model.y_expr, model.p_sym)])
        self._z: np.ndarray | None = None
        self._cov_scaled: np.ndarray | None = None
        self.truncated_corrections = 0
        """How many corrections were shortened to keep the declaration's state constraints (see
        :meth:`_admissible_gain_fraction`)."""
        self._scale = np.ones(self._nz)
        self.time_s = 0.0

    # -- construction ---------------------------------------------------------------------------
    def _build_transition(self, plugin: str) -> ca.Function:
        """``(x, u, p, t) -> (x(t + T), dx(t + T)/dx, dx(t + T)/dtheta)`` over one sample period ``T`` (s), inputs
        held; ``theta``: the estimated parameters only. The sensitivities are one forward-sensitivity run of the
        integrator (CVODES's staggered corrector; Hindmarsh et al., ACM TOMS 31 (2005) 363) in ``nx + n_theta``
        directions, forced (``ad_weight`` 0): left to choose, casadi took the state columns forward and the columns
        of *every* declared parameter by an adjoint run (one more integration, and ~6e-4 relative error in those
        columns against a 1e-12 reference, where the forward ones agree to ~1e-7); on the pilot crystallizer
        (7 states, 2 estimated of 27 parameters) a step's transition costs 1.9 ms instead of 2.7 ms
        (``benchmarks/estimator.py``)."""
        m = self.model
        opts: dict[str, object] = {"ad_weight": 0.0}  # forward sensitivities (docstring)
        if plugin == "cvodes":
            opts.update(EKF_CVODES_OPTIONS)
        integ = sample_period_integrator(m, self.sample_period_s, plugin, opts)
        x0 = ca.MX.sym("x0", m.nx)
        u = ca.MX.sym("u", m.nu)
        parameters = [ca.MX.sym(name) for name in m.parameter_names]
        p = ca.vertcat(*parameters)
        t0 = ca.MX.sym("t0")
        xf = integ(x0=x0, p=ca.vertcat(u, p, t0))["xf"]
        sensitivity = ca.jacobian(xf, ca.vertcat(x0, *(parameters[i] for i in self._theta_index)))
        return ca.Function("ekf_transition", [x0, u, p, t0], [xf, sensitivity[:, :m.nx], sensitivity[:, m.nx:]])

    def _check_parameter_bounds(self, given: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        decl = self.model.declaration
        specs = {p.name: p for p in decl.parameters}
        unknown = sorted(set(given) - set(self.estimate_parameters))
        if unknown:
            raise EstimatorError(f"model '{decl.name}': parameter_bounds {unknown} are not estimated parameters "
                                 f"{list(self.estimate_parameters)}")
        bounds: dict[str, tuple[float, float]] = {}
        for name in self.estimate_parameters:
            spec = specs[name]
            lower, upper = (float(v) for v in given.get(name, (spec.lower, spec.upper)))
            nominal = float(self._p_nominal[self.model.parameter_names.index(name)])
            if not (spec.lower <= lower < upper <= spec.upper) or not lower <= nominal <= upper:
                raise EstimatorError(f"model '{decl.name}': bounds of '{name}' [{lower:g}, {upper:g}] {spec.unit} must "
                                     f"satisfy {spec.lower:g} <= lower < upper <= {spec.upper:g} and contain the "
                                     f"initial value {nominal:g}")
            bounds[name] = (lower, upper)
        return bounds

    # -- public API -------------------------------------------------------------------------------
    def initialize(self, x0: Mapping[str, float | np.ndarray], std0: Mapping[str, float | np.ndarray],
                   time_s: float = 0.0) -> Estimate:
        """Set the initial estimate (all states; estimated parameters start from ``parameters``) and its one-sigma
        uncertainty (every state and every estimated parameter), at ``time_s`` (s)."""
        x = self.model.pack_states(x0)
        needed = list(self.model.state_slices) + list(self.estimate_parameters)
        missing = [n for n in needed if n not in std0]
        unknown = sorted(set(std0) - set(needed))
        if missing or unknown:
            raise EstimatorError(f"std0 needs a value for every state and estimated parameter; missing {missing}, "
                                 f"unknown {unknown}")
        sd = np.zeros(self._nz)
        for v in self.model.declaration.states:
            arr = np.atleast_1d(np.asarray(std0[v.name], dtype=float)).ravel()
            sd[self.model.state_slices[v.name]] = arr if arr.size == v.size else np.full(v.size, arr[0])
        for i, name in enumerate(self.estimate_parameters):
            sd[self._nx + i] = float(std0[name])
        if not np.all(np.isfinite(sd)) or np.any(sd < 0):
            raise EstimatorError(f"std0 values must be finite and >= 0, got {dict(std0)}")
        theta = self._p_nominal[self._theta_index]
        z = np.concatenate([x, theta])
        if not np.all(np.isfinite(z)):
            raise EstimatorError(f"initial state / parameters must be finite, got {z}")
        # Scale: the larger of |value| and its std (never zero) -> covariance near identity.
        self._scale = np.maximum(np.maximum(np.abs(z), sd), 1e-300)
        self._scale[self._scale == 1e-300] = 1.0
        self._z = z
        self._cov_scaled = np.diag((sd / self._scale) ** 2)
        self.time_s = float(time_s)
        return self._estimate({}, ())

    @property
    def mean(self) -> np.ndarray:
        """Current estimate of [states; estimated parameters] as one flat vector (SI units)."""
        self._require_initialized()
        assert self._z is not None
        return self._z.copy()

    @property
    def parameter_values(self) -> dict[str, float]:
        """Every model parameter (SI): the declared / overridden values with the current estimates of the estimated
        ones."""
        z = self._z if self._z is not None else np.concatenate([np.zeros(self._nx), self._p_nominal[self._theta_index]])
        return dict(zip(self.model.parameter_names, (float(v) for v in self._full_parameters(z)), strict=True))

    @property
    def covariance(self) -> np.ndarray:
        """Full covariance of [states; estimated parameters] in SI units."""
        self._require_initialized()
        assert self._cov_scaled is not None
        return self._cov_scaled * np.outer(self._scale, self._scale)

    def step(self, inputs: Mapping[str, float | np.ndarray],
             measurements: Mapping[str, float | np.ndarray | None]) -> Estimate:
        """Advance one sample period with ``inputs`` held over it, then correct with ``measurements`` taken at
        the end of the period. ``None`` / NaN measurements are skipped (predict-only when none is usable)."""
        self._require_initialized()
        assert self._z is not None and self._cov_scaled is not None
        unknown = sorted(set(measurements) - set(self.measured_outputs))
        if unknown:
            raise EstimatorError(f"measurements {unknown} are not measured outputs {list(self.measured_outputs)}")
        u = self.model.pack_inputs(inputs)
        if not np.all(np.isfinite(u)):
            raise EstimatorError(f"inputs must be finite, got {dict(inputs)}")
        p = self._full_parameters(self._z)
        x = self._z[: self._nx]
        xf, a_x, a_p = self._transition(x, u, p, self.time_s)
        xf = np.asarray(xf, dtype=float).ravel()
        if not np.all(np.isfinite(xf)):
            raise EstimatorError(f"model '{self.model.declaration.name}': prediction diverged (non-finite state) "
                                 f"at t={self.time_s} s from x={x}, u={u}")
        phi = np.eye(self._nz)
        phi[: self._nx, : self._nx] = np.asarray(ca.DM(a_x))
        if self._nth:
            phi[: self._nx, self._nx:] = np.asarray(ca.DM(a_p))
        s = self._scale
        phi_s = phi * s[None, :] / s[:, None]
        cov = phi_s @ self._cov_scaled @ phi_s.T + np.diag(self._q_diag / s**2)
        z = np.concatenate([xf, self._z[self._nx:]])
        self.time_s += self.sample_period_s

        used, y_meas, r_diag = self._usable_measurements(measurements)
        innovation: dict[str, float | np.ndarray] = {}
        innovation_std: dict[str, float | np.ndarray] = {}
        nis: float | None = None
        if used:
            x_pred = z[: self._nx]
            y_all, c_x, c_p = self._measurement(x_pred, u, self._full_parameters(z), self.time_s)
            y_all = np.asarray(y_all, dtype=float).ravel()
            rows = np.concatenate([np.arange(self.model.ny)[self.model.output_slices[n]] for n in used])
            h = np.zeros((rows.size, self._nz))
            h[:, : self._nx] = np.asarray(ca.DM(c_x))[rows, :]
            if self._nth:
                h[:, self._nx:] = np.asarray(ca.DM(c_p))[rows][:, self._theta_index]
            h_s = h * s[None, :]
            nu = y_meas - y_all[rows]
            s_mat = h_s @ cov @ h_s.T + np.diag(r_diag)
            gain = np.linalg.solve(s_mat, h_s @ cov).T
            nis = float(nu @ np.linalg.solve(s_mat, nu))
            correction = s * (gain @ nu)
            fraction = self._admissible_gain_fraction(z, correction)
            gain = gain * fraction
            z = z + fraction * correction
            i_kh = np.eye(self._nz) - gain @ h_s
            cov = i_kh @ cov @ i_kh.T + gain @ np.diag(r_diag) @ gain.T
            nu_std = np.sqrt(np.clip(np.diag(s_mat), 0.0, None))
            start = 0
            for n in used:
                size = self.model.output_slices[n].stop - self.model.output_slices[n].start
                innovation[n] = _scalar_or_array(nu[start:start + size])
                innovation_std[n] = _scalar_or_array(nu_std[start:start + size])
                start += size
        if self._clip:
            z[: self._nx] = np.clip(z[: self._nx], self._lower, self._upper)
            for i, name in enumerate(self.estimate_parameters):
                lower, upper = self.parameter_bounds[name]
                z[self._nx + i] = min(max(z[self._nx + i], lower), upper)
        self._z = z
        self._cov_scaled = 0.5 * (cov + cov.T)
        return self._estimate(innovation, tuple(used), innovation_std, nis, int(y_meas.size))

    # -- helpers ----------------------------------------------------------------------------------
    def _admissible_gain_fraction(self, z_prior: np.ndarray, correction: np.ndarray) -> float:
        """The fraction of the Kalman gain this correction may use: 1 when ``z_prior + correction`` keeps the
        declaration's state constraints (:attr:`CompiledModel.state_constraint`, e.g. moment realizability), else
        half the largest fraction that keeps them (bisection), so the state stays inside, off the boundary.

        A large innovation on a nonlinear output can carry the linearised correction out of the physical set (a
        moment set whose d10 exceeds its d43); clipping each state to its bounds does not repair that, and the filter
        then sits on a state the model cannot leave. Shortening the gain is a step-truncation constrained update
        (D. Simon, "Kalman filtering with state constraints: a survey", IET Control Theory Appl. 4, 2010); the
        Joseph-form covariance update below is exact for any gain, so the covariance stays that of the filter
        actually run. When the predicted state itself breaks a constraint (or a constraint is not evaluable), the
        full gain is used."""
        if not (self.keep_state_constraints and self.model.state_constraint_names):
            return 1.0
        p = self._full_parameters(z_prior)

        def worst(fraction: float) -> float:
            g = np.asarray(self.model.state_constraint(z_prior[: self._nx] + fraction * correction[: self._nx], p),
                           dtype=float).ravel()
            return float(np.min(g)) if np.all(np.isfinite(g)) else -math.inf

        if worst(1.0) >= 0.0 or not worst(0.0) > 0.0:
            return 1.0
        inside, outside = 0.0, 1.0
        for _ in range(30):
            middle = 0.5 * (inside + outside)
            inside, outside = (middle, outside) if worst(middle) >= 0.0 else (inside, middle)
        self.truncated_corrections += 1
        _log.info("model '%s' at t=%.0f s: correction shortened to %.3g of the Kalman gain to keep the state "
                  "constraints %s (%d so far)", self.model.declaration.name, self.time_s, 0.5 * inside,
                  ", ".join(self.model.state_constraint_names), self.truncated_corrections)
        return 0.5 * inside

    def _require_initialized(self) -> None:
        if self._z is None:
            raise EstimatorError("ExtendedKalmanFilter.initialize(x0, std0) must be called before step()")

    def _full_parameters(self, z: np.ndarray) -> np.ndarray:
        p = self._p_nominal.copy()
        p[self._theta_index] = z[self._nx:]
        return p

    def _usable_measurements(self, measurements: Mapping[str, float | np.ndarray | None]
                             ) -> tuple[list[str], np.ndarray, np.ndarray]:
        used: list[str] = []
        values: list[np.ndarray] = []
        r: list[np.ndarray] = []
        for name in self.measured_outputs:
            raw = measurements.get(name)
            if raw is None:
                continue
            arr = np.atleast_1d(np.asarray(raw, dtype=float)).ravel()
            sl = self.model.output_slices[name]
            size = sl.stop - sl.start
            if arr.size != size:
                raise EstimatorError(f"measurement '{name}' needs {size} values, got {arr.size}")
            if not np.all(np.isfinite(arr)):
                continue
            used.append(name)
            values.append(arr)
            r.append(np.full(size, self._r_by_output[name]))
        if not used:
            return [], np.zeros(0), np.zeros(0)
        return used, np.concatenate(values), np.concatenate(r)

    def _estimate(self, innovation: dict[str, float | np.ndarray], used: tuple[str, ...],
                  innovation_std: dict[str, float | np.ndarray] | None = None, nis: float | None = None,
                  nis_dof: int = 0) -> Estimate:
        assert self._z is not None and self._cov_scaled is not None
        sd = np.sqrt(np.clip(np.diag(self._cov_scaled), 0.0, None)) * self._scale
        states = {n: _scalar_or_array(self._z[sl]) for n, sl in self.model.state_slices.items()}
        std = {n: _scalar_or_array(sd[sl]) for n, sl in self.model.state_slices.items()}
        params = {n: float(self._z[self._nx + i]) for i, n in enumerate(self.estimate_parameters)}
        params_sd = {n: float(sd[self._nx + i]) for i, n in enumerate(self.estimate_parameters)}
        return Estimate(time_s=self.time_s, states=states, std=std, parameters=params, parameter_std=params_sd,
                        innovation=innovation, measurements_used=used, innovation_std=dict(innovation_std or {}),
                        nis=nis, nis_dof=nis_dof if nis is not None else 0)
