"""Space-filling training designs over initial states, input programmes and parameters of a declared model.

A :class:`TrainingDesign` names what varies and within which range:

* :class:`StateRange`: an initial state, as a factor on the base value (``relative=True``, also for vector states)
  or an absolute value (scalar states);
* :class:`InputRange`: an input programme of ``knots`` values on knots equally spaced over the run (aligned with
  the output grid), piecewise constant (``"zoh"``) or ramps (``"linear"``), each value inside [low, high] and each
  change at most ``max_rate_per_s`` x the knot spacing (the input's rate limit);
* :class:`ParameterRange`: a model parameter, absolute [low, high] in its unit.

Everything else stays at the base case's value. Sample points come from a scrambled Sobol sequence (default) or
a Latin hypercube (``scipy.stats.qmc``; Owen 1998; McKay, Beckman & Conover 1979), seeded, so a design and its seed
always give the same runs. Designs are plain data (JSON) so worker processes and a campaign runner can rebuild them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from process_models.declaration import CompiledModel, InputRole
from process_models.simulator import InputProgram, InputSpec

__all__ = [
    "DesignError",
    "InputRange",
    "ParameterRange",
    "ProgramRange",
    "StateRange",
    "TrainingDesign",
    "design_for_case",
    "input_spec_from_json",
    "input_spec_to_json",
]


class DesignError(ValueError):
    """A training design does not fit its model (unknown name, empty range, bad grid)."""


@dataclass(frozen=True)
class StateRange:
    """Initial value of state ``name``: ``relative`` -> base x factor in [low, high]; else absolute [low, high]."""

    name: str
    low: float
    high: float
    relative: bool = True


@dataclass(frozen=True)
class InputRange:
    """Programme of input ``name`` (its unit): ``knots`` values in [low, high], ``interpolation`` ``"zoh"``
    (piecewise constant) or ``"linear"`` (ramps), changes limited to ``max_rate_per_s`` (unit/s)."""

    name: str
    low: float
    high: float
    knots: int = 4
    interpolation: Literal["zoh", "linear"] = "linear"
    max_rate_per_s: float = math.inf


@dataclass(frozen=True)
class ProgramRange:
    """One knot of the base programmes of ``inputs`` (all given the same value): its ``field`` ``"value"``
    (input unit) or ``"time"`` (s; kept strictly between its neighbours) in [low, high]. Varies a recipe such as
    a load-wash-elute programme: the load concentration, the load end time, the gradient's end value."""

    inputs: tuple[str, ...]
    knot: int
    field: Literal["value", "time"]
    low: float
    high: float

    def feature_name(self) -> str:
        return f"{'+'.join(self.inputs)}[{self.knot}].{self.field}"


@dataclass(frozen=True)
class ParameterRange:
    """Model parameter ``name`` in [low, high] (its declared unit)."""

    name: str
    low: float
    high: float


@dataclass(frozen=True)
class TrainingDesign:
    """What varies (ranges) around a base case (``base_state``, ``base_inputs`` as JSON-able values) on the output
    grid ``start_s`` .. ``until_s`` every ``interval_s`` (s)."""

    base_state: Mapping[str, Any]
    base_inputs: Mapping[str, Any]
    start_s: float
    until_s: float
    interval_s: float
    states: tuple[StateRange, ...] = ()
    inputs: tuple[InputRange, ...] = ()
    parameters: tuple[ParameterRange, ...] = ()
    programs: tuple[ProgramRange, ...] = ()
    seed: int = 0
    method: Literal["sobol", "lhs"] = "sobol"
    base_parameters: Mapping[str, float] = field(default_factory=dict)

    # -- grid and sampling -----------------------------------------------------------------------
    def times_s(self) -> np.ndarray:
        n = int(round((self.until_s - self.start_s) / self.interval_s))
        return self.start_s + self.interval_s * np.arange(n + 1)

    @property
    def dimension(self) -> int:
        return len(self.states) + sum(r.knots for r in self.inputs) + len(self.parameters) + len(self.programs)

    def feature_names(self) -> list[str]:
        """Names of the columns of :meth:`sample` (one per design dimension)."""
        names = [f"initial_{r.name}" for r in self.states]
        for r in self.inputs:
            names += [f"{r.name}@{k}" for k in range(r.knots)]
        return names + [r.name for r in self.parameters] + [r.feature_name() for r in self.programs]

    def sample(self, n: int) -> np.ndarray:
        """``(n, dimension)`` points in the unit cube (seeded Sobol or LHS)."""
        if n < 1:
            raise DesignError(f"training design: sample count must be >= 1, got {n}")
        from scipy.stats import qmc  # here, not at import: scipy.stats costs a second, and a CLI refusal needs none

        d = max(self.dimension, 1)
        if self.method == "lhs":
            return qmc.LatinHypercube(d=d, seed=self.seed).random(n)
        with warnings.catch_warnings():  # a sample count that is not a power of two is fine here
            warnings.simplefilter("ignore", UserWarning)
            return qmc.Sobol(d=d, scramble=True, seed=self.seed).random(n)

    def validate(self, model: CompiledModel) -> None:
        """Raise :class:`DesignError` naming every range that does not fit ``model``."""
        d = model.declaration
        errors: list[str] = []
        states = {v.name: v for v in d.states}
        inputs = {v.name: v for v in d.inputs}
        params = {p.name: p for p in d.parameters}
        if not (self.interval_s > 0 and self.until_s > self.start_s):
            errors.append(f"grid: need interval_s > 0 and until_s > start_s, got {self.start_s}..{self.until_s} "
                          f"every {self.interval_s} s")
        for r in self.states:
            if r.name not in states:
                errors.append(f"state range '{r.name}': not a state of '{d.name}'; states: {list(states)}")
            elif not r.relative and states[r.name].size != 1:
                errors.append(f"state range '{r.name}': a vector state needs relative=true (a factor)")
            if not r.low <= r.high:
                errors.append(f"state range '{r.name}': low {r.low} > high {r.high}")
        for r in self.inputs:
            spec = inputs.get(r.name)
            if spec is None:
                errors.append(f"input range '{r.name}': not an input of '{d.name}'; inputs: {list(inputs)}")
                continue
            if spec.size != 1:
                errors.append(f"input range '{r.name}': only scalar inputs can be programmed")
            if not (spec.lower <= r.low <= r.high <= spec.upper):
                errors.append(f"input range '{r.name}': [{r.low}, {r.high}] {spec.unit} must lie inside the declared "
                              f"[{spec.lower}, {spec.upper}]")
            if r.knots < 1 or r.interpolation not in ("zoh", "linear") or not r.max_rate_per_s > 0:
                errors.append(f"input range '{r.name}': need knots >= 1, interpolation zoh|linear, max_rate_per_s > 0")
        for r in self.parameters:
            spec = params.get(r.name)
            if spec is None:
                errors.append(f"parameter range '{r.name}': not a parameter of '{d.name}'")
            elif not (spec.lower <= r.low <= r.high <= spec.upper):
                errors.append(f"parameter range '{r.name}': [{r.low}, {r.high}] {spec.unit} must lie inside "
                              f"[{spec.lower}, {spec.upper}]")
        missing = [n for n in states if n not in self.base_state]
        if missing:
            errors.append(f"base state: missing {missing}")
        missing_u = [n for n in inputs if n not in self.base_inputs and n not in {r.name for r in self.inputs}]
        if missing_u:
            errors.append(f"base inputs: missing {missing_u}")
        for r in self.programs:
            for name in r.inputs:
                base = self.base_inputs.get(name)
                if not isinstance(base, Mapping) or not 0 <= r.knot < len(base.get("times_s", ())):
                    errors.append(f"programme range '{r.feature_name()}': base input '{name}' has no programme "
                                  f"knot {r.knot}")
            if r.field not in ("value", "time") or not r.low <= r.high:
                errors.append(f"programme range '{r.feature_name()}': need field value|time and low <= high")
        if errors:
            raise DesignError(f"training design for model '{d.name}': " + "; ".join(errors))

    # -- one run from one sample point -------------------------------------------------------------
    def run_from_point(self, point: np.ndarray) -> tuple[dict[str, Any], dict[str, InputSpec], dict[str, float]]:
        """Initial state, inputs and parameter overrides of the run at unit-cube ``point``."""
        point = np.asarray(point, dtype=float)
        i = 0
        state: dict[str, Any] = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else float(v))
                                 for k, v in self.base_state.items()}
        for r in self.states:
            value = r.low + (r.high - r.low) * point[i]
            state[r.name] = state[r.name] * value if r.relative else float(value)
            i += 1
        inputs: dict[str, InputSpec] = {k: input_spec_from_json(v) for k, v in self.base_inputs.items()}
        knot_times_all = self.times_s()
        for r in self.inputs:
            idx = np.round(np.linspace(0, knot_times_all.size - 1, r.knots + 1)[:-1]).astype(int)
            times = knot_times_all[np.unique(idx)]
            values = r.low + (r.high - r.low) * point[i:i + r.knots][:times.size]
            i += r.knots
            for k in range(1, values.size):  # rate limit between knots
                step = r.max_rate_per_s * (times[k] - times[k - 1])
                values[k] = min(max(values[k], values[k - 1] - step), values[k - 1] + step)
            inputs[r.name] = InputProgram(tuple(times.tolist()), tuple(values.tolist()), r.interpolation)
        params = dict(self.base_parameters)
        for r in self.parameters:
            params[r.name] = float(r.low + (r.high - r.low) * point[i])
            i += 1
        for r in self.programs:
            value = float(r.low + (r.high - r.low) * point[i])
            i += 1
            for name in r.inputs:
                prog = inputs[name]
                assert isinstance(prog, InputProgram)
                times, values = list(prog.times_s), list(prog.values)
                if r.field == "value":
                    values[r.knot] = value
                else:
                    lo = times[r.knot - 1] if r.knot > 0 else -math.inf
                    hi = times[r.knot + 1] if r.knot + 1 < len(times) else math.inf
                    gap = 1e-6 * max(abs(value), 1.0)
                    times[r.knot] = min(max(value, lo + gap), hi - gap)
                inputs[name] = InputProgram(tuple(times), tuple(values), prog.interpolation)
        return state, inputs, params

    # -- JSON ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["base_state"] = {k: (np.asarray(v).tolist()) for k, v in self.base_state.items()}
        doc["base_inputs"] = dict(self.base_inputs)
        doc["base_parameters"] = dict(self.base_parameters)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TrainingDesign:
        return cls(
            base_state=dict(doc["base_state"]), base_inputs=dict(doc["base_inputs"]),
            start_s=float(doc["start_s"]), until_s=float(doc["until_s"]), interval_s=float(doc["interval_s"]),
            states=tuple(StateRange(**r) for r in doc.get("states", ())),
            inputs=tuple(InputRange(**r) for r in doc.get("inputs", ())),
            parameters=tuple(ParameterRange(**r) for r in doc.get("parameters", ())),
            programs=tuple(ProgramRange(**{**r, "inputs": tuple(r["inputs"])}) for r in doc.get("programs", ())),
            seed=int(doc.get("seed", 0)), method=doc.get("method", "sobol"),
            base_parameters=dict(doc.get("base_parameters", {})),
        )


def input_spec_to_json(spec: InputSpec) -> Any:
    """A number or an :class:`InputProgram` as JSON (callables cannot be stored: refused)."""
    if isinstance(spec, InputProgram):
        return {"times_s": list(spec.times_s), "values": list(spec.values), "interpolation": spec.interpolation}
    if isinstance(spec, int | float):
        return float(spec)
    raise DesignError(f"training design: an input given as {type(spec).__name__} cannot be stored; "
                      "expected a number or an InputProgram")


def input_spec_from_json(doc: Any) -> InputSpec:
    if isinstance(doc, Mapping):
        return InputProgram(tuple(doc["times_s"]), tuple(doc["values"]), doc.get("interpolation", "zoh"))
    return float(doc)


def _program_values(spec: InputSpec) -> list[float]:
    return list(spec.values) if isinstance(spec, InputProgram) else [float(spec)]  # type: ignore[arg-type]


def design_for_case(model: CompiledModel, initial_state: Mapping[str, Any], inputs: Mapping[str, InputSpec],
                    start_s: float, until_s: float, interval_s: float, *, state_spread: float = 0.01,
                    input_knots: int = 4, input_margin: float = 0.05, interpolation: str = "linear",
                    parameters: Sequence[ParameterRange] = (), seed: int = 0,
                    input_ranges: Mapping[str, tuple[float, float]] | None = None) -> TrainingDesign:
    """A default design around a simulation case: every state x (1 ± ``state_spread``); every manipulated input a
    programme of ``input_knots`` knots over the range its case values span, widened by ``input_margin`` (relative
    to that span, or to the value for a constant input) and clipped to its declared bounds (``input_ranges``
    overrides a range, name -> (low, high)); disturbance inputs at the case's values; ``parameters`` as given."""
    d = model.declaration
    state_ranges = tuple(StateRange(v.name, 1.0 - state_spread, 1.0 + state_spread) for v in d.states
                         if state_spread > 0)
    ranges: list[InputRange] = []
    base_inputs: dict[str, Any] = {}
    overrides = dict(input_ranges or {})
    for spec in d.inputs:
        if spec.role is InputRole.MANIPULATED and spec.size == 1 and spec.name in inputs:
            if spec.name in overrides:
                low, high = overrides[spec.name]
            else:
                values = _program_values(inputs[spec.name])
                low, high = min(values), max(values)
                pad = input_margin * ((high - low) if high > low else max(abs(low), 1e-12))
                low, high = max(low - pad, spec.lower), min(high + pad, spec.upper)
            ranges.append(InputRange(spec.name, float(low), float(high), input_knots, interpolation))  # type: ignore[arg-type]
        elif spec.name in inputs:
            base_inputs[spec.name] = input_spec_to_json(inputs[spec.name])
        else:
            base_inputs[spec.name] = float(spec.nominal)
    base_state = {k: np.asarray(v, dtype=float).tolist() for k, v in initial_state.items()}
    design = TrainingDesign(base_state=base_state, base_inputs=base_inputs, start_s=float(start_s),
                            until_s=float(until_s), interval_s=float(interval_s), states=state_ranges,
                            inputs=tuple(ranges), parameters=tuple(parameters), seed=seed)
    design.validate(model)
    return design
