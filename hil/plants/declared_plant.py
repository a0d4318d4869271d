"""A HIL plant that runs a declared ``process_models`` model: the twin's own equations, the plant's own noise.

What a :class:`DeclaredPlant` adds to a :class:`~process_models.declaration.CompiledModel`:

* **integration**: one classical RK4 step of the model's ``rhs`` (Hairer, Nørsett & Wanner, *Solving Ordinary
  Differential Equations I*, 2nd ed., Springer 1993, §II.1) followed by the model's outputs at the new state, as
  one casadi Function built once per plant; a PLC step of ``dt_s`` is ``ceil(dt_s / max_substep_s)`` equal
  substeps with the commands held (zero-order hold, as a PLC scan holds them). The Function is evaluated through
  a casadi ``FunctionBuffer`` bound to the plant's numpy arrays, so a substep costs about a microsecond;
* **commands** (:class:`CommandedSignal`): tag-map engineering units → the model input's SI unit; a non-finite
  command is ignored (the last value is kept) and a command below the signal's ``minimum`` is saturated there
  (a pump or drive cannot run backwards). Inputs no tag commands keep the values given (by default the
  declaration's nominal values: the disturbances);
* **measurements** (:class:`MeasuredSignal`): a state or output of the model, SI → engineering units, plus
  Gaussian sensor noise (standard deviation in engineering units) from one seeded generator.

Conversions are affine, ``SI = factor × engineering + offset`` (:class:`UnitScale`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import casadi as ca
import numpy as np

from process_models.declaration import CompiledModel


@dataclass(frozen=True, slots=True)
class UnitScale:
    """Affine map from a tag's engineering unit to the model's SI unit: ``SI = factor × engineering + offset``."""

    factor: float = 1.0
    offset: float = 0.0

    def to_si(self, engineering: float) -> float:
        """Engineering value → SI value."""
        return self.factor * engineering + self.offset

    def from_si(self, si: float) -> float:
        """SI value → engineering value."""
        return (si - self.offset) / self.factor


SI = UnitScale()
DEGREE_CELSIUS = UnitScale(1.0, 273.15)     # °C → K
CUBIC_METRE_PER_HOUR = UnitScale(1.0 / 3600.0)  # m³/h → m³/s
REVOLUTION_PER_MINUTE = UnitScale(1.0 / 60.0)   # rpm → 1/s
KILOWATT = UnitScale(1000.0)                 # kW → W


@dataclass(frozen=True, slots=True)
class CommandedSignal:
    """A commanded tag driving a scalar model input. ``minimum`` (engineering units): saturation, or None."""

    tag: str
    input: str
    unit: UnitScale = SI
    minimum: float | None = None


@dataclass(frozen=True, slots=True)
class MeasuredSignal:
    """A measured tag reading a scalar model state or output, with sensor noise ``noise_std`` (engineering
    units)."""

    tag: str
    source: str
    of: Literal["state", "output"]
    unit: UnitScale = SI
    noise_std: float = 0.0


class DeclaredPlant:
    """A plant (the :class:`hil.plant.Plant` protocol) integrating a compiled declared model; see the module
    docstring. Subclasses set ``kind`` and build the signals from their parameters."""

    kind: str = ""

    def __init__(
        self,
        model: CompiledModel,
        initial_state: Mapping[str, float | np.ndarray],
        commanded: Sequence[CommandedSignal],
        measured: Sequence[MeasuredSignal],
        initial_commands: Mapping[str, float],
        max_substep_s: float,
        seed: int | None = None,
        parameters: Mapping[str, float] | None = None,
        inputs: Mapping[str, float] | None = None,
    ) -> None:
        """``initial_state``: every state by name (SI). ``initial_commands``: every commanded tag (engineering
        units). ``parameters``: overrides of the declared parameter values (SI). ``inputs``: SI values of inputs
        no tag commands (default: the declaration's nominal values). ``max_substep_s``: longest RK4 substep, s.

        Raises:
            ValueError: a signal names no scalar input/state/output of the model, a commanded tag has no initial
                value, or ``max_substep_s`` is not > 0.
        """
        if not max_substep_s > 0.0:
            raise ValueError(f"plant '{self.kind}': max_substep_s must be > 0, got {max_substep_s!r}")
        self.model = model
        self.max_substep_s = float(max_substep_s)
        self.commanded_names = tuple(s.tag for s in commanded)
        self.measured_names = tuple(s.tag for s in measured)
        self._commanded = {s.tag: s for s in commanded}
        self._command_index = {s.tag: _scalar_index(model.input_slices, s.input, "input", s.tag) for s in commanded}
        missing = [name for name in self.commanded_names if name not in initial_commands]
        if missing:
            raise ValueError(f"plant '{self.kind}': no initial value for commanded tag(s) {missing}")
        self._commands: dict[str, float] = {}

        nx = model.nx
        self._nx = nx
        self._x = np.asarray(model.pack_states(initial_state), dtype=float).copy()
        self._u = np.asarray(model.pack_inputs({**model.declaration.nominal_inputs(), **(inputs or {})}), dtype=float)
        self._p = np.asarray(model.pack_parameters(parameters), dtype=float)
        self.parameter_values = dict(zip(model.parameter_names, self._p.tolist(), strict=True))
        self._t = np.zeros(1)
        self._h = np.zeros(1)
        self._result = np.zeros(nx + model.ny)
        self._function = _rk4_step_and_outputs(model)
        self._buffer, self._evaluate = self._function.buffer()
        for i, array in enumerate((self._x, self._u, self._p, self._t, self._h)):
            self._buffer.set_arg(i, memoryview(array))
        self._buffer.set_res(0, memoryview(self._result))

        index = [_scalar_index(model.state_slices, s.source, "state", s.tag) if s.of == "state"
                 else nx + _scalar_index(model.output_slices, s.source, "output", s.tag) for s in measured]
        self._measured_index = np.asarray(index, dtype=int)
        self._measured_gain = np.asarray([1.0 / s.unit.factor for s in measured])
        self._measured_bias = np.asarray([-s.unit.offset / s.unit.factor for s in measured])
        self._noise_std = np.asarray([s.noise_std for s in measured], dtype=float)
        self._rng = np.random.default_rng(seed)
        self._initial_commands = {name: float(initial_commands[name]) for name in self.commanded_names}
        self._time_s = 0.0
        self._apply_commands(self._initial_commands)
        self._evaluate()  # h = 0: the result holds the initial state and its outputs
        if not math.isfinite(float(self._result.sum())):
            raise ValueError(f"plant '{self.kind}': the initial state or its outputs are not finite")

    # ------------------------------------------------------------------ Plant protocol
    def initial_commands(self) -> dict[str, float]:
        """Initial register contents of the commanded tags (engineering units)."""
        return dict(self._initial_commands)

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` plant seconds holding ``commands`` (engineering units of the tag map).

        Missing commands keep their last value; a non-finite command is ignored (the last value is kept); a
        command below its signal's ``minimum`` is saturated there.

        Raises:
            KeyError: a command names no commanded tag (the message lists them).
            FloatingPointError: the state became non-finite (the plant keeps its last finite state).
        """
        self._apply_commands(commands)
        if dt_s <= 0.0:  # no time passes; the outputs take the new commands
            self._t[0], self._h[0] = self._time_s, 0.0
            self._evaluate()
            return
        n = max(1, math.ceil(dt_s / self.max_substep_s - 1e-9))
        h = dt_s / n
        self._h[0] = h
        x, result, nx, t, evaluate = self._x, self._result, self._nx, self._t, self._evaluate
        start = x.copy()
        for i in range(n):
            t[0] = self._time_s + i * h
            evaluate()
            x[:] = result[:nx]
        if not math.isfinite(float(result.sum())):
            x[:] = start
            t[0], self._h[0] = self._time_s, 0.0
            evaluate()
            raise FloatingPointError(f"plant '{self.kind}': the state became non-finite in the step from plant time "
                                     f"{self._time_s:.3f} s (reduce the integration substep)")
        self._time_s += dt_s

    def measurements(self) -> dict[str, float]:
        """Measured values in engineering units, with Gaussian sensor noise."""
        noise = self._rng.standard_normal(self._noise_std.size) * self._noise_std
        values = self._result[self._measured_index] * self._measured_gain + self._measured_bias + noise
        return dict(zip(self.measured_names, values.tolist(), strict=True))

    # ------------------------------------------------------------------ true values (tests, benches, KPIs)
    @property
    def time_s(self) -> float:
        """Plant time advanced by step(), s."""
        return self._time_s

    def state_value(self, name: str) -> np.ndarray:
        """TRUE value of state ``name`` (SI; a copy, one element per compartment/bin)."""
        return self._x[self.model.state_slices[name]].copy()

    def output_value(self, name: str) -> np.ndarray:
        """TRUE value of output ``name`` at the current state and commands (SI; a copy)."""
        sl = self.model.output_slices[name]
        return self._result[self._nx + sl.start:self._nx + sl.stop].copy()

    def command(self, tag: str) -> float:
        """The command in force for ``tag`` (engineering units, before saturation)."""
        return self._commands[tag]

    def input_values(self) -> dict[str, float]:
        """Every model input in force (SI, after saturation), by name (scalar inputs)."""
        u = self._u.tolist()
        return {name: u[sl.start] for name, sl in self.model.input_slices.items() if sl.stop - sl.start == 1}

    # ------------------------------------------------------------------ internals
    def _apply_commands(self, commands: Mapping[str, float]) -> None:
        for name, value in commands.items():
            signal = self._commanded.get(name)
            if signal is None:
                raise KeyError(f"plant '{self.kind}': unknown command '{name}'; commands: "
                               f"{', '.join(self.commanded_names)}")
            if not math.isfinite(value):
                continue
            self._commands[name] = float(value)
            held = value if signal.minimum is None else max(value, signal.minimum)
            self._u[self._command_index[name]] = signal.unit.factor * held + signal.unit.offset


def _scalar_index(slices: Mapping[str, slice], name: str, what: str, tag: str) -> int:
    sl = slices.get(name)
    if sl is None:
        raise ValueError(f"tag '{tag}': the model has no {what} '{name}'; {what}s: {', '.join(slices)}")
    if sl.stop - sl.start != 1:
        raise ValueError(f"tag '{tag}': model {what} '{name}' is a vector; a tag reads or drives a scalar")
    return sl.start


def _rk4_step_and_outputs(model: CompiledModel) -> ca.Function:
    """casadi Function ``(x, u, p, t, h) -> [x(t + h) by one RK4 step; outputs at t + h]`` (inputs held)."""
    x, u, p = ca.SX.sym("x", model.nx), ca.SX.sym("u", model.nu), ca.SX.sym("p", model.np)
    t, h = ca.SX.sym("t"), ca.SX.sym("h")

    def rhs(z: ca.SX, time: ca.SX) -> ca.SX:
        return model.rhs(z, u, p, time)

    k1 = rhs(x, t)
    k2 = rhs(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = rhs(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = rhs(x + h * k3, t + h)
    x_next = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    y_next = model.output(x_next, u, p, t + h)
    return ca.Function(f"{model.declaration.name}_plant_rk4", [x, u, p, t, h], [ca.vertcat(x_next, y_next)])
