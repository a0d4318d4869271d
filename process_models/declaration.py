"""Declaring a process model once: named, unit-carrying states, inputs, parameters and outputs
plus a continuous-time right-hand side written with casadi symbols.

Everything else (simulator, estimator Jacobians, NMPC prediction model, fitting, surrogate
training data) is derived from a :class:`ModelDeclaration` through :func:`compile_model`.

Example::

    tank = ModelDeclaration(
        name="first_order_tank",
        description="...",
        states=(Variable("temperature", "K", "liquid temperature", lower=250.0, upper=450.0),),
        inputs=(Input("jacket_temperature", "K", "jacket inlet temperature", role=InputRole.MANIPULATED),),
        parameters=(Parameter("time_constant", "s", 120.0, "thermal time constant", source="..."),),
        outputs=(Variable("temperature_celsius", "degC", "liquid temperature"),),
        equations=lambda s: Equations(
            derivatives={"temperature": (s.u["jacket_temperature"] - s.x["temperature"]) / s.p["time_constant"]},
            outputs={"temperature_celsius": s.x["temperature"] - 273.15},
        ),
    )

Vector-valued quantities (a crystal size distribution over 200 bins, a column's axial profile)
are one :class:`Variable` with ``size > 1``; its symbol is then a casadi column vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import casadi as ca
import numpy as np


class DeclarationError(ValueError):
    """A model declaration is inconsistent (names, sizes, bounds, missing equations)."""


@dataclass(frozen=True, slots=True)
class Variable:
    """A named quantity: state or output. ``unit`` is an SI unit symbol (``K``, ``kg/m3``, ``m``)."""

    name: str
    unit: str
    description: str
    lower: float = -math.inf
    upper: float = math.inf
    size: int = 1


class InputRole(str, Enum):
    MANIPULATED = "manipulated"
    DISTURBANCE = "disturbance"


@dataclass(frozen=True, slots=True)
class Input:
    """A model input; manipulated inputs are what a controller may move."""

    name: str
    unit: str
    description: str
    role: InputRole = InputRole.MANIPULATED
    lower: float = -math.inf
    upper: float = math.inf
    nominal: float = 0.0
    size: int = 1


@dataclass(frozen=True, slots=True)
class Parameter:
    """A model parameter with its default value and the source it was taken from."""

    name: str
    unit: str
    value: float
    description: str
    lower: float = -math.inf
    upper: float = math.inf
    source: str = ""


@dataclass(frozen=True)
class Symbols:
    """casadi symbols handed to a model's equations, by name."""

    x: Mapping[str, ca.SX]
    u: Mapping[str, ca.SX]
    p: Mapping[str, ca.SX]
    t: ca.SX


@dataclass(frozen=True)
class Equations:
    """Time derivatives of every state (same size as the state) and expressions of every output.

    ``state_constraints``: named scalar expressions of the states that are ≥ 0 for every physical state (e.g. the
    realizability of a set of moments); the ODE keeps them, but an estimator's correction step can break them, so
    :class:`process_models.estimator.ExtendedKalmanFilter` limits its step to keep them (dimensionless or in the
    unit the declaration states).
    """

    derivatives: Mapping[str, ca.SX]
    outputs: Mapping[str, ca.SX] = field(default_factory=dict)
    state_constraints: Mapping[str, ca.SX] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelDeclaration:
    """One process model, declared once. Immutable; validated by :func:`compile_model`."""

    name: str
    description: str
    states: tuple[Variable, ...]
    inputs: tuple[Input, ...]
    parameters: tuple[Parameter, ...]
    outputs: tuple[Variable, ...]
    equations: Callable[[Symbols], Equations]
    reference: str = ""

    def nominal_inputs(self) -> dict[str, float]:
        """Declared nominal value of every input, by name (SI units)."""
        return {i.name: i.nominal for i in self.inputs}

    def parameter_values(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """Default parameter values with ``overrides`` applied; unknown names or out-of-bounds values raise."""
        values = {p.name: p.value for p in self.parameters}
        bounds = {p.name: p for p in self.parameters}
        for key, value in (overrides or {}).items():
            if key not in values:
                raise DeclarationError(
                    f"model '{self.name}': unknown parameter '{key}'; expected one of {sorted(values)}"
                )
            spec = bounds[key]
            if not (spec.lower <= float(value) <= spec.upper):
                raise DeclarationError(
                    f"model '{self.name}': parameter '{key}' = {value} {spec.unit} outside "
                    f"[{spec.lower}, {spec.upper}]"
                )
            values[key] = float(value)
        return values


def _check_unique(model: str, kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DeclarationError(f"model '{model}': duplicate {kind} name '{n}'")
        seen.add(n)


class CompiledModel:
    """casadi functions and index maps derived from a declaration (built once, reused everywhere).

    * ``rhs``: casadi Function ``(x[nx], u[nu], p[np], t) -> xdot[nx]``
    * ``output``: casadi Function ``(x, u, p, t) -> y[ny]``
    * ``state_slices`` / ``input_slices`` / ``output_slices``: name -> slice into the flat vectors.
    """

    def __init__(self, declaration: ModelDeclaration) -> None:
        self.declaration = declaration
        d = declaration
        _check_unique(d.name, "state", [v.name for v in d.states])
        _check_unique(d.name, "input", [v.name for v in d.inputs])
        _check_unique(d.name, "parameter", [v.name for v in d.parameters])
        _check_unique(d.name, "output", [v.name for v in d.outputs])
        self.state_slices = _slices(d.states)
        self.input_slices = _slices(d.inputs)
        self.output_slices = _slices(d.outputs)
        self.parameter_names = tuple(p.name for p in d.parameters)
        self.nx = sum(v.size for v in d.states)
        self.nu = sum(v.size for v in d.inputs)
        self.np = len(d.parameters)
        self.ny = sum(v.size for v in d.outputs)
        x = ca.SX.sym("x", self.nx)
        u = ca.SX.sym("u", self.nu)
        p = ca.SX.sym("p", self.np)
        t = ca.SX.sym("t")
        symbols = Symbols(
            x={v.name: x[self.state_slices[v.name]] for v in d.states},
            u={v.name: u[self.input_slices[v.name]] for v in d.inputs},
            p={name: p[i] for i, name in enumerate(self.parameter_names)},
            t=t,
        )
        eq = d.equations(symbols)
        missing = [v.name for v in d.states if v.name not in eq.derivatives]
        extra = [k for k in eq.derivatives if k not in self.state_slices]
        if missing or extra:
            raise DeclarationError(
                f"model '{d.name}': derivatives missing for states {missing}, given for unknown states {extra}"
            )
        missing_y = [v.name for v in d.outputs if v.name not in eq.outputs]
        if missing_y:
            raise DeclarationError(f"model '{d.name}': no expression for outputs {missing_y}")
        xdot_parts = []
        for v in d.states:
            expr = ca.SX(eq.derivatives[v.name])
            if expr.numel() != v.size:
                raise DeclarationError(
                    f"model '{d.name}': derivative of '{v.name}' has {expr.numel()} elements, expected {v.size}"
                )
            xdot_parts.append(ca.reshape(expr, v.size, 1))
        y_parts = []
        for v in d.outputs:
            expr = ca.SX(eq.outputs[v.name])
            if expr.numel() != v.size:
                raise DeclarationError(
                    f"model '{d.name}': output '{v.name}' has {expr.numel()} elements, expected {v.size}"
                )
            y_parts.append(ca.reshape(expr, v.size, 1))
        xdot = ca.vertcat(*xdot_parts)
        y = ca.vertcat(*y_parts) if y_parts else ca.SX(0, 1)
        self.x_sym, self.u_sym, self.p_sym, self.t_sym = x, u, p, t
        self.xdot_expr, self.y_expr = xdot, y
        self.rhs = ca.Function(f"{d.name}_rhs", [x, u, p, t], [xdot], ["x", "u", "p", "t"], ["xdot"])
        self.state_constraint_names = tuple(eq.state_constraints)
        """Names of the declaration's state constraints (each expression ≥ 0 for a physical state)."""
        constraints = [ca.SX(eq.state_constraints[n]) for n in self.state_constraint_names]
        bad = [n for n, g in zip(self.state_constraint_names, constraints, strict=True)
               if g.numel() != 1 or ca.depends_on(g, ca.vertcat(u, t))]
        if bad:
            raise DeclarationError(f"model '{d.name}': state constraints {bad} must be scalar expressions of the "
                                   "states and parameters only")
        self.state_constraint = ca.Function(
            f"{d.name}_state_constraints", [x, p], [ca.vertcat(*constraints) if constraints else ca.SX(0, 1)],
            ["x", "p"], ["g"])
        """``(x, p) -> g``: the state constraints' values (each ≥ 0 for a physical state); empty when none."""
        self.output = ca.Function(f"{d.name}_output", [x, u, p, t], [y], ["x", "u", "p", "t"], ["y"])

    @cached_property
    def state_jacobian(self) -> ca.Function:
        """``(x, u, p, t) -> d xdot / d x`` (sparse), for estimators and implicit integrators."""
        return ca.Function("dfdx", [self.x_sym, self.u_sym, self.p_sym, self.t_sym],
                           [ca.jacobian(self.xdot_expr, self.x_sym)])

    @cached_property
    def output_jacobian(self) -> ca.Function:
        """``(x, u, p, t) -> d y / d x``."""
        return ca.Function("dhdx", [self.x_sym, self.u_sym, self.p_sym, self.t_sym],
                           [ca.jacobian(self.y_expr, self.x_sym)])

    # -- packing helpers -------------------------------------------------------------------
    def pack_states(self, values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        return _pack(self.declaration.name, "state", self.declaration.states, self.state_slices, self.nx, values)

    def pack_inputs(self, values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        return _pack(self.declaration.name, "input", self.declaration.inputs, self.input_slices, self.nu, values)

    def pack_parameters(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        values = self.declaration.parameter_values(overrides)
        return np.array([values[n] for n in self.parameter_names], dtype=float)

    def unpack_states(self, vector: np.ndarray) -> dict[str, np.ndarray]:
        """Flat state vector (or a ``(nx, n_times)`` array) -> dict name -> rows."""
        return {name: np.asarray(vector)[sl] for name, sl in self.state_slices.items()}

    def unpack_outputs(self, vector: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.asarray(vector)[sl] for name, sl in self.output_slices.items()}


def _slices(items: tuple[Variable, ...] | tuple[Input, ...]) -> dict[str, slice]:
    out: dict[str, slice] = {}
    start = 0
    for v in items:
        if v.size < 1:
            raise DeclarationError(f"'{v.name}': size must be >= 1, got {v.size}")
        out[v.name] = slice(start, start + v.size)
        start += v.size
    return out


def _pack(model: str, kind: str, items: tuple, slices: dict[str, slice], n: int,
          values: Mapping[str, float | np.ndarray]) -> np.ndarray:
    unknown = sorted(set(values) - set(slices))
    missing = sorted(set(slices) - set(values))
    if unknown or missing:
        raise DeclarationError(
            f"model '{model}': {kind} values: missing {missing}, unknown {unknown}; expected {list(slices)}"
        )
    out = np.zeros(n)
    for v in items:
        arr = np.atleast_1d(np.asarray(values[v.name], dtype=float)).ravel()
        if arr.size == 1 and v.size > 1:
            arr = np.full(v.size, arr[0])
        if arr.size != v.size:
            raise DeclarationError(f"model '{model}': {kind} '{v.name}' needs {v.size} values, got {arr.size}")
        out[slices[v.name]] = arr
    return out


def compile_model(declaration: ModelDeclaration) -> CompiledModel:
    """Validate a declaration and derive its casadi functions."""
    return CompiledModel(declaration)
