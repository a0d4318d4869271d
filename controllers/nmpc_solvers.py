"""NMPC solver options as data, and the casadi solvers built from them once.

Methods (casadi 3.8 plugins, all on the same staged NLP of :class:`controllers.nmpc.NonlinearMpc`):

* ``ipopt``: interior point, exact Hessian (A. Waechter, L. T. Biegler, Math. Program. 106 (2006) 25-57).
* ``fatrop``: structure-exploiting interior point for optimal control (L. Vanroye, A. Sathya, J. De Schutter,
  W. Decre, IROS 2023); casadi's structure detection (``structure_detection = "auto"``) reads the stages from
  the NLP's ordering ``[x_0 u_0 x_1 u_1 ... x_N]`` with gap constraints ``x_{k+1} = F(x_k, u_k)``.
* ``sqp_hpipm``: casadi's ``sqpmethod`` whose QPs are solved by HPIPM's Riccati-based interior point
  (G. Frison, M. Diehl, IFAC 2020) with the stage structure (``N``, ``nx``, ``nu``, ``ng``) given.
* ``sqp_qrqp``: ``sqpmethod`` with casadi's dense active-set ``qrqp`` (no structure; small problems).

SQP methods take an ``exact`` Hessian of the Lagrangian (regularised to be convex) or the ``gauss_newton``
one: the objective is ``||r(w)||^2 + linear terms``, and H = 2 J_r^T J_r ignores the constraints' and the linear
terms' curvature (H. G. Bock, 1983; generalised Gauss-Newton for MPC: M. Diehl et al., J. Process Control 12
(2002) 577-585) — positive semidefinite, no regularisation, one derivative order less. ``rti``: real-time
iteration (M. Diehl, H. G. Bock, J. P. Schloeder, SIAM J. Control Optim. 43 (2005) 1714-1736): one full SQP
step per sample from the shifted previous solution, no line search.

Cold solves (first step of a batch, after a reset, retry of a failed warm solve) are IPOPT's for every method:
from a simulated initial guess an SQP with a line search is not robust on the batch crystallizer (it diverged in
trials), and on this nonconvex problem fatrop from a cold guess may end in another local optimum than IPOPT; once
warm, every method continues from the same solution.

``codegen``: compile the solver's functions to C and cache them (:mod:`controllers.codegen_cache`).

Derivatives shared in a process: building an IPOPT solver differentiates the NLP (Lagrangian Hessian, constraint
Jacobian, objective gradient: ~0.25 of the ~0.3 CPU s a cold build of the pilot crystallizer's NMPC takes). The
NLP depends on the model, horizon and objective, not on parameter values (those are NLP parameters), so NMPCs of
one plan built again — a twin started again in the process, a stepped batch's plan for other options, a
commissioning run's plans — differentiate the same NLP. :data:`SHARED_DERIVATIVES` keeps the derivative
functions of the last two NLPs, keyed by a hash of the NLP's serialised expression graph; a cold IPOPT solver of
the same NLP takes them instead of differentiating again (0.30 → 0.05 CPU s), as the warm solver takes its cold
one's. The same functions give the same iterates, bit for bit. Solvers sharing them may solve at the same time
in different threads (casadi evaluates a function in the memory of the calling solver); one solver is still
never called from two threads at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import casadi as ca
import numpy as np

from controllers.codegen_cache import CodegenOutcome, compiled_nlpsol

__all__ = ["SHARED_DERIVATIVES", "DerivativeCache", "Hessian", "NlpSolvers", "OcpStructure", "SolverMethod",
           "SolverOptions", "build_solvers"]


class SolverMethod(str, Enum):
    IPOPT = "ipopt"
    FATROP = "fatrop"
    SQP_HPIPM = "sqp_hpipm"
    SQP_QRQP = "sqp_qrqp"


class Hessian(str, Enum):
    EXACT = "exact"
    GAUSS_NEWTON = "gauss_newton"


@dataclass(frozen=True)
class SolverOptions:
    """How the NMPC's NLP is solved (see the module docstring).

    ``method``: one of :class:`SolverMethod`; ``rti``: one SQP iteration per sample (SQP methods only);
    ``hessian``: SQP Hessian, exact or Gauss-Newton; ``max_sqp_iter``: SQP iterations per fully converged solve;
    ``codegen``: compile to C with a disk cache in ``cache_dir`` (None: ``$XDG_CACHE_HOME/linetwin/nmpc``).
    """

    method: SolverMethod = SolverMethod.IPOPT
    rti: bool = False
    hessian: Hessian = Hessian.EXACT
    max_sqp_iter: int = 50
    codegen: bool = False
    cache_dir: str | Path | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", SolverMethod(self.method))
            object.__setattr__(self, "hessian", Hessian(self.hessian))
        except ValueError as exc:
            raise ValueError(f"SolverOptions: {exc}; expected method one of "
                             f"{[m.value for m in SolverMethod]}, hessian one of {[h.value for h in Hessian]}"
                             ) from None
        if self.rti and not self.is_sqp:
            raise ValueError(f"SolverOptions: rti needs an SQP method (sqp_hpipm, sqp_qrqp), got {self.method.value}")
        if self.max_sqp_iter < 1:
            raise ValueError(f"SolverOptions: max_sqp_iter must be >= 1, got {self.max_sqp_iter}")

    @property
    def is_sqp(self) -> bool:
        return self.method in (SolverMethod.SQP_HPIPM, SolverMethod.SQP_QRQP)

    @property
    def label(self) -> str:
        """Short name for results and tables, e.g. ``sqp_hpipm+rti+gn+c``."""
        parts = [self.method.value]
        if self.rti:
            parts.append("rti")
        if self.is_sqp and self.hessian is Hessian.GAUSS_NEWTON:
            parts.append("gn")
        if self.codegen:
            parts.append("c")
        return "+".join(parts)


@dataclass(frozen=True)
class OcpStructure:
    """Stage dimensions of the staged NLP: ``horizon`` N, ``nx`` (N+1 values), ``nu`` (N), ``ng`` (N+1 non-gap
    constraints per stage)."""

    horizon: int
    nx: list[int]
    nu: list[int]
    ng: list[int]


@dataclass
class NlpSolvers:
    """The casadi solvers of one NMPC: ``cold`` (from a simulated guess), ``warm`` (from the previous primal-dual
    solution); ``rti``: whether ``warm`` stops after one SQP step; ``codegen``: how ``warm`` was built."""

    cold: ca.Function
    warm: ca.Function
    rti: bool = False
    codegen: list[CodegenOutcome] = field(default_factory=list)

    @staticmethod
    def outcome(solver: ca.Function, rti: bool) -> tuple[bool, str, int]:
        """(converged, status, iterations) of the last call of ``solver``."""
        stats = solver.stats()
        status = str(stats.get("return_status", "unknown"))
        iterations = int(stats.get("iter_count", 0))
        success = bool(stats.get("success", False))
        if rti and status == "Maximum_Iterations_Exceeded":
            return True, "RTI step", iterations
        if status == "0":  # fatrop reports its return code
            status = "Solve_Succeeded" if success else "fatrop return code 0"
        return success, status, iterations


def _gauss_newton_hessian(nlp: dict, residual: ca.SX) -> ca.Function:
    """``(x, p, lam_f, lam_g) -> lam_f * 2 J_r^T J_r``: the Gauss-Newton Hessian of ``||r||^2 + linear``."""
    jac = ca.jacobian(residual, nlp["x"])
    lam_f = ca.SX.sym("lam_f")
    lam_g = ca.SX.sym("lam_g", nlp["g"].numel())
    hessian = 2 * lam_f * ca.mtimes(jac.T, jac)
    return ca.Function("nlp_hess_l", [nlp["x"], nlp["p"], lam_f, lam_g], [hessian],
                       ["x", "p", "lam_f", "lam_g"], ["hess_gamma_x_x"])


_DERIVATIVES = {"hess_lag": "nlp_hess_l", "jac_g": "nlp_jac_g", "grad_f": "nlp_grad_f"}
"""nlpsol's options for the derivative functions of an NLP → the names under which a built solver holds them."""


def _derivatives_of(built: ca.Function, solver: SolverOptions) -> dict[str, ca.Function]:
    """The derivative functions (Lagrangian Hessian, constraint Jacobian, objective gradient) that casadi made by
    algorithmic differentiation for ``built``, as nlpsol options: a second IPOPT solver of the same NLP (the warm
    one, which differs only in IPOPT's options) takes them instead of differentiating the NLP again — the same
    functions, so the same iterates, and 0.30 → 0.05 CPU s for the second build of the pilot crystallizer's NMPC.
    Nothing (an empty mapping) for a code-generated solver: its functions are compiled under other names."""
    return {} if solver.codegen else _interpreted_derivatives(built)


def _interpreted_derivatives(built: ca.Function) -> dict[str, ca.Function]:
    """The derivative functions an interpreted (not code-generated) solver ``built`` holds, as nlpsol options."""
    return {option: built.get_function(name) for option, name in _DERIVATIVES.items()}


class DerivativeCache:
    """The derivative functions of the last ``capacity`` NLPs an IPOPT solver was built for, keyed by
    :func:`nlp_key` (see the module docstring); least recently used out first. Thread-safe. ``hits`` / ``misses``
    count the look-ups."""

    def __init__(self, capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError(f"DerivativeCache: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, dict[str, ca.Function]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, ca.Function] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, derivatives: dict[str, ca.Function]) -> None:
        with self._lock:
            self._entries[key] = derivatives
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


SHARED_DERIVATIVES = DerivativeCache()
"""The process's :class:`DerivativeCache`: two NLPs. An entry of the pilot crystallizer's NLP holds ~40 MB (its
Lagrangian Hessian alone is ~380,000 SX instructions) — the same functions its live NMPCs hold, so it costs memory
only once no NMPC of that NLP is left."""


def nlp_key(nlp: Mapping[str, ca.SX]) -> str:
    """SHA-256 of the NLP's (``x``, ``p`` → ``f``, ``g``) serialised expression graph: equal for NLPs built alike,
    whatever their symbols' identities (~15 ms for the pilot crystallizer's NLP, 1.7 MB serialised)."""
    function = ca.Function("nlp", [nlp["x"], nlp["p"]], [nlp["f"], nlp["g"]])
    return hashlib.sha256(function.serialize().encode()).hexdigest()


def _cold_ipopt(nlp: dict, options: dict) -> ca.Function:
    """The interpreted cold IPOPT solver of ``nlp``, on the derivative functions of :data:`SHARED_DERIVATIVES` when
    an NLP like it was differentiated before in this process."""
    key = nlp_key(nlp)
    derivatives = SHARED_DERIVATIVES.get(key)
    if derivatives is not None:
        return ca.nlpsol("nmpc", "ipopt", nlp, {**options, **derivatives})
    cold = ca.nlpsol("nmpc", "ipopt", nlp, options)
    SHARED_DERIVATIVES.put(key, _interpreted_derivatives(cold))
    return cold


def _build(name: str, plugin: str, nlp: dict, options: dict, solver: SolverOptions,
           outcomes: list[CodegenOutcome], hess_lag: ca.Function | None = None) -> ca.Function:
    if solver.codegen and hess_lag is None:
        built, outcome = compiled_nlpsol(name, plugin, nlp, options, solver.cache_dir)
        outcomes.append(outcome)
        return built
    extra = {"hess_lag": hess_lag} if hess_lag is not None else {}
    if solver.codegen:
        outcomes.append(CodegenOutcome("interpreted", reason="a Gauss-Newton Hessian is not code-generated"))
    return ca.nlpsol(name, plugin, nlp, {**options, **extra})


def build_solvers(nlp: dict, residual: ca.SX, solver: SolverOptions, structure: OcpStructure,
                  ipopt: Mapping[str, object], equality: np.ndarray, model_name: str = "nmpc",
                  warm_start_duals: bool = True, tolerance: float = 1e-6) -> NlpSolvers:
    """The cold and warm solvers of ``nlp`` for ``solver`` (see the module docstring). ``ipopt``: IPOPT options;
    ``equality``: which constraints are equalities (fatrop's structure detection needs it)."""
    common = {"print_time": False, "error_on_fail": False}
    outcomes: list[CodegenOutcome] = []
    ipopt_opts = {"ipopt": dict(ipopt), **common}
    warm_ipopt = {**ipopt, "warm_start_init_point": "yes", "warm_start_bound_push": 1e-6,
                  "warm_start_mult_bound_push": 1e-6, "mu_init": 1e-4}
    if solver.method is SolverMethod.IPOPT:
        cold = (_build("nmpc", "ipopt", nlp, ipopt_opts, solver, outcomes) if solver.codegen
                else _cold_ipopt(nlp, ipopt_opts))
        warm = (_build("nmpc_warm", "ipopt", nlp, {"ipopt": warm_ipopt, **common, **_derivatives_of(cold, solver)},
                       solver, outcomes)
                if warm_start_duals else cold)
        return NlpSolvers(cold, warm, codegen=outcomes)
    if solver.method is SolverMethod.FATROP:
        fatrop = {**common, "structure_detection": "auto", "equality": [bool(e) for e in equality],
                  "fatrop": {"print_level": 0, "tol": float(tolerance), "max_iter": int(ipopt.get("max_iter", 200))}}
        built = _build("nmpc_fatrop", "fatrop", nlp, fatrop, solver, outcomes)
        return NlpSolvers(_cold_ipopt(nlp, ipopt_opts), built, codegen=outcomes)
    cold = _cold_ipopt(nlp, ipopt_opts)
    sqp: dict[str, object] = {**common, "print_header": False, "print_iteration": False, "print_status": False,
                              "max_iter": 1 if solver.rti else int(solver.max_sqp_iter),
                              "tol_pr": float(tolerance), "tol_du": float(tolerance)}
    if solver.rti:
        sqp["max_iter_ls"] = 0  # full step, no line search
    if solver.method is SolverMethod.SQP_HPIPM:
        sqp["qpsol"] = "hpipm"
        sqp["qpsol_options"] = {"N": structure.horizon, "nx": structure.nx, "nu": [*structure.nu, 0],
                                "ng": structure.ng, "error_on_fail": False,
                                "hpipm": {"warm_start": 0, "mode": "robust"}}
    else:
        sqp["qpsol"] = "qrqp"
        sqp["qpsol_options"] = {"print_iter": False, "print_header": False, "error_on_fail": False}
    hess_lag = None
    if solver.hessian is Hessian.GAUSS_NEWTON:
        hess_lag = _gauss_newton_hessian(nlp, residual)
    else:
        sqp["convexify_strategy"] = "regularize"
    warm = _build("nmpc_sqp", "sqpmethod", nlp, sqp, solver, outcomes, hess_lag)
    return NlpSolvers(cold, warm, rti=solver.rti, codegen=outcomes)
