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

The NLP is built once in stages ``[x_0 u_0 x_1 u_1 ... x_N]`` (the layout structure-exploiting solvers read),
parametric in current state, state scales, last inputs, model parameters, time, interval lengths, references and
disturbance inputs; :meth:`NonlinearMpc.step` costs one solve (IPOPT unless ``NmpcConfig.solver`` says otherwise,
:mod:`controllers.nmpc_solvers`), warm-started from
the previous primal-dual solution (shifted by one interval for a receding horizon; as is for a shrinking one,
whose nodes stay at the same fractions of the remaining batch). A failed warm-started solve is retried once cold.

Threads: :meth:`NonlinearMpc.step` may run in a worker thread (the twin does, bounded by a deadline it cannot
enforce on IPOPT). Steps are serialised by a lock (the casadi solvers' work memory is not safe for concurrent
calls: overlapping solves gave ``Invalid_Number_Detected`` and heap corruption), and :meth:`NonlinearMpc.reset`
takes effect at once: a solve still running when it is called (e.g. the last one of a finished batch) does not
leave its solution behind as the next batch's warm start.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum

import casadi as ca
import numpy as np

from controllers.codegen_cache import CodegenOutcome
from controllers.commands import ControlMode, SetpointCommand
from controllers.nmpc_solvers import NlpSolvers, OcpStructure, SolverOptions, build_solvers
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
    take up to twice ``max_cpu_time_s``; the supervisor's deadline still applies); ``solver``: how the NLP is solved
    (:class:`controllers.nmpc_solvers.SolverOptions`: IPOPT by default, fatrop, SQP with HPIPM or qrqp, RTI,
    compiled C).
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
    solver: SolverOptions = field(default_factory=SolverOptions)

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


def _part(vector: ca.SX, start: int, stop: int) -> ca.SX:
    """``vector[start:stop]``, an empty column when ``start == stop`` (casadi's empty slice is not)."""
    return vector[start:stop] if stop > start else ca.SX(0, 1)


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


_DEFERRED_BUILD: ContextVar[bool] = ContextVar("linetwin_nmpc_deferred_build", default=False)


@contextlib.contextmanager
def deferred_nlp_build() -> Iterator[None]:
    """Inside, a :class:`NonlinearMpc` validates its configuration in the constructor (as always) but builds its NLP
    and solvers at first use (:meth:`~NonlinearMpc.step`, :attr:`~NonlinearMpc.codegen`, :meth:`~NonlinearMpc.build`),
    not in the constructor: for plans built for their model and instruments only (``linetwin fit``, ``linetwin
    forecast``) or for recipe batches that never solve (the stepped loop); the pilot crystallizer's NLP and IPOPT
    take ~0.7 CPU s to build."""
    token = _DEFERRED_BUILD.set(True)
    try:
        yield
    finally:
        _DEFERRED_BUILD.reset(token)


class NonlinearMpc:
    """NMPC for a :class:`CompiledModel`; the NLP is built once, in the constructor (at first use inside
    :func:`deferred_nlp_build`), and reused by :meth:`step`."""

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
        self._built = False
        self._build_lock = threading.Lock()
        if not _DEFERRED_BUILD.get():
            self.build()
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
    def build(self) -> None:
        """Build the NLP and its solvers now, if not built yet (constructed inside :func:`deferred_nlp_build`):
        a caller that will solve calls it before its loop, so that a build failure is raised, not taken for a failed
        solve."""
        if self._built:
            return
        with self._build_lock:
            if not self._built:
                self._build()
                self._built = True

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

        # Decision variables in stages (the layout structure-exploiting solvers need: [x_0 u_0 x_1 u_1 ... x_N]).
        # Stage state x_k = [Z_k, Vprev_k, Sprev_k]: scaled model state at node k, scaled input of interval k-1,
        # slacks chosen for node k; stage control u_k = [V_k, XC_k, S_k] (k < N): scaled input and collocation
        # states of interval k, slacks of node k+1. x_0 is fixed by bounds (current state, last input, no slack),
        # so every constraint and cost term involves one stage only (plus the gap x_{k+1} = F(x_k, u_k)).
        collocation = c.discretization is Discretization.COLLOCATION
        deg = c.collocation_degree if collocation else 0
        tau, c_mat, d_vec = _radau_coefficients(deg) if collocation else ([0.0], np.zeros((1, 1)), np.ones(1))
        lo = np.array([mi.lower for mi in c.inputs])
        hi = np.array([mi.upper for mi in c.inputs])
        self._u_offset, self._u_span = (lo + hi) / 2, (hi - lo) / 2
        path_cons = [k for k in c.constraints if not k.terminal]
        term_cons = [k for k in c.constraints if k.terminal]
        nsl = len(path_cons) + len(term_cons)
        nxa, nua = nx + nmv + nsl, nmv + nx * deg + nsl
        Xs = [ca.SX.sym(f"x{k}", nxa) for k in range(n + 1)]
        Us = [ca.SX.sym(f"u{k}", nua) for k in range(n)]

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

        def unscaled_input(v: ca.SX) -> ca.SX:
            return ca.DM(self._u_offset) + ca.DM(self._u_span) * v

        g, lbg, ubg = [], [], []  # in stage order: [gap_0, stage_0, gap_1, stage_1, ..., stage_N]
        sg, slb, sub = [], [], []  # constraints of the current stage
        stage_counts: list[int] = []
        residuals: list[ca.SX] = []  # objective = sum of squared residuals + linear terms (Gauss-Newton split)
        linear: list[ca.SX] = []
        y_index = {v.name: m.output_slices[v.name].start for v in m.declaration.outputs}
        ts_ = c.sample_period_s

        def band(y: ca.SX, con: OutputConstraint, slack: ca.SX, weight: ca.SX | float) -> None:
            _soft_band(sg, slb, sub, y, con, slack)
            linear.append(weight * con.weight * slack)
            residuals.append(ca.sqrt(weight * con.weight) * slack)

        def flush_stage() -> None:
            stage_counts.append(sum(e.numel() for e in sg))
            g.extend(sg)
            lbg.extend(slb)
            ubg.extend(sub)
            sg.clear()
            slb.clear()
            sub.clear()

        outputs_at_nodes = []
        t_node = P_t0
        for k in range(n + 1):
            zk, vprev, sprev = _part(Xs[k], 0, nx), _part(Xs[k], nx, nx + nmv), _part(Xs[k], nx + nmv, nxa)
            if k >= 1:  # node k: outputs with the input of interval k-1, path terms, soft bands
                x_node = zk * P_sx
                y = m.output(x_node, full_input(unscaled_input(vprev)), P_p, t_node)
                outputs_at_nodes.append(y)
                weight_k = P_dt[k - 1] / ts_
                for i, term in enumerate(c.tracking):
                    residuals.append(ca.sqrt(term.weight * weight_k)
                                     * (y[y_index[term.output]] - P_ref[i]) / term.scale)
                for term in c.economic:
                    if not term.terminal:
                        linear.append(term.weight * weight_k * y[y_index[term.output]] / term.scale)
                for j, con in enumerate(path_cons):
                    band(y[y_index[con.output]], con, sprev[j], weight_k)
            if k == n:  # terminal terms on the last node
                n_track = len(c.tracking)
                for i, term in enumerate(c.terminal_targets):
                    residuals.append(math.sqrt(term.weight)
                                     * (y[y_index[term.output]] - P_ref[n_track + i]) / term.scale)
                for term in c.economic:
                    if term.terminal:
                        linear.append(term.weight * y[y_index[term.output]] / term.scale)
                for j, con in enumerate(term_cons):
                    band(y[y_index[con.output]], con, sprev[len(path_cons) + j], 1.0)
                flush_stage()
                break
            vk, xck, sk = _part(Us[k], 0, nmv), _part(Us[k], nmv, nmv + nx * deg), _part(Us[k], nmv + nx * deg, nua)
            uk = full_input(unscaled_input(vk))
            h = P_dt[k]
            # gap: x_{k+1} = F(x_k, u_k)
            if collocation:
                points = [zk] + [xck[r * nx:(r + 1) * nx] for r in range(deg)]
                z_next = sum(d_vec[j] * points[j] for j in range(deg + 1))
            else:
                z_next = self._interval(zk * P_sx, uk, P_p, t_node, h) / P_sx
            gap = Xs[k + 1] - ca.vertcat(z_next, vk, sk)
            g.append(gap)
            lbg.extend([0.0] * nxa)
            ubg.extend([0.0] * nxa)
            # stage k: collocation equations, rate limits and move suppression of interval k
            for r in range(1, deg + 1):
                slope = sum(c_mat[j, r] * points[j] for j in range(deg + 1))
                sg.append(slope - h * m.rhs(points[r] * P_sx, uk, P_p, t_node + tau[r] * h) / P_sx)
                slb.extend([0.0] * nx)
                sub.extend([0.0] * nx)
            move = unscaled_input(vk) - unscaled_input(vprev)
            for i, mi in enumerate(c.inputs):
                if mi.move_weight > 0:
                    norm = mi.max_move if math.isfinite(mi.max_move) else 1.0
                    residuals.append(math.sqrt(mi.move_weight) * move[i] / norm)
                if math.isfinite(mi.max_move):
                    limit = mi.max_move if k == 0 else mi.max_move * P_dt[k - 1] / ts_
                    sg.append(move[i] - limit)
                    slb.append(-math.inf)
                    sub.append(0.0)
                    sg.append(move[i] + limit)
                    slb.append(0.0)
                    sub.append(math.inf)
            flush_stage()
            t_node = t_node + h

        w = ca.vertcat(*[v for k in range(n) for v in (Xs[k], Us[k])], Xs[n])
        residual = ca.vertcat(*residuals) if residuals else ca.SX(0, 1)
        obj = ca.sumsqr(residual) + (sum(linear) if linear else 0)
        # index maps into w
        stage = nxa + nua
        self._stage_sizes = (nxa, nua)
        idx_x = np.array([[k * stage + i for k in range(n + 1)] for i in range(nxa)])
        idx_u = np.array([[k * stage + nxa + i for k in range(n)] for i in range(nua)])
        self._idx_z, self._idx_vprev, self._idx_sprev = idx_x[:nx], idx_x[nx:nx + nmv], idx_x[nx + nmv:]
        self._idx_v, self._idx_xc, self._idx_s = idx_u[:nmv], idx_u[nmv:nmv + nx * deg], idx_u[nmv + nx * deg:]
        self._tau = tau
        self._nw = w.numel()
        self._n_path = len(path_cons)
        lbw, ubw = np.full(self._nw, -np.inf), np.full(self._nw, np.inf)
        lbw[self._idx_v.ravel()], ubw[self._idx_v.ravel()] = -1.0, 1.0
        lbw[self._idx_vprev.ravel()], ubw[self._idx_vprev.ravel()] = -1.0, 1.0
        lbw[self._idx_s.ravel()], lbw[self._idx_sprev.ravel()] = 0.0, 0.0
        # slacks a stage does not use (terminal slacks before the end, path slacks at node 0) are fixed at 0
        lbw[self._idx_sprev[:, 0]] = ubw[self._idx_sprev[:, 0]] = 0.0
        ubw[self._idx_s[len(path_cons):, :-1].ravel()] = 0.0
        self._lbw, self._ubw = lbw, ubw
        self._lbg, self._ubg = np.array(lbg, dtype=float), np.array(ubg, dtype=float)
        self._nlp = {"x": w, "p": params, "f": obj, "g": ca.vertcat(*g)}
        self._structure = OcpStructure(horizon=n, nx=[nxa] * (n + 1), nu=[nua] * n,
                                       ng=stage_counts)
        self._solvers: NlpSolvers = build_solvers(self._nlp, residual, c.solver, self._structure,
                                                  self._ipopt_options(), self._lbg == self._ubg,
                                                  model_name=m.declaration.name,
                                                  warm_start_duals=c.warm_start_duals, tolerance=c.tolerance)
        Y = ca.horzcat(*outputs_at_nodes)
        Zs = ca.horzcat(*[Xs[k][:nx] for k in range(1, n + 1)])
        Vs = ca.horzcat(*[Us[k][:nmv] for k in range(n)])
        self._outputs_fn = ca.Function("nmpc_outputs", [w, params],
                                       [Y, ca.repmat(P_sx, 1, n) * Zs, unscaled_input(Vs) if nmv else Vs])
        self._scale_floor = np.ones(nx)
        for name, sl in m.state_slices.items():
            self._scale_floor[sl] = float(c.state_scales.get(name, 1.0))

    def _ipopt_options(self) -> dict[str, object]:
        c = self.config
        ipopt = {"print_level": 0, "sb": "yes", "max_cpu_time": float(c.max_cpu_time_s), "max_iter": int(c.max_iter),
                 "tol": float(c.tolerance), "acceptable_iter": 0, "mu_strategy": "adaptive"}
        ipopt.update(dict(c.ipopt_options))
        return ipopt

    # -- stepping ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start (the next step initialises by simulating with the inputs held).

        Returns at once, also while a step runs in another thread; that step's solution is then not kept.
        """
        with self._state_lock:
            self._generation += 1
            self._previous = None

    @property
    def codegen(self) -> list[CodegenOutcome]:
        """How each code-generated solver was built (empty without ``SolverOptions.codegen``)."""
        self.build()
        return list(self._solvers.codegen)

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
        self.build()
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
        lbx, ubx = self._lbw.copy(), self._ubw.copy()
        fixed = np.concatenate([x0 / x_scale, (u_prev - self._u_offset) / self._u_span])
        lbx[self._idx_z[:, 0]] = ubx[self._idx_z[:, 0]] = fixed[:m.nx]  # stage 0: the current state,
        lbx[self._idx_vprev[:, 0]] = ubx[self._idx_vprev[:, 0]] = fixed[m.nx:]  # the last applied input
        bounds = {"lbx": lbx, "ubx": ubx, "lbg": self._lbg, "ubg": self._ubg}
        lo = np.array([mi.lower for mi in c.inputs])
        hi = np.array([mi.upper for mi in c.inputs])
        move = np.array([mi.max_move for mi in c.inputs])
        box_lo = np.maximum(lo, u_prev - move)
        box_hi = np.minimum(hi, u_prev + move)
        elapsed, iterations, statuses = 0.0, 0, []
        while True:
            warm = previous is not None and self.config.warm_start_duals
            w0 = self._initial_guess(x0, x_scale, u_prev, p, float(time_s), dt, dv, previous)
            solver = self._solvers.warm if warm else self._solvers.cold
            extra = {}
            if warm:
                assert previous is not None
                extra = {"lam_x0": previous["lam_x"], "lam_g0": previous["lam_g"]}
            started = time.perf_counter()
            sol = solver(x0=w0, p=pvec, **bounds, **extra)
            elapsed += time.perf_counter() - started
            converged, solver_status, solver_iterations = NlpSolvers.outcome(solver, warm and self._solvers.rti)
            iterations += solver_iterations
            statuses.append(solver_status)
            w = np.asarray(sol["x"], dtype=float).ravel()
            y_nodes, x_nodes, u_nodes = (np.asarray(a, dtype=float) for a in self._outputs_fn(w, pvec))
            # solvers meet bounds/constraints to their tolerance: snap the first move into the hard box (bounds and
            # rate limit from the last applied value); a violation above 1e-6 of the input span is a failure.
            raw_first = u_nodes[:, 0]
            u_first = np.clip(raw_first, box_lo, box_hi)
            finite = bool(np.all(np.isfinite(w)))
            within = bool(np.all(np.abs(u_first - raw_first) <= 1e-6 * (hi - lo)))
            success = converged and finite and within
            if success or not (warm and self.config.retry_cold):
                break
            previous = None  # a failed warm start is retried once from the cold initial guess
        status = statuses[-1] if len(statuses) == 1 else f"{statuses[-1]} (cold retry after {statuses[0]})"
        kept = None
        if success:
            kept = {"w": w, "x_scale": x_scale, "lam_x": np.asarray(sol["lam_x"], dtype=float).ravel(),
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
        """Initial guess in the staged layout: the previous solution (shifted by one interval for a receding
        horizon; as is for a shrinking one, whose nodes stay at the same fractions of the remaining batch), else a
        simulation with the last inputs held. Stage 0 holds the current state and last input either way."""
        n, nx = self.config.horizon, self.model.nx
        v_prev = np.clip((u_prev - self._u_offset) / self._u_span, -1.0, 1.0)
        if previous is not None:
            w = previous["w"].copy()
            if self.config.horizon_mode is HorizonMode.RECEDING:
                stage = sum(self._stage_sizes)  # shift by one stage; the last control and node repeat
                w[:-stage] = previous["w"][stage:]
            # the state scale follows |x0|: re-express the previous nodes in this step's scale
            w[self._idx_z] *= (previous["x_scale"] / x_scale)[:, None]
            if len(self._tau) > 1:
                w[self._idx_xc] *= np.tile(previous["x_scale"] / x_scale, len(self._tau) - 1)[:, None]
        else:
            lo = self._u_offset - self._u_span
            hi = self._u_offset + self._u_span
            u_hold = np.clip(u_prev, lo, hi)
            w = np.zeros(self._nw)
            x, t = x0, t0
            z_nodes = np.zeros((nx, n + 1))
            for k in range(n):
                u_full = self._full_input_numeric(u_hold, dv)
                x_next = np.asarray(self._interval(x, u_full, p, t, dt[k]), dtype=float).ravel()
                x = x_next if np.all(np.isfinite(x_next)) else x
                z_nodes[:, k + 1] = x / x_scale
                t += dt[k]
            w[self._idx_z[:, 1:]] = z_nodes[:, 1:]
            w[self._idx_v] = ((u_hold - self._u_offset) / self._u_span)[:, None]
            w[self._idx_vprev[:, 1:]] = w[self._idx_v]
            deg = len(self._tau) - 1
            if deg:  # collocation states: linear between the interval's start and end node
                z_nodes[:, 0] = x0 / x_scale
                for k in range(n):
                    for r in range(deg):
                        w[self._idx_xc[r * nx:(r + 1) * nx, k]] = (z_nodes[:, k] + self._tau[r + 1]
                                                                   * (z_nodes[:, k + 1] - z_nodes[:, k]))
        w[self._idx_z[:, 0]] = x0 / x_scale
        w[self._idx_vprev[:, 0]] = v_prev
        w[self._idx_sprev[:, 0]] = 0.0
        return w

    def _full_input_numeric(self, u_mv: np.ndarray, dv: np.ndarray) -> np.ndarray:
        parts, dv_pos = [], 0
        for spec in self.model.declaration.inputs:
            if spec.name in self._mv_names:
                parts.append(np.array([u_mv[self._mv_names.index(spec.name)]]))
            else:
                parts.append(dv[dv_pos:dv_pos + spec.size])
                dv_pos += spec.size
        return np.concatenate(parts) if parts else np.zeros(0)
