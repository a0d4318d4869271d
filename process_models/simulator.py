"""Simulating a compiled process model over a time grid with casadi's SUNDIALS integrators.

How a simulation is carried out
-------------------------------
* **One integrator per model, reused.** The right-hand side is integrated over a *normalised*
  interval ``s in [0, 1]`` with ``t = t_k + s * dt_k``, so a single casadi integrator (CVODES by
  default, IDAS / fixed-step ``rk`` / ``collocation`` on request) serves every interval length.
  Its parameter vector is ``q = [u_k; du_k; p; t_k; dt_k]``: on the span every input is the affine
  function of time ``u(t) = u_k + du_k * (t - t_k)``.
* **Programmed inputs are exact functions of time; the solver restarts only at their knots.** The
  integration grid is the union of the requested output times and every knot of the
  :class:`InputProgram` inputs (a knot within 1e-9 relative of an output time is that time), so
  no grid interval straddles a knot. On each interval ``[a, b]``:

  - a constant input keeps its value;
  - a ``"zoh"`` program takes the value of the step that holds the interval (right-continuous steps);
  - a ``"linear"`` program is its knot-to-knot line (value at ``a`` and the piece's slope), so a ramp
    is applied exactly, not sampled;
  - a plain callable (a Python function of ``t``, which cannot be made symbolic) is **held** at its
    value at the interval midpoint ``(a+b)/2``: second-order accurate in the interval length, and
    exact in the integral of a callable that is linear in time.

  The ``inputs`` array of a :class:`SimulationResult` holds the input values *at* the output
  times (``program.at(t)``, ``callable(t)``) and outputs are evaluated with them.
* **No Python per-step loop.** Two strategies, chosen per call:

  - *segments* (CVODES/IDAS, when the affine input pieces change on at most ``max(8, n/4)`` of the
    ``n`` grid intervals): each run of intervals on which every input is one affine function of time
    (between program knots, callables unchanged) is one solver run that reports at all its output
    times without restarting (an integrator with an output grid on the normalised span, cached by
    that grid); outputs are then evaluated for all times in one mapped call. A batch driven by one
    linear ramp is therefore one continuous CVODES run, and a discontinuity (a zoh step, the kink of
    a ramp) is always a restart point, so the solver never steps across it. This is the fast path
    (several times faster than restarting at every output time on stiff models);
  - *mapaccum* (callables or programs changing on most intervals, fixed-step integrators, and all
    sensitivity runs): the one-interval step is wrapped in ``Function.mapaccum`` over all intervals,
    so a whole trajectory (states *and* outputs) is still one casadi call, restarting the solver per
    interval (inputs still affine in time on each interval).

  Functions are cached per (model, thread, integrator, tolerances) and then per grid shape.
* **Threads.** The cache is per thread (a casadi Function must not be evaluated from two threads at
  once), and it is weakly keyed by the compiled model: dropping the model frees its integrators.
* **Batch phases** (charge, heat, hold, cool ...) are chained with :func:`simulate_phases`: each
  phase starts from the final state of the previous one.

Integrator reference: Hindmarsh et al., "SUNDIALS: Suite of nonlinear and differential/algebraic
equation solvers", ACM TOMS 31(3), 2005, 363-396; casadi: Andersson et al., Math. Prog. Comp. 11,
2019, 1-36.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import casadi as ca
import numpy as np

from process_models.declaration import CompiledModel, DeclarationError
from process_models.model_functions import PerModelFunctions

__all__ = [
    "InputProgram",
    "InputSpec",
    "Phase",
    "SimulationCase",
    "SimulationError",
    "SimulationResult",
    "TrajectorySensitivity",
    "sensitivities",
    "simulate",
    "simulate_batch",
    "simulate_phases",
    "trajectory_sensitivity",
]

INTEGRATORS = ("cvodes", "idas", "rk", "collocation")
_PROGRESS_MIN_INTERVALS = 200
_PROGRESS_CHUNKS = 40
_MAX_SEGMENT_FUNCTIONS = 64


class SimulationError(ValueError):
    """A simulation request is malformed (missing state/input, bad time grid) or the integration failed."""


# ----------------------------------------------------------------------------------------------
# Inputs over time
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputProgram:
    """An input over time, given at knots ``times_s`` (strictly increasing, s) with ``values``.

    ``"zoh"``: the value of knot *i* holds from ``times_s[i]`` until the next knot (a step program).
    ``"linear"``: linear between knots. Before the first knot the first value holds, after the last
    knot the last value holds (both interpolations).
    """

    times_s: tuple[float, ...]
    values: tuple[float, ...]
    interpolation: Literal["zoh", "linear"] = "zoh"

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in np.atleast_1d(np.asarray(self.times_s, dtype=float)))
        values = tuple(float(v) for v in np.atleast_1d(np.asarray(self.values, dtype=float)))
        if len(times) == 0 or len(times) != len(values):
            raise SimulationError(
                f"InputProgram: times_s ({len(times)}) and values ({len(values)}) must be non-empty and equally long"
            )
        if not all(math.isfinite(v) for v in times + values):
            raise SimulationError("InputProgram: times_s and values must be finite numbers")
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise SimulationError(f"InputProgram: times_s must be strictly increasing, got {list(times)}")
        if self.interpolation not in ("zoh", "linear"):
            raise SimulationError(
                f"InputProgram: interpolation must be 'zoh' or 'linear', got {self.interpolation!r}"
            )
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "values", values)

    @classmethod
    def steps(cls, *points: tuple[float, float]) -> InputProgram:
        """A step program from ``(time_s, value)`` pairs: ``InputProgram.steps((0, 1.0), (600, 2.0))``."""
        return cls(tuple(p[0] for p in points), tuple(p[1] for p in points), "zoh")

    def at(self, t_s: float) -> float:
        """Value at time ``t_s`` (s)."""
        return float(self.sample(np.asarray([t_s], dtype=float))[0])

    def sample(self, t_s: np.ndarray) -> np.ndarray:
        """Values at an array of times (vectorised :meth:`at`)."""
        times = np.asarray(self.times_s)
        values = np.asarray(self.values)
        if self.interpolation == "linear":
            return np.interp(t_s, times, values)
        idx = np.searchsorted(times, t_s, side="right") - 1
        return values[np.clip(idx, 0, len(values) - 1)]


InputSpec = float | InputProgram | Callable[[float], float]


# ----------------------------------------------------------------------------------------------
# Results and cases
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulationResult:
    """A simulated trajectory. Arrays are ``(n_rows, n_times)``; rows follow the model's flat vectors."""

    model: CompiledModel
    times_s: np.ndarray
    states: np.ndarray
    outputs: np.ndarray
    inputs: np.ndarray
    wall_time_s: float
    parameters: Mapping[str, float] = field(default_factory=dict)

    def state(self, name: str) -> np.ndarray:
        """Trajectory of state ``name``: shape ``(n_times,)`` for a scalar, ``(size, n_times)`` for a vector."""
        return _rows(self.model.state_slices, self.states, name, "state", self.model)

    def output(self, name: str) -> np.ndarray:
        """Trajectory of output ``name`` (same shapes as :meth:`state`)."""
        return _rows(self.model.output_slices, self.outputs, name, "output", self.model)

    def input(self, name: str) -> np.ndarray:
        """Input ``name`` at the output times (same shapes as :meth:`state`)."""
        return _rows(self.model.input_slices, self.inputs, name, "input", self.model)

    def final_state(self) -> dict[str, float | np.ndarray]:
        """State values at the last time, by name (floats for scalars); a valid ``initial_state`` for a next run."""
        out: dict[str, float | np.ndarray] = {}
        for v in self.model.declaration.states:
            col = self.states[self.model.state_slices[v.name], -1]
            out[v.name] = float(col[0]) if v.size == 1 else col.copy()
        return out

    @property
    def simulated_time_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def realtime_factor(self) -> float:
        """Simulated time per wall-clock time (how many times faster than real time)."""
        return self.simulated_time_s / self.wall_time_s if self.wall_time_s > 0 else math.inf

    def column_names(self) -> list[str]:
        """CSV header: ``time [s]``, then states, outputs and inputs as ``name [unit]`` (vectors as ``name[i]``).

        An output or input named like an earlier column (the crystallizer reports its moment states ``mu0``..``mu4``
        as outputs too) is marked with its group, ``mu0 (output) [1/kg]``, so that every column name is unique.
        """
        d = self.model.declaration
        names = ["time [s]"]
        taken: set[str] = set()
        for group_name, group in (("state", d.states), ("output", d.outputs), ("input", d.inputs)):
            for v in group:
                name = v.name if v.name not in taken else f"{v.name} ({group_name})"
                taken.add(v.name)
                if v.size == 1:
                    names.append(f"{name} [{v.unit}]")
                else:
                    names.extend(f"{v.name}[{i}]{name[len(v.name):]} [{v.unit}]" for i in range(v.size))
        return names

    def to_csv(self, path: str | Path) -> None:
        """Write one row per output time: time, states, outputs, inputs (SI units named in the header)."""
        table = np.vstack([self.times_s[None, :], self.states, self.outputs, self.inputs]).T
        with Path(path).open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.column_names())
            for row in table:
                writer.writerow([repr(float(v) + 0.0) for v in row])  # + 0.0: no "-0.0"


@dataclass(frozen=True)
class SimulationCase:
    """One simulation request for :func:`simulate_batch`."""

    initial_state: Mapping[str, float | np.ndarray]
    times_s: Sequence[float]
    inputs: Mapping[str, InputSpec]
    parameters: Mapping[str, float] | None = None
    name: str = ""


@dataclass(frozen=True)
class Phase:
    """A batch phase: the inputs that hold until ``end_time_s`` (s, absolute)."""

    end_time_s: float
    inputs: Mapping[str, InputSpec]
    name: str = ""


def _rows(slices: Mapping[str, slice], array: np.ndarray, name: str, kind: str, model: CompiledModel) -> np.ndarray:
    if name not in slices:
        raise KeyError(f"model '{model.declaration.name}' has no {kind} '{name}'; {kind}s: {list(slices)}")
    rows = array[slices[name]]
    return rows[0] if rows.shape[0] == 1 else rows


# ----------------------------------------------------------------------------------------------
# casadi functions, cached per model
# ----------------------------------------------------------------------------------------------
class _Propagator:
    """The one-interval step and the whole-trajectory functions of one model / integrator / tolerance set."""

    def __init__(self, model: CompiledModel, integrator: str, rtol: float, atol: float,
                 options: Mapping[str, Any]) -> None:
        # no reference to the CompiledModel itself: the cache is weakly keyed by it
        self.name = model.declaration.name
        self.nx, self.nu, self.np, self.ny = model.nx, model.nu, model.np, model.ny
        self.output = model.output
        nx, nu, npar = model.nx, model.nu, model.np
        self.nq = 2 * nu + npar + 2
        s = ca.SX.sym("s")
        q = ca.SX.sym("q", self.nq)
        u0, du = q[:nu], q[nu:2 * nu]
        p, t_k, dt_k = q[2 * nu:2 * nu + npar], q[2 * nu + npar], q[2 * nu + npar + 1]
        # inputs affine in time on the span: u(t) = u0 + du * (t - t_k), exact for zoh and linear programs
        ode = dt_k * model.rhs(model.x_sym, u0 + du * (s * dt_k), p, t_k + s * dt_k)
        dae = {"x": model.x_sym, "p": q, "t": s, "ode": ode}
        opts: dict[str, Any] = {}
        if integrator in ("cvodes", "idas"):
            opts = {"abstol": atol, "reltol": rtol, "max_num_steps": 200000, "disable_internal_warnings": True}
        elif integrator == "rk":
            opts = {"number_of_finite_elements": 20}
        opts.update(options)
        name = f"{model.declaration.name}_{integrator}"
        self.integrator = ca.integrator(name, integrator, dae, 0.0, 1.0, opts)
        x0 = ca.MX.sym("x0", nx)
        qm = ca.MX.sym("q", self.nq)
        self.step = ca.Function(f"{name}_step", [x0, qm], [self.integrator(x0=x0, p=qm)["xf"]], ["x0", "q"], ["xf"])
        self._trajectories: dict[int, ca.Function] = {}
        self._jacobians: dict[tuple[int, tuple[int, ...]], ca.Function] = {}
        self._segments: dict[tuple, ca.Function] = {}
        self._output_maps: dict[int, ca.Function] = {}
        self._dae, self._opts, self._kind, self._fullname = dae, opts, integrator, name
        #: whether one integrator call may cover many output times (variable-step SUNDIALS solvers)
        self.continuous = integrator in ("cvodes", "idas")

    def segment(self, s_grid: tuple[float, ...]) -> ca.Function:
        """``(x0, q) -> x[nx, m]``: one integration over a span on which every input is affine in time,
        reporting at the normalised times ``s_grid`` (increasing, in (0, 1], last 1) without restarting."""
        if s_grid not in self._segments:
            if len(self._segments) >= _MAX_SEGMENT_FUNCTIONS:
                self._segments.pop(next(iter(self._segments)))
            integ = ca.integrator(f"{self._fullname}_seg{len(s_grid)}", self._kind, self._dae, 0.0, list(s_grid),
                                  self._opts)
            x0 = ca.MX.sym("x0", self.nx)
            q = ca.MX.sym("q", self.nq)
            self._segments[s_grid] = ca.Function(f"{self._fullname}_segment", [x0, q], [integ(x0=x0, p=q)["xf"]])
        return self._segments[s_grid]

    def output_map(self, n_points: int) -> ca.Function:
        """``(x[nx,n], u[nu,n], p, t[1,n]) -> y[ny,n]``."""
        if n_points not in self._output_maps:
            self._output_maps[n_points] = self.output.map(n_points)
        return self._output_maps[n_points]

    def _symbolic_trajectory(self, n: int, p: ca.MX | None = None) -> tuple[list[ca.MX], ca.MX, ca.MX]:
        m = self
        x0 = ca.MX.sym("x0", m.nx)
        u = ca.MX.sym("u", m.nu, n)
        du = ca.MX.sym("du", m.nu, n)
        p = ca.MX.sym("p", m.np) if p is None else p
        t_k = ca.MX.sym("t_k", 1, n)
        dt_k = ca.MX.sym("dt_k", 1, n)
        u_pts = ca.MX.sym("u_pts", m.nu, n + 1)
        t_pts = ca.MX.sym("t_pts", 1, n + 1)
        q = ca.vertcat(u, du, ca.repmat(p, 1, n), t_k, dt_k)
        x_steps = self.step.mapaccum(f"{m.name}_acc{n}", n)(x0, q)
        x_all = ca.horzcat(x0, x_steps)
        y_all = m.output.map(n + 1)(x_all, u_pts, ca.repmat(p, 1, n + 1), t_pts)
        return [x0, u, du, p, t_k, dt_k, u_pts, t_pts], x_all, y_all

    def trajectory(self, n: int) -> ca.Function:
        """``(x0, u[nu,n], du[nu,n], p, t_k[1,n], dt_k[1,n], u_pts[nu,n+1], t_pts[1,n+1]) -> (x[nx,n+1], y[ny,n+1])``.

        ``u``: inputs at each interval start, ``du``: their slopes (1/s) on the interval."""
        if n not in self._trajectories:
            args, x_all, y_all = self._symbolic_trajectory(n)
            self._trajectories[n] = ca.Function(f"traj{n}", args, [x_all, y_all])
        return self._trajectories[n]

    def jacobian(self, n: int, wrt: tuple[int, ...]) -> ca.Function:
        """As :meth:`trajectory`, plus ``d vec(x)/d p[wrt]`` and ``d vec(y)/d p[wrt]`` (forward sensitivities)."""
        key = (n, wrt)
        if key not in self._jacobians:
            p_rest = ca.MX.sym("p", self.np)
            p_wrt = ca.MX.sym("p_wrt", len(wrt))
            position = {i: j for j, i in enumerate(wrt)}
            p_full = ca.vertcat(*[p_wrt[position[i]] if i in position else p_rest[i] for i in range(self.np)])
            args, x_all, y_all = self._symbolic_trajectory(n, p_full)
            args = [args[0], args[1], args[2], p_rest, p_wrt, *args[4:]]
            self._jacobians[key] = ca.Function(
                f"trajjac{n}", args,
                [x_all, y_all, ca.jacobian(ca.vec(x_all), p_wrt), ca.jacobian(ca.vec(y_all), p_wrt)],
            )
        return self._jacobians[key]


_PROPAGATORS: PerModelFunctions[_Propagator] = PerModelFunctions(per_model=32)
"""Propagators kept per model and thread (:mod:`process_models.model_functions`): one per integrator, tolerance
set and options in use."""


def _propagator(model: CompiledModel, integrator: str, rtol: float, atol: float,
                options: Mapping[str, Any] | None) -> _Propagator:
    if integrator not in INTEGRATORS:
        raise SimulationError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
    if not (rtol > 0 and atol > 0):
        raise SimulationError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    opts = dict(options or {})
    key = (integrator, float(rtol), float(atol), tuple(sorted((k, repr(v)) for k, v in opts.items())))
    return _PROPAGATORS.get(model, key, lambda: _Propagator(model, integrator, rtol, atol, opts))


# ----------------------------------------------------------------------------------------------
# Preparing a request
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Prepared:
    x0: np.ndarray
    p: np.ndarray
    parameters: dict[str, float]
    times_out: np.ndarray
    grid: np.ndarray          # integration grid (n+1 points) containing times_out
    out_index: np.ndarray     # positions of times_out in grid
    u_intervals: np.ndarray   # (nu, n) inputs at each interval start (callables: the held midpoint value)
    u_slopes: np.ndarray      # (nu, n) input slopes on each interval (1/s; non-zero only for linear programs)
    segment_keys: np.ndarray  # (nu, n) equal in consecutive intervals <=> the same affine input piece
    u_points: np.ndarray      # (nu, n+1) inputs at the grid points


def _where(model: CompiledModel) -> str:
    return f"simulate(model '{model.declaration.name}')"


def _check_names(model: CompiledModel, kind: str, given: Mapping[str, Any], expected: Sequence[str]) -> None:
    missing = [n for n in expected if n not in given]
    unknown = [n for n in given if n not in expected]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {kind}(s) {missing}")
        if unknown:
            parts.append(f"unknown {kind}(s) {unknown}")
        raise SimulationError(f"{_where(model)}: {'; '.join(parts)}; expected {kind}s {list(expected)}")


def _time_grid(model: CompiledModel, times_s: Sequence[float]) -> np.ndarray:
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or times.size < 2:
        raise SimulationError(f"{_where(model)}: times_s must be a 1-D sequence of at least 2 times, got {times.shape}")
    if not np.all(np.isfinite(times)):
        raise SimulationError(f"{_where(model)}: times_s contains non-finite values")
    if np.any(np.diff(times) <= 0):
        bad = int(np.argmax(np.diff(times) <= 0))
        raise SimulationError(
            f"{_where(model)}: times_s must be strictly increasing (times_s[{bad}]={times[bad]}, "
            f"times_s[{bad + 1}]={times[bad + 1]})"
        )
    return times


def _input_value(model: CompiledModel, name: str, spec: InputSpec, t: np.ndarray, size: int) -> np.ndarray:
    """Values of one input at times ``t`` -> array ``(size, len(t))``."""
    if isinstance(spec, InputProgram):
        if size != 1:
            raise SimulationError(f"{_where(model)}: input '{name}' has {size} elements; an InputProgram is scalar")
        vals = spec.sample(t)[None, :]
    elif callable(spec):
        try:
            vals = np.stack([np.atleast_1d(np.asarray(spec(float(ti)), dtype=float)).ravel() for ti in t], axis=1)
        except Exception as exc:  # user callables fail in arbitrary ways; report which input
            raise SimulationError(f"{_where(model)}: input '{name}': callable failed: {exc}") from exc
        if vals.shape[0] == 1 and size > 1:
            vals = np.repeat(vals, size, axis=0)
    else:
        try:
            arr = np.atleast_1d(np.asarray(spec, dtype=float)).ravel()
        except (TypeError, ValueError) as exc:
            raise SimulationError(
                f"{_where(model)}: input '{name}' must be a number, an InputProgram or a callable of time, "
                f"got {spec!r}"
            ) from exc
        if arr.size == 1 and size > 1:
            arr = np.full(size, arr[0])
        vals = np.repeat(arr[:, None], len(t), axis=1)
    if vals.shape[0] != size:
        raise SimulationError(f"{_where(model)}: input '{name}' needs {size} values, got {vals.shape[0]}")
    if not np.all(np.isfinite(vals)):
        raise SimulationError(f"{_where(model)}: input '{name}' is not finite at some time")
    return vals


def _prepare(model: CompiledModel, initial_state: Mapping[str, float | np.ndarray], times_s: Sequence[float],
             inputs: Mapping[str, InputSpec], parameters: Mapping[str, float] | None) -> _Prepared:
    if not isinstance(model, CompiledModel):
        raise TypeError(
            f"simulate: model must be a CompiledModel (use compile_model(declaration)), got {type(model).__name__}"
        )
    d = model.declaration
    _check_names(model, "initial state", initial_state, [v.name for v in d.states])
    _check_names(model, "input", inputs, [v.name for v in d.inputs])
    try:
        x0 = model.pack_states(initial_state)
        values = d.parameter_values(parameters)
    except DeclarationError as exc:
        raise SimulationError(f"{_where(model)}: {exc}") from exc
    if not np.all(np.isfinite(x0)):
        bad = [v.name for v in d.states if not np.all(np.isfinite(x0[model.state_slices[v.name]]))]
        raise SimulationError(f"{_where(model)}: initial state(s) {bad} not finite")
    p = np.array([values[n] for n in model.parameter_names], dtype=float)
    times = _time_grid(model, times_s)

    # integration grid: output times plus program knots strictly inside the span
    knots = [t for spec in inputs.values() if isinstance(spec, InputProgram) for t in spec.times_s]
    tol = 1e-9 * max(1.0, float(np.max(np.abs(times))))
    inner = np.asarray([k for k in knots if times[0] + tol < k < times[-1] - tol], dtype=float)
    if inner.size:
        near = np.min(np.abs(inner[:, None] - times[None, :]), axis=1) <= tol
        grid = np.unique(np.concatenate([times, inner[~near]]))
    else:
        grid = times
    out_index = np.searchsorted(grid, times)

    mid = 0.5 * (grid[:-1] + grid[1:])
    u_int = np.zeros((model.nu, grid.size - 1))
    u_slope = np.zeros((model.nu, grid.size - 1))
    keys = np.zeros((model.nu, grid.size - 1))
    u_pts = np.zeros((model.nu, grid.size))
    for v in d.inputs:
        sl = model.input_slices[v.name]
        spec = inputs[v.name]
        if isinstance(spec, InputProgram) and spec.interpolation == "linear":
            _input_value(model, v.name, spec, grid[:1], v.size)  # checks the size
            u_int[sl], u_slope[sl], keys[sl] = _linear_pieces(spec, grid[:-1], mid)
        else:   # constants, zoh programs (no knot inside an interval: the midpoint's step) and held callables
            u_int[sl] = _input_value(model, v.name, spec, mid, v.size)
            keys[sl] = u_int[sl]
        u_pts[sl] = _input_value(model, v.name, spec, grid, v.size)
    return _Prepared(x0, p, values, times, grid, out_index, u_int, u_slope, keys, u_pts)


def _linear_pieces(program: InputProgram, starts: np.ndarray, mids: np.ndarray) -> tuple[np.ndarray, ...]:
    """A linear program on intervals ``[starts[k], ...]`` with midpoints ``mids[k]``: the value at each start and
    the slope (1/s) of the knot-to-knot piece that holds the interval, and the piece index (-1 before the first
    knot, ``len - 1`` after the last). Intervals never straddle a knot (knots are grid points)."""
    times = np.asarray(program.times_s)
    values = np.asarray(program.values)
    piece = np.searchsorted(times, mids, side="right") - 1
    inside = (piece >= 0) & (piece < times.size - 1)
    i = np.clip(piece, 0, max(times.size - 2, 0))
    if times.size > 1:
        slope = np.where(inside, (values[i + 1] - values[i]) / (times[i + 1] - times[i]), 0.0)
    else:
        slope = np.zeros(mids.size)
    start = np.where(inside, values[i] + slope * (starts - times[i]), values[np.clip(piece, 0, times.size - 1)])
    return start[None, :], slope[None, :], piece.astype(float)[None, :]


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------
def simulate(model: CompiledModel, initial_state: Mapping[str, float | np.ndarray], times_s: Sequence[float],
             inputs: Mapping[str, InputSpec], parameters: Mapping[str, float] | None = None,
             integrator: str = "cvodes", rtol: float = 1e-8, atol: float = 1e-10,
             progress: bool = False, integrator_options: Mapping[str, Any] | None = None) -> SimulationResult:
    """Integrate ``model`` from ``initial_state`` at ``times_s[0]`` and report at every time in ``times_s``.

    ``initial_state``: every state by name (SI; a scalar fills a vector state). ``inputs``: every
    input by name, as a number, an :class:`InputProgram` (applied exactly in time: steps at their knot
    times, ramps as lines) or a callable of time (s), held at each interval's midpoint value — see the
    module docstring. ``parameters``: overrides of the declared
    defaults. ``progress``: for grids of 200+ intervals, integrate in 40 chunks and show a progress
    bar on stderr once the run has taken 0.5 s. ``integrator``: ``"cvodes"`` (BDF, default),
    ``"idas"``, ``"rk"`` (20 fixed RK4 steps per interval) or ``"collocation"``;
    ``integrator_options`` are passed to casadi's ``integrator`` (e.g. ``{"number_of_finite_elements": 50}``).
    Raises :class:`SimulationError` naming any missing/unknown state or input, a bad time grid, or
    the interval where integration failed.
    """
    started = time.perf_counter()
    prep = _prepare(model, initial_state, times_s, inputs, parameters)
    prop = _propagator(model, integrator, rtol, atol, integrator_options)
    n = prep.grid.size - 1
    chunk = math.ceil(n / _PROGRESS_CHUNKS) if progress and n >= _PROGRESS_MIN_INTERVALS else n
    segments = _affine_input_segments(prep.segment_keys)
    by_segment = prop.continuous and len(segments) <= max(8, n // 4)
    if not by_segment:
        segments = [(0, n)]
    pieces = [(a, min(a + chunk, stop)) for start, stop in segments for a in range(start, stop, chunk)]
    states: list[np.ndarray] = [prep.x0[:, None]]
    outputs: list[np.ndarray] = []
    x_start = prep.x0
    bar = _ProgressBar(model.declaration.name, prep.grid[-1] - prep.grid[0], started)
    for start, stop in pieces:
        if by_segment:
            x_new = _run_segment(model, prop, prep, x_start, start, stop)
        else:
            x_all, y_all = _run_chunk(model, prop, prep, x_start, start, stop)
            x_new = x_all[:, 1:]
            outputs.append(y_all if not outputs else y_all[:, 1:])
        states.append(x_new)
        x_start = x_new[:, -1]
        if chunk < n:
            bar.update(prep.grid[stop] - prep.grid[0])
    bar.close()
    x_grid = np.hstack(states)
    if by_segment:
        y_grid = np.asarray(prop.output_map(n + 1)(x_grid, prep.u_points, prep.p, prep.grid[None, :]),
                            dtype=float).reshape(model.ny, n + 1)
    else:
        y_grid = np.hstack(outputs)
    idx = prep.out_index
    return SimulationResult(
        model=model,
        times_s=prep.times_out,
        states=x_grid[:, idx],
        outputs=y_grid[:, idx].reshape(model.ny, idx.size),
        inputs=prep.u_points[:, idx],
        wall_time_s=time.perf_counter() - started,
        parameters=prep.parameters,
    )


def _affine_input_segments(keys: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive intervals on which every input is one affine function of time (a constant, one zoh
    step level, one knot-to-knot piece of a linear program, one held callable value), as (first interval, one
    past last). The solver restarts only between runs: at program knots and where a held callable changes."""
    n = keys.shape[1]
    if keys.shape[0] == 0 or n == 1:
        return [(0, n)]
    change = np.nonzero(np.any(keys[:, 1:] != keys[:, :-1], axis=0))[0] + 1
    bounds = [0, *change.tolist(), n]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _run_segment(model: CompiledModel, prop: _Propagator, prep: _Prepared, x_start: np.ndarray, start: int,
                 stop: int) -> np.ndarray:
    """States at grid points start+1..stop, integrated in one solver run (inputs constant on the span)."""
    grid = prep.grid[start:stop + 1]
    span = grid[-1] - grid[0]
    m = stop - start
    rel = (grid[1:] - grid[0]) / span
    uniform = np.arange(1, m + 1) / m
    if np.max(np.abs(rel - uniform)) <= 1e-10:
        s_grid = tuple(uniform.tolist())
    else:
        s_grid = tuple(np.round(rel, 13).tolist())
    q = np.concatenate([prep.u_intervals[:, start], prep.u_slopes[:, start], prep.p, [grid[0], span]])
    try:
        x_new = prop.segment(s_grid)(x_start, q)
    except RuntimeError as exc:
        raise SimulationError(
            f"{_where(model)}: integration failed between t={grid[0]:g} s and t={grid[-1]:g} s: "
            f"{str(exc).strip().splitlines()[-1]}"
        ) from exc
    x_arr = np.asarray(x_new, dtype=float).reshape(model.nx, m)
    if not np.all(np.isfinite(x_arr)):
        raise SimulationError(f"{_where(model)}: non-finite state between t={grid[0]:g} s and t={grid[-1]:g} s")
    return x_arr


def _run_chunk(model: CompiledModel, prop: _Propagator, prep: _Prepared, x_start: np.ndarray, start: int,
               stop: int) -> tuple[np.ndarray, np.ndarray]:
    m = model
    grid = prep.grid[start:stop + 1]
    try:
        x_all, y_all = prop.trajectory(stop - start)(
            x_start, prep.u_intervals[:, start:stop], prep.u_slopes[:, start:stop], prep.p, grid[None, :-1],
            np.diff(grid)[None, :],
            prep.u_points[:, start:stop + 1], grid[None, :],
        )
    except RuntimeError as exc:
        raise SimulationError(
            f"{_where(m)}: integration failed between t={grid[0]:g} s and t={grid[-1]:g} s: "
            f"{str(exc).strip().splitlines()[-1]}"
        ) from exc
    x_arr = np.asarray(x_all, dtype=float).reshape(m.nx, stop - start + 1)
    if not np.all(np.isfinite(x_arr)):
        raise SimulationError(f"{_where(m)}: non-finite state between t={grid[0]:g} s and t={grid[-1]:g} s")
    return x_arr, np.asarray(y_all, dtype=float).reshape(m.ny, stop - start + 1)


class _ProgressBar:
    """A one-line progress bar on stderr, shown only once the run has taken ``delay_s`` (short runs stay quiet)."""

    def __init__(self, label: str, total: float, started: float, delay_s: float = 0.5, unit: str = "s") -> None:
        self.label, self.total, self.started, self.delay_s, self.unit = label, total, started, delay_s, unit
        self.shown = False
        self._last = 0.0

    def update(self, done: float) -> None:
        now = time.perf_counter()
        elapsed = now - self.started
        if elapsed < self.delay_s or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        self.shown = True
        frac = min(1.0, done / self.total) if self.total > 0 else 1.0
        width = 30
        filled = int(round(frac * width))
        sys.stderr.write(
            f"\r{self.label}: [{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}%  "
            f"{done:.6g}/{self.total:.6g} {self.unit}  wall {elapsed:.1f} s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def simulate_batch(model: CompiledModel, cases: Sequence[SimulationCase], integrator: str = "cvodes",
                   rtol: float = 1e-8, atol: float = 1e-10, progress: bool = False) -> list[SimulationResult]:
    """Simulate several cases of one model (the integrator is built once and reused)."""
    results = []
    bar = _ProgressBar(f"{model.declaration.name} batch", len(cases), time.perf_counter(), unit="cases")
    for i, case in enumerate(cases):
        try:
            results.append(simulate(model, case.initial_state, case.times_s, case.inputs, case.parameters,
                                    integrator=integrator, rtol=rtol, atol=atol))
        except SimulationError as exc:
            raise SimulationError(f"case {i} {case.name!r}: {exc}") from exc
        if progress:
            bar.update(i + 1)
    bar.close()
    return results


def simulate_phases(model: CompiledModel, initial_state: Mapping[str, float | np.ndarray],
                    phases: Sequence[Phase | tuple[float, Mapping[str, InputSpec]]], output_interval_s: float,
                    parameters: Mapping[str, float] | None = None, start_time_s: float = 0.0,
                    integrator: str = "cvodes", rtol: float = 1e-8, atol: float = 1e-10,
                    progress: bool = False) -> SimulationResult:
    """Chain batch phases (:class:`Phase` or ``(end_time_s, inputs)`` pairs).

    Phase *k* runs from the end of phase *k-1* (or ``start_time_s``) to its ``end_time_s`` with its
    own inputs, starting from the previous final state. Outputs every ``output_interval_s`` within
    each phase plus each phase boundary; the result is one trajectory.
    """
    if not phases:
        raise SimulationError(f"{_where(model)}: phases must not be empty")
    if output_interval_s <= 0:
        raise SimulationError(f"{_where(model)}: output_interval_s must be > 0, got {output_interval_s}")
    started = time.perf_counter()
    state: Mapping[str, float | np.ndarray] = initial_state
    t0 = float(start_time_s)
    parts: list[SimulationResult] = []
    for k, item in enumerate(phases):
        phase = item if isinstance(item, Phase) else Phase(float(item[0]), item[1])
        t1 = float(phase.end_time_s)
        if not t1 > t0:
            raise SimulationError(f"{_where(model)}: phase {k} {phase.name!r} ends at {t1} s, not after {t0} s")
        times = np.arange(t0, t1, output_interval_s)
        times = np.append(times[times < t1 - 1e-9 * max(1.0, abs(t1))], t1)
        if times.size < 2:
            times = np.array([t0, t1])
        try:
            res = simulate(model, state, times, phase.inputs, parameters, integrator=integrator, rtol=rtol,
                           atol=atol, progress=progress)
        except SimulationError as exc:
            raise SimulationError(f"phase {k} {phase.name!r}: {exc}") from exc
        parts.append(res)
        state = res.final_state()
        t0 = t1
    first = parts[0]
    return SimulationResult(
        model=model,
        times_s=np.concatenate([first.times_s] + [r.times_s[1:] for r in parts[1:]]),
        states=np.hstack([first.states] + [r.states[:, 1:] for r in parts[1:]]),
        outputs=np.hstack([first.outputs] + [r.outputs[:, 1:] for r in parts[1:]]),
        inputs=np.hstack([first.inputs] + [r.inputs[:, 1:] for r in parts[1:]]),
        wall_time_s=time.perf_counter() - started,
        parameters=first.parameters,
    )


@dataclass(frozen=True)
class TrajectorySensitivity:
    """States/outputs at the output times and their forward sensitivities to parameters ``wrt``.

    ``d_states``: ``(n_times, nx, n_wrt)``; ``d_outputs``: ``(n_times, ny, n_wrt)``.
    """

    result: SimulationResult
    wrt: tuple[str, ...]
    d_states: np.ndarray
    d_outputs: np.ndarray


def trajectory_sensitivity(model: CompiledModel, initial_state: Mapping[str, float | np.ndarray],
                           times_s: Sequence[float], inputs: Mapping[str, InputSpec],
                           parameters: Mapping[str, float] | None, wrt: Sequence[str],
                           integrator: str = "cvodes", rtol: float = 1e-8,
                           atol: float = 1e-10) -> TrajectorySensitivity:
    """Simulate and return forward sensitivities (CVODES) of states and outputs to parameters ``wrt``."""
    started = time.perf_counter()
    unknown = [w for w in wrt if w not in model.parameter_names]
    if unknown or not wrt or len(set(wrt)) != len(wrt):
        raise SimulationError(
            f"{_where(model)}: sensitivities wrt {unknown or list(wrt)}: expected parameter names from "
            f"{list(model.parameter_names)}"
        )
    prep = _prepare(model, initial_state, times_s, inputs, parameters)
    prop = _propagator(model, integrator, rtol, atol, None)
    n = prep.grid.size - 1
    cols = tuple(model.parameter_names.index(w) for w in wrt)
    try:
        x_all, y_all, dx, dy = prop.jacobian(n, cols)(
            prep.x0, prep.u_intervals, prep.u_slopes, prep.p, prep.p[list(cols)], prep.grid[None, :-1],
            np.diff(prep.grid)[None, :],
            prep.u_points, prep.grid[None, :],
        )
    except RuntimeError as exc:
        raise SimulationError(
            f"{_where(model)}: sensitivity integration failed: {str(exc).strip().splitlines()[-1]}"
        ) from exc
    idx = prep.out_index
    k = len(cols)
    x_arr = np.asarray(x_all, dtype=float).reshape(model.nx, n + 1)
    y_arr = np.asarray(y_all, dtype=float).reshape(model.ny, n + 1)
    dx_arr = np.asarray(ca.DM(dx).full(), dtype=float).reshape(n + 1, model.nx, k)[idx]
    dy_arr = np.asarray(ca.DM(dy).full(), dtype=float).reshape(n + 1, model.ny, k)[idx]
    result = SimulationResult(model, prep.times_out, x_arr[:, idx], y_arr[:, idx], prep.u_points[:, idx],
                              time.perf_counter() - started, prep.parameters)
    return TrajectorySensitivity(result, tuple(wrt), dx_arr, dy_arr)


def sensitivities(model: CompiledModel, initial_state: Mapping[str, float | np.ndarray], times_s: Sequence[float],
                  inputs: Mapping[str, InputSpec], parameters: Mapping[str, float] | None,
                  wrt: Sequence[str], integrator: str = "cvodes", rtol: float = 1e-8,
                  atol: float = 1e-10) -> np.ndarray:
    """Forward sensitivities ``d x(t_k) / d p_j`` at every output time: array ``(n_times, nx, len(wrt))``.

    Rows of the middle axis follow the model's flat state vector (``model.state_slices``); the first
    time's sensitivities are zero (the initial state does not depend on the parameters).
    """
    return trajectory_sensitivity(model, initial_state, times_s, inputs, parameters, wrt,
                                  integrator=integrator, rtol=rtol, atol=atol).d_states
