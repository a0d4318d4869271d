"""Simulation case files (TOML): one unit's model, initial state and input programs.

Format (the ``[model]`` table takes the same keys as ``[units.<unit>.model]`` in a line config)::

    [case]
    name = "feed_tank_heat_up"
    kind = "mixing_tank"            # a registered model kind (process_models.registry)
    until_s = 3600.0                # end time, s
    output_interval_s = 10.0        # reporting interval, s
    start_s = 0.0                   # optional
    description = "..."             # optional

    [model]                         # model options / parameters
    tank_cross_section_m2 = 1.0

    [initial_state]                 # every state by name, SI (a vector state: one number or a list)
    level = 1.0

    [inputs.inlet_flow]             # a constant ...
    value = 0.0008
    [inputs.jacket_temperature_setpoint]   # ... or a program (interpolation "zoh" or "linear")
    times_s = [0.0, 600.0]
    values = [293.15, 313.15]
    interpolation = "zoh"

Every input of the model must be given, except disturbance inputs, which default to their declared
nominal value. A kind with process steps (``chromatography_column``) may give ``[[steps]]`` instead of
``[inputs]``; such a case is loaded and run by the kind's own case loader (the registry's ``case_loader``, e.g. the
column's section-wise simulator, which applies a flow change per step).
Loading collects every problem and raises one :class:`CaseFileError` listing them,
each with the file, the key and what was expected.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from process_models.declaration import CompiledModel, DeclarationError, InputRole, ModelDeclaration, compile_model
from process_models.registry import UnknownModelKindError, model_for_kind, resolve, unit_kind
from process_models.simulator import InputProgram, InputSpec, SimulationResult, simulate

__all__ = ["CaseFile", "CaseFileError", "load_case", "simulate_case", "summary"]

_SECTIONS = ("case", "model", "initial_state", "inputs", "steps")
_CASE_KEYS = ("name", "kind", "until_s", "output_interval_s", "start_s", "description")


class CaseFileError(ValueError):
    """A case file is unreadable or invalid; ``errors`` lists every problem found."""

    def __init__(self, path: Path, errors: Sequence[str]) -> None:
        self.path = path
        self.errors = list(errors)
        super().__init__(f"{path}: {len(self.errors)} error(s):\n" + "\n".join(f"  - {e}" for e in self.errors))


@dataclass(frozen=True)
class CaseFile:
    """A validated case: what :func:`simulate_case` runs."""

    path: Path
    name: str
    kind: str
    description: str
    declaration: ModelDeclaration
    model: CompiledModel
    start_s: float
    until_s: float
    output_interval_s: float
    initial_state: Mapping[str, float | np.ndarray]
    inputs: Mapping[str, InputSpec]
    defaulted_inputs: tuple[str, ...]
    runner: Callable[[np.ndarray, bool], SimulationResult] | None = None
    """The kind's own simulator ``(times_s, progress) -> result`` (cases with ``[[steps]]``); None: generic."""

    def simulate(self, times_s: np.ndarray, progress: bool = True) -> SimulationResult:
        """Run the case on ``times_s`` (s): the kind's own simulator when it has one, else the generic one."""
        if self.runner is not None:
            return self.runner(times_s, progress)
        return simulate(self.model, self.initial_state, times_s, self.inputs, progress=progress)

    def times_s(self, until_s: float | None = None) -> np.ndarray:
        """Output times from ``start_s`` to ``until_s`` (the file's unless overridden) every ``output_interval_s``."""
        end = self.until_s if until_s is None else float(until_s)
        times = np.arange(self.start_s, end, self.output_interval_s)
        times = times[times < end - 1e-9 * max(1.0, abs(end))]
        return np.append(times, end)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_list(value: Any) -> list[float] | None:
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    return None


def load_case(path: Path | str) -> CaseFile:
    """Read and validate a case file; raises :class:`CaseFileError` listing every problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CaseFileError(path, [f"cannot read file: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise CaseFileError(path, [f"not valid TOML: {exc}"]) from exc
    errors: list[str] = []
    if "steps" in raw:
        return _kind_case(path, raw)

    for key in raw:
        if key not in _SECTIONS:
            errors.append(f"[{key}]: unknown section; expected {list(_SECTIONS)}")
    case = raw.get("case")
    if not isinstance(case, dict):
        errors.append("[case]: missing table; expected name, kind, until_s, output_interval_s")
        case = {}
    for key in case:
        if key not in _CASE_KEYS:
            errors.append(f"[case] '{key}': unknown key; expected {list(_CASE_KEYS)}")
    name = case.get("name", path.stem)
    if not isinstance(name, str) or not name:
        errors.append(f"[case] 'name': expected a non-empty string, got {name!r}")
        name = path.stem
    description = case.get("description", "")
    if not isinstance(description, str):
        errors.append(f"[case] 'description': expected a string, got {description!r}")
        description = ""
    start = case.get("start_s", 0.0)
    if not _is_number(start):
        errors.append(f"[case] 'start_s': expected a finite number of seconds, got {start!r}")
        start = 0.0
    until = case.get("until_s")
    if not _is_number(until) or not until > start:
        errors.append(f"[case] 'until_s': expected a number of seconds > start_s ({start}), got {until!r}")
        until = None
    interval = case.get("output_interval_s")
    if not _is_number(interval) or not interval > 0:
        errors.append(f"[case] 'output_interval_s': expected a number of seconds > 0, got {interval!r}")
        interval = None

    kind = case.get("kind")
    declaration: ModelDeclaration | None = None
    model: CompiledModel | None = None
    model_options = raw.get("model", {})
    if not isinstance(model_options, dict):
        errors.append(f"[model]: expected a table of model options, got {model_options!r}")
        model_options = {}
    if not isinstance(kind, str) or not kind:
        errors.append(f"[case] 'kind': expected a model kind string (e.g. \"mixing_tank\"), got {kind!r}")
    else:
        try:
            declaration = model_for_kind(kind, model_options)
            model = compile_model(declaration)
        except UnknownModelKindError as exc:
            errors.append(f"[case] 'kind': {exc}")
        except (DeclarationError, ValueError, TypeError) as exc:
            errors.append(f"[model]: {exc}")

    initial_state: dict[str, float | np.ndarray] = {}
    inputs: dict[str, InputSpec] = {}
    defaulted: list[str] = []
    raw_state = raw.get("initial_state")
    raw_inputs = raw.get("inputs", {})
    if not isinstance(raw_state, dict):
        errors.append("[initial_state]: missing table; expected every state of the model by name (SI units)")
        raw_state = {}
    if not isinstance(raw_inputs, dict):
        errors.append(f"[inputs]: expected tables [inputs.NAME], got {raw_inputs!r}")
        raw_inputs = {}
    if declaration is not None:
        _check_initial_state(declaration, raw_state, initial_state, errors)
        _check_inputs(declaration, raw_inputs, inputs, defaulted, errors)

    if errors:
        raise CaseFileError(path, errors)
    assert declaration is not None and model is not None and until is not None and interval is not None
    return CaseFile(path, name, kind, description, declaration, model, float(start), float(until), float(interval),
                    initial_state, inputs, tuple(defaulted))


def _kind_case(path: Path, raw: Mapping[str, Any]) -> CaseFile:
    """A case with ``[[steps]]``: loaded by its kind's ``case_loader`` (``path -> CaseFile``)."""
    case = raw.get("case")
    kind = case.get("kind") if isinstance(case, dict) else None
    try:
        entry = unit_kind(str(kind))
    except UnknownModelKindError as exc:
        raise CaseFileError(path, [f"[case] 'kind': {exc}"]) from exc
    if entry.case_loader is None:
        raise CaseFileError(path, [f"[[steps]]: kind '{kind}' has no process steps; give its inputs as "
                                   "[inputs.NAME] tables"])
    loader: Callable[[Path], CaseFile] = resolve(str(kind), entry.case_loader)
    return loader(path)


def _check_initial_state(declaration: ModelDeclaration, raw: Mapping[str, Any],
                         out: dict[str, float | np.ndarray], errors: list[str]) -> None:
    states = {v.name: v for v in declaration.states}
    for key in raw:
        if key not in states:
            errors.append(f"[initial_state] '{key}': not a state of '{declaration.name}'; states: {list(states)}")
    for name, var in states.items():
        if name not in raw:
            errors.append(f"[initial_state] '{name}': missing; expected a value in {var.unit} ({var.description})")
            continue
        value = raw[name]
        if _is_number(value):
            out[name] = float(value)
        elif (values := _number_list(value)) is not None and len(values) == var.size:
            out[name] = np.asarray(values)
        else:
            what = "a number" if var.size == 1 else f"a number or a list of {var.size} numbers"
            errors.append(f"[initial_state] '{name}': expected {what} in {var.unit}, got {value!r}")
            continue
        arr = np.atleast_1d(out[name])
        if np.any(arr < var.lower) or np.any(arr > var.upper):
            errors.append(f"[initial_state] '{name}': {value!r} {var.unit} outside [{var.lower}, {var.upper}]")


def _check_inputs(declaration: ModelDeclaration, raw: Mapping[str, Any], out: dict[str, InputSpec],
                  defaulted: list[str], errors: list[str]) -> None:
    specs = {v.name: v for v in declaration.inputs}
    for key in raw:
        if key not in specs:
            errors.append(f"[inputs.{key}]: not an input of '{declaration.name}'; inputs: {list(specs)}")
    for name, spec in specs.items():
        where = f"[inputs.{name}]"
        if name not in raw:
            if spec.role == InputRole.DISTURBANCE:
                out[name] = float(spec.nominal)
                defaulted.append(name)
            else:
                errors.append(f"{where}: missing; expected 'value = <{spec.unit}>' or 'times_s'/'values' "
                              f"({spec.description})")
            continue
        entry = raw[name]
        if _is_number(entry):
            out[name] = float(entry)
            continue
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected a table with 'value' or 'times_s' + 'values', got {entry!r}")
            continue
        unknown = [k for k in entry if k not in ("value", "times_s", "values", "interpolation")]
        if unknown:
            errors.append(
                f"{where}: unknown key(s) {unknown}; expected 'value' or 'times_s', 'values', 'interpolation'"
            )
        if "value" in entry:
            if any(k in entry for k in ("times_s", "values", "interpolation")):
                errors.append(f"{where}: give either 'value' or 'times_s'/'values', not both")
            elif _is_number(entry["value"]):
                out[name] = float(entry["value"])
            else:
                errors.append(f"{where} 'value': expected a number in {spec.unit}, got {entry['value']!r}")
            continue
        times = _number_list(entry.get("times_s"))
        values = _number_list(entry.get("values"))
        interpolation = entry.get("interpolation", "zoh")
        ok = True
        if times is None:
            errors.append(f"{where} 'times_s': expected a non-empty list of times in s, got {entry.get('times_s')!r}")
            ok = False
        elif any(b <= a for a, b in zip(times, times[1:], strict=False)):
            errors.append(f"{where} 'times_s': expected strictly increasing times, got {times}")
            ok = False
        if values is None:
            errors.append(f"{where} 'values': expected a non-empty list of numbers in {spec.unit}, "
                          f"got {entry.get('values')!r}")
            ok = False
        elif times is not None and len(values) != len(times):
            errors.append(f"{where} 'values': expected {len(times)} values (one per time in 'times_s'), "
                          f"got {len(values)}")
            ok = False
        if interpolation not in ("zoh", "linear"):
            errors.append(f"{where} 'interpolation': expected \"zoh\" or \"linear\", got {interpolation!r}")
            ok = False
        if ok and times is not None and values is not None:
            out[name] = InputProgram(tuple(times), tuple(values), interpolation)


def simulate_case(path: Path | str, until_s: float | None = None, out_csv: Path | str | None = None,
                  progress: bool = True) -> SimulationResult:
    """Load, validate and simulate a case file; optionally write the trajectory to ``out_csv``."""
    case = load_case(path)
    if until_s is not None and not (_is_number(until_s) and until_s > case.start_s):
        raise CaseFileError(case.path, [f"until_s override: expected a number of seconds > {case.start_s}, "
                                        f"got {until_s!r}"])
    result = case.simulate(case.times_s(until_s), progress=progress)
    if out_csv is not None:
        result.to_csv(out_csv)
    return result


def summary(case: CaseFile, result: SimulationResult) -> str:
    """Short text report: timing and final values of states and outputs with units."""
    lines = [
        f"case '{case.name}' ({case.kind}): simulated {result.simulated_time_s:g} s in {result.wall_time_s:.3f} s "
        f"wall ({result.realtime_factor:,.0f}x real time), {result.times_s.size} output times",
    ]
    if case.defaulted_inputs:
        lines.append(f"disturbance inputs at their nominal values: {', '.join(case.defaulted_inputs)}")
    decl = case.declaration
    for title, group, getter in (("final state", decl.states, result.state), ("final outputs", decl.outputs,
                                                                              result.output)):
        lines.append(f"{title}:")
        for v in group:
            values = getter(v.name)
            final = (values[-1] if v.size == 1 else values[:, -1]) + 0.0  # + 0.0: -0.0 prints as 0
            if v.size == 1:
                text = f"{final:.6g}"
            elif v.size <= 8:
                text = "[" + ", ".join(f"{x:.4g}" for x in final) + "]"
            else:
                peak = int(np.argmax(final))
                text = f"[{v.size} values: min {final.min():.4g}, max {final.max():.4g} at index {peak}; full in CSV]"
            lines.append(f"  {v.name:<32} {text} {v.unit}")
    return "\n".join(lines)
