"""Nonlinear model-predictive control (casadi + IPOPT) on any declared model.

Formulation (direct multiple shooting, H. G. Bock & K. J. Plitt, IFAC 1984; direct collocation, L. T. Biegler,
*Nonlinear Programming*, SIAM 2010, ch. 10; see also J. B. Rawlings, D. Q. Mayne, M. M. Diehl, *Model Predictive
Control: Theory, Computation and Design*, 2nd ed., 2017, ch. 8):

* N control intervals with piecewise-constant manipulated inputs. ``MULTIPLE_SHOOTING`` (default): each interval
  integrated by fixed-step RK4 (``substeps`` steps) of the declared right-hand side, continuity constraints between
  intervals. ``COLLOCATION``: Radau IIA collocation states per interval are NLP variables. States are scaled by
  ``max(|x0|, state_scale)`` (a parameter of the NLP) so moments spanning 1e-3..1e12 remain well conditioned.
* Horizon: ``RECEDING`` (N intervals of one sample period) or ``SHRINKING`` (batch processes: the first interval
  is one sample period, the other N-1 split the time left to ``batch_end_s`` evenly, so the terminal target is
  always at batch end and the problem size never changes).
* Hard input bounds, hard rate limits (``max_move`` per sample period, scaled with interval length; the first
  move is from the last applied value), soft output constraints (path or terminal) with L1 + L2 slack penalties.
* Objective: output tracking (interval-length weighted), terminal targets, economic terms (minimise a weighted
  output, path or terminal) and move suppression; every term normalised by a declared scale.

The NLP is built once, parametric in current state, state scales, last inputs, model parameters, time, interval
lengths, references and disturbance inputs; :meth:`NonlinearMpc.step` costs one IPOPT solve, warm-started from
the previous primal-dual solution (shifted by one interval for a receding horizon; as is for a shrinking one,
whose nodes stay at the same fractions of the remaining batch). A failed warm-started solve is retried once cold.

Threads: :meth:`NonlinearMpc.step` may run in a worker thread (the twin does, bounded by a deadline it cannot
enforce on IPOPT). Steps are serialised by a lock (the casadi solvers' work memory is not safe for concurrent
calls: overlapping solves gave ``Invalid_Number_Detected`` and heap corruption), and :meth:`NonlinearMpc.reset`
takes effect at once: a solve still running when it is called (e.g. the last one of a finished batch) does not
leave its solution behind as the next batch's warm start.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import casadi as ca
import numpy as np

from controllers.commands import ControlMode, SetpointCommand
from process_models.declaration import CompiledModel, InputRole
from process_models.discretization import rk4_interval


class NmpcConfigError(ValueError):
    """An NMPC configuration does not match its model (names, bounds, sizes)."""


class HorizonMode(str, Enum):
    RECEDING = "receding"
    SHRINKING = "shrinking"


class Discretization(str, Enum):
    MULTIPLE_SHOOTING = "multiple_shooting"
    """Each interval integrated by ``substeps`` fixed RK4 steps; continuity constraints between intervals."""
    COLLOCATION = "collocation"
    """Direct collocation: Radau IIA collocation states (``collocation_degree`` per interval) are NLP variables."""


def _radau_coefficients(degree: int) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Collocation times tau_0=0, tau_1..tau_d (Radau), derivative matrix C[j, r] = l_j'(tau_r) and end weights
    D[j] = l_j(1) of the Lagrange basis l_j (L. T. Biegler, *Nonlinear Programming*, SIAM 2010, sec. 10.2)."""
    tau = [0.0, *ca.collocation_points(degree, "radau")]
    c_mat = np.zeros((degree + 1, degree + 1))
    d_vec = np.zeros(degree + 1)
    for j in range(degree + 1):
        basis = np.poly1d([1.0])
        for r in range(degree + 1):
            if r != j:
                basis *= np.poly1d([1.0, -tau[r]]) / (tau[j] - tau[r])
        d_vec[j] = basis(1.0)
        derivative = np.polyder(basis)
        for r in range(degree + 1):
            c_mat[j, r] = derivative(tau[r])
    return tau, c_mat, d_vec


@dataclass(frozen=True, slots=True)
class ManipulatedInput:
    """A model input the NMPC moves. Bounds in the input's unit; ``max_move``: largest change per sample period
    (unit); ``move_weight``: penalty on (move / max_move)^2 (or move^2 when ``max_move`` is infinite)."""

    name: str
    lower: float
    upper: float
    max_move: float = math.inf
    move_weight: float = 0.0


@dataclass(frozen=True, slots=True)
class OutputTracking:
    """Path tracking of output ``output`` to a reference given at each step: weight * ((y - ref) / scale)^2,
    weighted by interval length / sample period."""

    output: str
    weight: float = 1.0
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class TerminalTarget:
    """Terminal target on output ``output`` (reference given at each step): weight * ((y_N - ref) / scale)^2."""

    output: str
    weight: float = 1.0
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class EconomicTerm:
    """Minimise weight * y / scale, at the horizon end (``terminal``) or integrated along the path."""

    output: str
    weight: float
    scale: float = 1.0
    terminal: bool = True


@dataclass(frozen=True, slots=True)
class OutputConstraint:
    """Soft band lower <= y <= upper on an output, at every node (``terminal=False``) or at the horizon end.
    Violations cost ``weight`` * (s + s^2) where s is the violation divided by ``scale``."""

    output: str
    lower: float = -math.inf
    upper: float = math.inf
    scale: float = 1.0
    weight: float = 1e3
    terminal: bool = False


@dataclass(frozen=True)
class NmpcConfig:
    """Everything the NMPC needs besides the model. Immutable; validated against the model at construction.

    ``sample_period_s``: time between moves (s); ``horizon``: number of control intervals N; ``state_scales``:
    nominal magnitude per state (the NLP scales by ``max(|x0|, nominal)``, default 1); ``substeps``: RK4 steps per
    interval; ``max_cpu_time_s`` / ``max_iter`` / ``tolerance``: IPOPT limits per solve; ``ipopt_options``: extra
    IPOPT options (override the defaults); ``warm_start_duals``: start IPOPT from the previous primal-dual solution;
    ``retry_cold``: when a warm-started solve fails, solve once more from the cold initial guess (a step may then
    take up to twice ``max_cpu_time_s``; the supervisor's deadline still applies).
    """

    sample_period_s: float
    horizon: int
    inputs: tuple[ManipulatedInput, ...]
    horizon_mode: HorizonMode = HorizonMode.RECEDING
    tracking: tuple[OutputTracking, ...] = ()
    terminal_targets: tuple[TerminalTarget, ...] = ()
    economic: tuple[EconomicTerm, ...] = ()
    constraints: tuple[OutputConstraint, ...] = ()
    state_scales: Mapping[str, float] = field(default_factory=dict)
    substeps: int = 1
    max_cpu_time_s: float = 1.0
    max_iter: int = 200
    tolerance: float = 1e-6
    ipopt_options: Mapping[str, object] = field(default_factory=dict)
    warm_start_duals: bool = True
    retry_cold: bool = True
    discretization: Discretization = Discretization.MULTIPLE_SHOOTING
    collocation_degree: int = 3

    def __post_init__(self) -> None:
        for name in ("inputs", "tracking", "terminal_targets", "economic", "constraints"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple):
                raise NmpcConfigError(f"NmpcConfig.{name} must be a tuple of terms, got {type(value).__name__} "
                                      f"(missing trailing comma?)")
            object.__setattr__(self, name, tuple(value))
        if not isinstance(self.horizon_mode, HorizonMode):
            object.__setattr__(self, "horizon_mode", HorizonMode(self.horizon_mode))
        if not isinstance(self.discretization, Discretization):
            object.__setattr__(self, "discretization", Discretization(self.discretization))


@dataclass(frozen=True)
class PredictedTrajectory:
    """Predicted trajectory: ``times_s`` (N+1 node times, s), ``states`` / ``outputs`` at the nodes (N+1 values
    each, SI units; outputs at node k use the input of interval k-1, node 0 the first move) and ``inputs`` per
    interval (N values)."""

    times_s: np.ndarray
    states: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class NmpcResult:
    """One NMPC step. ``commands`` are the first moves (never written by the NMPC itself); ``success`` is True only
    when IPOPT converged and every command is finite and inside its bounds. ``solve_time_s``: wall time of the
    IPOPT call (s)."""

    time_s: float
    commands: tuple[SetpointCommand, ...]
    success: bool
    status: str
    solve_time_s: float
    iterations: int
    objective: float
    trajectory: PredictedTrajectory


def _soft_band(g: list, lbg: list[float], ubg: list[float], y: ca.SX, con: OutputConstraint, slack: ca.SX) -> ca.SX:
    """Append ``lower - s <= y <= upper + s`` (scaled by ``con.scale``) to the constraints; return its penalty
    ``weight * (s + s^2)`` (L1 + L2 exact-penalty slack)."""
    yv = y / con.scale
    if math.isfinite(con.upper):
        g.append(yv - con.upper / con.scale - slack)
        lbg.append(-math.inf)
        ubg.append(0.0)
    if math.isfinite(con.lower):
        g.append(yv - con.lower / con.scale + slack)
        lbg.append(0.0)
        ubg.append(math.inf)
    return con.weight * (slack + slack**2)


class NonlinearMpc:
    """NMPC for a :class:`CompiledModel`; the NLP is built once in the constructor and reused by :meth:`step`."""

    def __init__(self, model: CompiledModel, config: NmpcConfig, prediction: ca.Function | None = None,
                 prediction_model: str = "physics") -> None:
        """``prediction``: an interval function ``(x, u, p, t, dt) -> x(t+dt)`` replacing the RK4 integration of the
        declared right-hand side (e.g. a surrogate's, :mod:`controllers.surrogate_prediction`); multiple shooting
        only. ``prediction_model`` names it (``"physics"`` or ``"surrogate"``) in results and logs."""
        self.model = model
        self.config = config
        self.prediction_model = prediction_model
        self._prediction = prediction
        if prediction is not None and config.discretization is Discretization.COLLOCATION:
            raise NmpcConfigError(f"NMPC for '{model.declaration.name}': a {prediction_model} prediction function "
                                  "needs multiple shooting, not collocation")
        self._validate()
        self._build()
        self._previous: dict[str, np.ndarray] | None = None
        self._solve_lock = threading.Lock()  # one IPOPT call at a time on these solvers
        self._state_lock = threading.Lock()  # guards _previous and _generation
        self._generation = 0  # bumped by reset(): a step begun before it does not store its warm start

    # -- validation -------------------------------------------------------------------------------
    def _validate(self) -> None:
        m, c = self.model, self.config
        name = m.declaration.name
        if not (c.sample_period_s > 0 and math.isfinite(c.sample_period_s)):
            raise NmpcConfigError(f"NMPC for '{name}': sample_period_s must be > 0 s, got {c.sample_period_s}")
        if c.horizon < 1:
            raise NmpcConfigError(f"NMPC for '{name}': horizon must be >= 1 interval, got {c.horizon}")
        if c.substeps < 1:
            raise NmpcConfigError(f"NMPC for '{name}': substeps must be >= 1, got {c.substeps}")
        if not 1 <= c.collocation_degree <= 9:
            raise NmpcConfigError(f"NMPC for '{name}': collocation_degree must be 1..9, got {c.collocation_degree}")
        if not c.inputs:
            raise NmpcConfigError(f"NMPC for '{name}': at least one manipulated input is required")
        specs = {i.name: i for i in m.declaration.inputs}
        for mi in c.inputs:
            spec = specs.get(mi.name)
            if spec is None:
                raise NmpcConfigError(f"NMPC for '{name}': input '{mi.name}' unknown; expected one of {list(specs)}")
            if spec.role is not InputRole.MANIPULATED or spec.size != 1:
                raise NmpcConfigError(f"NMPC for '{name}': input '{mi.name}' must be a scalar manipulated input")
            if not (math.isfinite(mi.lower) and math.isfinite(mi.upper) and mi.lower < mi.upper):
                raise NmpcConfigError(f"NMPC for '{name}': input '{mi.name}' needs finite lower < upper, "
                                      f"got [{mi.lower}, {mi.upper}] {spec.unit}")
            if mi.lower < spec.lower or mi.upper > spec.upper:
                raise NmpcConfigError(f"NMPC for '{name}': input '{mi.name}' bounds [{mi.lower}, {mi.upper}] "
                                      f"exceed the declared [{spec.lower}, {spec.upper}] {spec.unit}")
            if not mi.max_move > 0:
                raise NmpcConfigError(f"NMPC for '{name}': input '{mi.name}' max_move must be > 0")
        if len({mi.name for mi in c.inputs}) != len(c.inputs):
            raise NmpcConfigError(f"NMPC for '{name}': duplicate manipulated input")
        outputs_sizes = {v.name: v.size for v in m.declaration.outputs}
        for term in (*c.tracking, *c.terminal_targets, *c.economic, *c.constraints):
            if term.output not in outputs_sizes:
                raise NmpcConfigError(f"NMPC for '{name}': {type(term).__name__} output '{term.output}' unknown; "
                                      f"expected one of {list(outputs_sizes)}")
            if outputs_sizes[term.output] != 1:
                raise NmpcConfigError(f"NMPC for '{name}': output '{term.output}' must be scalar")
            if not term.scale > 0:
                raise NmpcConfigError(f"NMPC for '{name}': {type(term).__name__} '{term.output}' scale must be > 0")
        bad_scales = sorted(set(c.state_scales) - set(m.state_slices))
        if bad_scales:
            raise NmpcConfigError(f"NMPC for '{name}': state_scales {bad_scales} unknown; states are "
                                  f"{list(m.state_slices)}")

    # -- NLP construction -------------------------------------------------------------------------
    def _build(self) -> None:
        m, c = self.model, self.config
        n, nx, ns = c.horizon, m.nx, c.substeps
        self._mv_names = [mi.name for mi in c.inputs]
        self._dv_names = [i.name for i in m.declaration.inputs if i.name not in self._mv_names]
        nmv = len(self._mv_names)
        ndv = sum(i.size for i in m.declaration.inputs if i.name in self._dv_names)
        self._ref_names = [f"track:{t.output}" for t in c.tracking] + [f"terminal:{t.output}"
                                                                      for t in c.terminal_targets]
        # integrator over one interval of (parametric) length dt: RK4 with ns substeps
        self._interval = self._prediction if self._prediction is not None else rk4_interval(m, ns, "nmpc_interval")

        # parameters
        P_x0 = ca.SX.sym("x0", nx)
        P_sx = ca.SX.sym("x_scale", nx)
        P_uprev = ca.SX.sym("u_prev", nmv)
        P_p = ca.SX.sym("p", m.np)
        P_t0 = ca.SX.sym("t0")
        P_dt = ca.SX.sym("dt", n)
        P_ref = ca.SX.sym("ref", len(self._ref_names))
        P_dv = ca.SX.sym("dv", ndv)
        params = ca.vertcat(P_x0, P_sx, P_uprev, P_p, P_t0, P_dt, P_ref, P_dv)

        # decision variables: scaled states Z_1..Z_N, scaled inputs V_0..V_{N-1}, slacks
        Z = ca.SX.sym("Z", nx, n)
        collocation = c.discretization is Discretization.COLLOCATION
        deg = c.collocation_degree if collocation else 0
        XC = ca.SX.sym("XC", nx, deg * n)  # scaled collocation states, interval k in columns k*deg..k*deg+deg-1
        tau, c_mat, d_vec = _radau_coefficients(deg) if collocation else ([0.0], np.zeros((1, 1)), np.ones(1))
        V = ca.SX.sym("V", nmv, n)
        lo = np.array([mi.lower for mi in c.inputs])
        hi = np.array([mi.upper for mi in c.inputs])
        self._u_offset, self._u_span = (lo + hi) / 2, (hi - lo) / 2
        U = ca.repmat(ca.DM(self._u_offset), 1, n) + ca.diag(ca.DM(self._u_span)) @ V
        path_cons = [k for k in c.constraints if not k.terminal]
        term_cons = [k for k in c.constraints if k.terminal]
        S_path = ca.SX.sym("S_path", len(path_cons), n)
        S_term = ca.SX.sym("S_term", len(term_cons))

        def full_input(u_mv: ca.SX) -> ca.SX:
            parts = []
            mv_pos = {nm: i for i, nm in enumerate(self._mv_names)}
            dv_pos = 0
            for spec in m.declaration.inputs:
                if spec.name in mv_pos:
                    parts.append(u_mv[mv_pos[spec.name]])
                else:
                    parts.append(P_dv[dv_pos:dv_pos + spec.size])
                    dv_pos += spec.size
            return ca.vertcat(*parts)

        g, lbg, ubg = [], [], []
        obj = ca.SX(0)
        x_prev = P_x0
        t_node = P_t0
        outputs_at_nodes = []
        y_index = {v.name: m.output_slices[v.name].start for v in m.declaration.outputs}
        ts_ = c.sample_period_s
        for k in range(n):
            uk = full_input(U[:, k])
            if collocation:
                h = P_dt[k]
                points = [x_prev / P_sx] + [XC[:, k * deg + r] for r in range(deg)]
                for r in range(1, deg + 1):
                    slope = sum(c_mat[j, r] * points[j] for j in range(deg + 1))
                    f_r = m.rhs(points[r] * P_sx, uk, P_p, t_node + tau[r] * h) / P_sx
                    g.append(slope - h * f_r)
                    lbg += [0.0] * nx
                    ubg += [0.0] * nx
                g.append(Z[:, k] - sum(d_vec[j] * points[j] for j in range(deg + 1)))
            else:
                x_next = self._interval(x_prev, uk, P_p, t_node, P_dt[k])
                g.append(Z[:, k] - x_next / P_sx)
            lbg += [0.0] * nx
            ubg += [0.0] * nx
            t_node = t_node + P_dt[k]
            x_node = Z[:, k] * P_sx
            y = m.output(x_node, uk, P_p, t_node)
            outputs_at_nodes.append(y)
            weight_k = P_dt[k] / ts_
            for i, term in enumerate(c.tracking):
                obj += term.weight * weight_k * ((y[y_index[term.output]] - P_ref[i]) / term.scale) ** 2
            for term in c.economic:
                if not term.terminal:
                    obj += term.weight * weight_k * y[y_index[term.output]] / term.scale
            for j, con in enumerate(path_cons):
                obj += weight_k * _soft_band(g, lbg, ubg, y[y_index[con.output]], con, S_path[j, k])
            # rate limits (hard): first move from the last applied value, later moves scaled by interval length
            move = U[:, k] - (P_uprev if k == 0 else U[:, k - 1])
            for i, mi in enumerate(c.inputs):
                if mi.move_weight > 0:
                    norm = mi.max_move if math.isfinite(mi.max_move) else 1.0
                    obj += mi.move_weight * (move[i] / norm) ** 2
                if math.isfinite(mi.max_move):
                    limit = mi.max_move if k == 0 else mi.max_move * P_dt[k - 1] / ts_
                    g.append(move[i] - limit)
                    lbg.append(-math.inf)
                    ubg.append(0.0)
                    g.append(move[i] + limit)
                    lbg.append(0.0)
                    ubg.append(math.inf)
            x_prev = x_node
        y_end = outputs_at_nodes[-1]
        n_track = len(c.tracking)
        for i, term in enumerate(c.terminal_targets):
            obj += term.weight * ((y_end[y_index[term.output]] - P_ref[n_track + i]) / term.scale) ** 2
        for term in c.economic:
            if term.terminal:
                obj += term.weight * y_end[y_index[term.output]] / term.scale
        for j, con in enumerate(term_cons):
            obj += _soft_band(g, lbg, ubg, y_end[y_index[con.output]], con, S_term[j])

        w = ca.vertcat(ca.vec(Z), ca.vec(XC), ca.vec(V), ca.vec(S_path), S_term)
        self._tau = tau
        self._n_z, self._n_c, self._n_v = nx * n, nx * deg * n, nmv * n
        self._n_sp, self._n_st = len(path_cons) * n, len(term_cons)
        lbw = np.concatenate([np.full(self._n_z + self._n_c, -np.inf), np.full(self._n_v, -1.0),
                              np.zeros(self._n_sp + self._n_st)])
        ubw = np.concatenate([np.full(self._n_z + self._n_c, np.inf), np.full(self._n_v, 1.0),
                              np.full(self._n_sp + self._n_st, np.inf)])
        self._lbw, self._ubw = lbw, ubw
        self._lbg, self._ubg = np.array(lbg, dtype=float), np.array(ubg, dtype=float)
        ipopt = {"print_level": 0, "sb": "yes", "max_cpu_time": float(c.max_cpu_time_s), "max_iter": int(c.max_iter),
                 "tol": float(c.tolerance), "acceptable_iter": 0, "mu_strategy": "adaptive"}
        ipopt.update(dict(c.ipopt_options))
        nlp = {"x": w, "p": params, "f": obj, "g": ca.vertcat(*g)}
        common = {"print_time": False, "error_on_fail": False}
        self._solver = ca.nlpsol("nmpc", "ipopt", nlp, {"ipopt": ipopt, **common})
        # Same NLP, IPOPT started from the previous primal-dual solution (few barrier iterations needed).
        warm = {**ipopt, "warm_start_init_point": "yes", "warm_start_bound_push": 1e-6,
                "warm_start_mult_bound_push": 1e-6, "mu_init": 1e-4}
        warm.update(dict(c.ipopt_options))
        self._solver_warm = (ca.nlpsol("nmpc_warm", "ipopt", nlp, {"ipopt": warm, **common})
                             if c.warm_start_duals else self._solver)
        Y = ca.horzcat(*outputs_at_nodes)
        self._outputs_fn = ca.Function("nmpc_outputs", [w, params], [Y, ca.repmat(P_sx, 1, n) * Z, U])
        self._scale_floor = np.ones(nx)
        for name, sl in m.state_slices.items():
            self._scale_floor[sl] = float(c.state_scales.get(name, 1.0))

    # -- stepping ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start (the next step initialises by simulating with the inputs held).

        Returns at once, also while a step runs in another thread; that step's solution is then not kept.
        """
        with self._state_lock:
            self._generation += 1
            self._previous = None

    @property
    def has_warm_start(self) -> bool:
        """True when the next step starts from the previous solution."""
        return self._previous is not None

    def interval_lengths(self, time_s: float, batch_end_s: float | None) -> np.ndarray:
        """Interval lengths (s) of the horizon used at ``time_s``."""
        c = self.config
        if c.horizon_mode is HorizonMode.RECEDING:
            return np.full(c.horizon, c.sample_period_s)
        if batch_end_s is None:
            raise NmpcConfigError("a SHRINKING horizon needs batch_end_s at every step")
        remaining = max(float(batch_end_s) - float(time_s), 0.0)
        first = min(c.sample_period_s, remaining)
        dt = np.full(c.horizon, (remaining - first) / max(c.horizon - 1, 1) if c.horizon > 1 else 0.0)
        dt[0] = first if c.horizon > 1 else remaining
        return dt

    def step(self, time_s: float, states: Mapping[str, float | np.ndarray], previous_inputs: Mapping[str, float],
             references: Mapping[str, float] | None = None, parameters: Mapping[str, float] | None = None,
             disturbances: Mapping[str, float | np.ndarray] | None = None,
             batch_end_s: float | None = None) -> NmpcResult:
        """Solve the NLP once from the current state estimate.

        ``previous_inputs``: the last applied value of every manipulated input (start of the rate limit).
        ``references``: one value per tracked output and terminal target, keyed by output name.
        ``parameters``: model parameter overrides (e.g. the estimator's parameter estimates).
        ``disturbances``: values of all non-manipulated inputs, held over the horizon.
        ``batch_end_s``: batch end time (s) for a SHRINKING horizon.

        Thread-safe: concurrent calls run one after the other.
        """
        with self._solve_lock:
            return self._step(time_s, states, previous_inputs, references, parameters, disturbances, batch_end_s)

    def _step(self, time_s: float, states: Mapping[str, float | np.ndarray], previous_inputs: Mapping[str, float],
              references: Mapping[str, float] | None, parameters: Mapping[str, float] | None,
              disturbances: Mapping[str, float | np.ndarray] | None, batch_end_s: float | None) -> NmpcResult:
        with self._state_lock:
            generation, previous = self._generation, self._previous
        m, c = self.model, self.config
        x0 = m.pack_states(states)
        missing_u = [nm for nm in self._mv_names if nm not in previous_inputs]
        if missing_u:
            raise NmpcConfigError(f"previous_inputs missing {missing_u}")
        u_prev = np.array([float(previous_inputs[nm]) for nm in self._mv_names])
        refs = dict(references or {})
        ref_vec = []
        for term in (*c.tracking, *c.terminal_targets):
            if term.output not in refs:
                raise NmpcConfigError(f"references missing a value for output '{term.output}'")
            ref_vec.append(float(refs[term.output]))
        dist = dict(disturbances or {})
        missing_d = [nm for nm in self._dv_names if nm not in dist]
        if missing_d:
            raise NmpcConfigError(f"disturbances missing values for inputs {missing_d}")
        dv = (np.concatenate([np.atleast_1d(np.asarray(dist[nm], dtype=float)).ravel() for nm in self._dv_names])
              if self._dv_names else np.zeros(0))
        p = m.pack_parameters(parameters)
        dt = self.interval_lengths(time_s, batch_end_s)
        x_scale = np.maximum(np.abs(x0), self._scale_floor)
        pvec = np.concatenate([x0, x_scale, u_prev, p, [float(time_s)], dt, ref_vec, dv])
        if not np.all(np.isfinite(pvec)):
            raise NmpcConfigError(f"non-finite NMPC inputs at t={time_s} s (state, inputs, parameters or references)")
        bounds = {"lbx": self._lbw, "ubx": self._ubw, "lbg": self._lbg, "ubg": self._ubg}
        lo = np.array([mi.lower for mi in c.inputs])
        hi = np.array([mi.upper for mi in c.inputs])
        move = np.array([mi.max_move for mi in c.inputs])
        box_lo = np.maximum(lo, u_prev - move)
        box_hi = np.minimum(hi, u_prev + move)
        elapsed, iterations, statuses = 0.0, 0, []
        while True:
            warm = previous is not None and self.config.warm_start_duals
            w0 = self._initial_guess(x0, x_scale, u_prev, p, float(time_s), dt, dv, previous)
            solver = self._solver_warm if warm else self._solver
            extra = {}
            if warm:
                assert previous is not None
                extra = {"lam_x0": previous["lam_x"], "lam_g0": previous["lam_g"]}
            started = time.perf_counter()
            sol = solver(x0=w0, p=pvec, **bounds, **extra)
            elapsed += time.perf_counter() - started
            stats = solver.stats()
            iterations += int(stats.get("iter_count", 0))
            statuses.append(str(stats.get("return_status", "unknown")))
            w = np.asarray(sol["x"], dtype=float).ravel()
            y_nodes, x_nodes, u_nodes = (np.asarray(a, dtype=float) for a in self._outputs_fn(w, pvec))
            # IPOPT meets bounds/constraints to its tolerance: snap the first move into the hard box (bounds and
            # rate limit from the last applied value); a violation above 1e-6 of the input span is a failure.
            raw_first = u_nodes[:, 0]
            u_first = np.clip(raw_first, box_lo, box_hi)
            finite = bool(np.all(np.isfinite(w)))
            within = bool(np.all(np.abs(u_first - raw_first) <= 1e-6 * (hi - lo)))
            success = bool(stats.get("success", False)) and finite and within
            if success or not (warm and self.config.retry_cold):
                break
            previous = None  # a failed warm start is retried once from the cold initial guess
        status = statuses[-1] if len(statuses) == 1 else f"{statuses[-1]} (cold retry after {statuses[0]})"
        kept = None
        if success:
            kept = {"x": x_nodes, "u": u_nodes, "s": w[self._n_z + self._n_c + self._n_v:],
                    "lam_x": np.asarray(sol["lam_x"], dtype=float).ravel(),
                    "lam_g": np.asarray(sol["lam_g"], dtype=float).ravel()}
        with self._state_lock:
            if generation == self._generation:  # else reset() was called meanwhile: keep nothing
                self._previous = kept
        units = {i.name: i.unit for i in m.declaration.inputs}
        reason = f"nmpc {status}, {iterations} iterations"
        commands = tuple(SetpointCommand(name=nm, value=float(u_first[i]), unit=units[nm], reason=reason,
                                         source_mode=ControlMode.MPC, time_s=float(time_s))
                         for i, nm in enumerate(self._mv_names))
        times = float(time_s) + np.concatenate([[0.0], np.cumsum(dt)])
        u_full_first = m.pack_inputs({**{nm: u_first[i] for i, nm in enumerate(self._mv_names)},
                                      **{nm: dist[nm] for nm in self._dv_names}})
        y0 = np.asarray(m.output(x0, u_full_first, p, float(time_s)), dtype=float).ravel()
        y_all = np.column_stack([y0, y_nodes])
        x_all = np.column_stack([x0, x_nodes])
        trajectory = PredictedTrajectory(
            times_s=times,
            states={nm: x_all[sl].squeeze(0) if sl.stop - sl.start == 1 else x_all[sl]
                    for nm, sl in m.state_slices.items()},
            outputs={nm: y_all[sl].squeeze(0) if sl.stop - sl.start == 1 else y_all[sl]
                     for nm, sl in m.output_slices.items()},
            inputs={nm: u_nodes[i].copy() for i, nm in enumerate(self._mv_names)},
        )
        objective = float(sol["f"]) if np.isfinite(float(sol["f"])) else math.nan
        return NmpcResult(time_s=float(time_s), commands=commands, success=success, status=status,
                          solve_time_s=elapsed, iterations=iterations, objective=objective,
                          trajectory=trajectory)

    def _initial_guess(self, x0: np.ndarray, x_scale: np.ndarray, u_prev: np.ndarray, p: np.ndarray, t0: float,
                       dt: np.ndarray, dv: np.ndarray, previous: dict[str, np.ndarray] | None) -> np.ndarray:
        n, nmv = self.config.horizon, len(self._mv_names)
        lo = self._u_offset - self._u_span
        hi = self._u_offset + self._u_span
        if previous is not None and self.config.horizon_mode is HorizonMode.SHRINKING:
            # shrinking horizon: node k stays at about the same fraction of the remaining batch -> reuse as is
            u_nodes, x_nodes, slacks = previous["u"], previous["x"], previous["s"]
        elif previous is not None:
            # receding horizon: shift the previous solution by one interval, repeating the last one
            u_nodes = np.column_stack([previous["u"][:, 1:], previous["u"][:, -1:]])
            x_nodes = np.column_stack([previous["x"][:, 1:], previous["x"][:, -1:]])
            slacks = previous["s"]
        else:
            u_hold = np.clip(u_prev, lo, hi)
            u_nodes = np.repeat(u_hold[:, None], n, axis=1)
            x_nodes = np.zeros((self.model.nx, n))
            x, t = x0, t0
            for k in range(n):
                u_full = self._full_input_numeric(u_nodes[:, k], dv)
                x = np.asarray(self._interval(x, u_full, p, t, dt[k]), dtype=float).ravel()
                if not np.all(np.isfinite(x)):
                    x = x_nodes[:, k - 1] if k else x0
                x_nodes[:, k] = x
                t += dt[k]
            slacks = np.zeros(self._n_sp + self._n_st)
        u_nodes = np.clip(u_nodes, lo[:, None], hi[:, None])
        v = (u_nodes - self._u_offset[:, None]) / self._u_span[:, None]
        z = x_nodes / x_scale[:, None]
        assert v.shape == (nmv, n)
        deg = len(self._tau) - 1
        if deg:  # collocation states: linear between the interval's start and end node
            starts = np.column_stack([x0 / x_scale, z[:, :-1]])
            xc = np.concatenate([starts[:, [k]] + np.asarray(self._tau[1:])[None, :] * (z[:, [k]] - starts[:, [k]])
                                 for k in range(n)], axis=1)
        else:
            xc = np.zeros((self.model.nx, 0))
        return np.concatenate([z.ravel(order="F"), xc.ravel(order="F"), v.ravel(order="F"), slacks])

    def _full_input_numeric(self, u_mv: np.ndarray, dv: np.ndarray) -> np.ndarray:
        parts, dv_pos = [], 0
        for spec in self.model.declaration.inputs:
            if spec.name in self._mv_names:
                parts.append(np.array([u_mv[self._mv_names.index(spec.name)]]))
            else:
                parts.append(dv[dv_pos:dv_pos + spec.size])
                dv_pos += spec.size
        return np.concatenate(parts) if parts else np.zeros(0)
