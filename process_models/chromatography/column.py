"""Chromatography column: factory (from a case file or a line's ``[model]`` table), section-wise simulator and
registry entry.

A *case file* (the shipped ones: ``examples/cases/chromatography_*.toml``, package data of
:mod:`linetwin_examples`) is a generic case file of
:mod:`process_models.case_file` (so ``linetwin simulate`` runs it) whose ``[model]`` table holds the column::

    [case]            name, kind = "chromatography_column", until_s, output_interval_s, description
    [model]           transport = "equilibrium_dispersive" | "lumped_rate_with_pores" | "general_rate",
                      binding = "kinetic" | "rapid_equilibrium", components, length_m,
                      interstitial_velocity_m_per_s, axial_dispersion_m2_per_s, column_porosity | total_porosity,
                      particle_porosity, particle_radius_m, film_diffusion_m_per_s, pore_diffusion_m2_per_s
    [model.isotherm]  kind = "linear" | "langmuir" | "sma" and its values (see chromatography_isotherms)
    [model.discretisation]  method = "fv" (axial_cells, particle_cells, weno_order) | "dg" (polynomial_degree,
                      elements, particle_cells = collocation points; see chromatography_spectral)
    [model.detector]  uv_absorptivity_m2_per_mol, uv_path_length_m, molar_conductivity_s_m2_per_mol,
                      viscosity_pa_s (optional; see chromatography_detectors)
    [initial_state]   bulk_concentration_<c>, pore_concentration_<c>, bound_concentration_<c> (number or list)
    [inputs.inlet_concentration_<c>]  value, or times_s + values + interpolation ("zoh" steps, "linear" ramps)

The same case files drive CADET-Core in ``tools/cadet_reference.py``, which is how the model is validated.
``binding = "rapid_equilibrium"`` with ``isotherm.kind = "sma"`` keeps the bound states (the equilibrium is implicit);
such a run must start at equilibrium with salt > 0
(:func:`process_models.chromatography.rapid_equilibrium.rapid_equilibrium_start_problems`, checked by
:func:`load_case` and :func:`simulate_column`).

:func:`simulate_column` integrates the declared model section by section with one CVODES integrator per
section (sparse direct linear solver on the banded Jacobian, the inlet polynomial exact inside a section).
The generic :func:`process_models.simulator.simulate` works on the same compiled model too (inputs
``inlet_concentration_<component>``; see :meth:`ChromatographyColumn.input_functions`).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np

from linetwin_examples import examples_dir
from process_models.chromatography.detectors import detector_from_mapping
from process_models.chromatography.inlet import (
    InletProgram,
    InletSection,
    inlet_program_from_inputs,
    interstitial_velocity,
    program_from_steps,
)
from process_models.chromatography.isotherms import AnyIsotherm, isotherm_from_mapping
from process_models.chromatography.rapid_equilibrium import rapid_equilibrium_start_problems
from process_models.chromatography.transport import (
    BindingMode,
    ColumnError,
    ColumnLayout,
    ColumnSpec,
    Discretisation,
    TransportModel,
    cell_major_order,
    column_declaration,
    column_initial_state,
    column_layout,
)
from process_models.declaration import CompiledModel, DeclarationError, ModelDeclaration, compile_model
from process_models.model_functions import PerModelFunctions
from process_models.simulator import InputProgram, SimulationError, SimulationResult

if TYPE_CHECKING:
    from process_models.case_file import CaseFile

CASES_DIR = examples_dir() / "cases"
"""The shipped case library (package data, found through ``importlib.resources``)."""
DEFAULT_CASE = "sma_load_wash_elute"


class ChromatographyCaseError(DeclarationError):
    """A chromatography case file or model table is malformed (names the file and key)."""


@dataclass(frozen=True, eq=False)
class ChromatographyColumn:
    """A discretised column: its specification, isotherm, discretisation, declaration and compiled model."""

    spec: ColumnSpec
    isotherm: AnyIsotherm
    discretisation: Discretisation
    declaration: ModelDeclaration
    model: CompiledModel
    layout: ColumnLayout

    @property
    def components(self) -> tuple[str, ...]:
        return self.layout.components

    def initial_state(self, liquid: Sequence[float], bound: Sequence[float] | None = None) -> dict[str, np.ndarray]:
        """Uniform initial state (mol/m3 liquid, mol/m3 solid; bound defaults to equilibrium with ``liquid``)."""
        return column_initial_state(self.spec, self.isotherm, self.discretisation, liquid, bound)

    def input_functions(self, program: InletProgram) -> dict[str, Any]:
        """``inputs`` mapping for :func:`process_models.simulator.simulate` from an inlet program."""
        return {f"inlet_concentration_{c}": program.component_function(c) for c in self.components}


def build_column(spec: ColumnSpec, isotherm: AnyIsotherm, discretisation: Discretisation,
                 name: str = "chromatography_column", description: str = "") -> ChromatographyColumn:
    """Declare and compile a column model."""
    declaration = column_declaration(spec, isotherm, discretisation, name=name, description=description)
    return ChromatographyColumn(spec, isotherm, discretisation, declaration, compile_model(declaration),
                                column_layout(spec, discretisation, isotherm))


# ----------------------------------------------------------------------------------------------
# Column from a [model] table, case files
# ----------------------------------------------------------------------------------------------
_COLUMN_KEYS = {f.name for f in dataclasses.fields(ColumnSpec)}
_DISC_KEYS = {f.name for f in dataclasses.fields(Discretisation)}
_FLOW_KEYS = ("flow_rate_m3_per_s", "flow_rate_ml_per_min")
_MODEL_KEYS = _COLUMN_KEYS | {"isotherm", "discretisation", "parameters", "column_volume_ml", "case", "name",
                              "axial_cells", "particle_cells", "weno_order", "method", "polynomial_degree", "elements",
                              *_FLOW_KEYS}


def column_from_options(options: Mapping[str, Any], where: str = "chromatography_column model",
                        name: str = "chromatography_column", description: str = "") -> ChromatographyColumn:
    """A column from a ``[model]`` table: either the full definition (column keys, ``isotherm`` and
    ``discretisation`` tables) or ``case = "<short name or path>"`` naming a case file whose ``[model]`` is used.
    ``axial_cells``, ``particle_cells``, ``weno_order`` override the discretisation, ``parameters`` (a table by
    parameter name) overrides parameter defaults; ``column_volume_ml`` is informational (the equations are per unit
    volume). Errors name ``where`` and the key."""
    unknown = sorted(set(options) - _MODEL_KEYS)
    if unknown:
        raise ChromatographyCaseError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(_MODEL_KEYS)}")
    opts = dict(options)
    if "case" in opts:
        path = case_path(str(opts.pop("case")))
        base = dict(_read_toml(path).get("model", {}))
        if "case" in base:
            raise ChromatographyCaseError(f"{path}: [model] 'case' may not refer to another case")
        base.update({k: v for k, v in opts.items()})
        opts = base
        where = f"{where} (case file {path})"
    volume = opts.pop("column_volume_ml", None)
    if volume is not None and not (isinstance(volume, int | float) and volume > 0):
        raise ChromatographyCaseError(f"{where}: 'column_volume_ml' = {volume!r}, expected a number > 0")
    name = str(opts.pop("name", name))
    disc_table = dict(opts.pop("discretisation", {}))
    for key in ("axial_cells", "particle_cells", "weno_order", "method", "polynomial_degree", "elements"):
        if key in opts:
            disc_table[key] = opts.pop(key)
    bad = sorted(set(disc_table) - _DISC_KEYS)
    if bad:
        raise ChromatographyCaseError(f"{where}: [discretisation] unknown key(s) {bad}; expected {sorted(_DISC_KEYS)}")
    dg_only = sorted({"polynomial_degree", "elements"} & set(disc_table))
    if dg_only and disc_table.get("method", "fv") != "dg":
        raise ChromatographyCaseError(f"{where}: [discretisation] {dg_only} apply only with method = 'dg' "
                                      f"(method is {disc_table.get('method', 'fv')!r})")
    overrides = opts.pop("parameters", {})
    if not isinstance(overrides, Mapping):
        raise ChromatographyCaseError(f"{where}: 'parameters' must be a table of parameter values, got {overrides!r}")
    iso_table = opts.pop("isotherm", None)
    if not isinstance(iso_table, Mapping):
        raise ChromatographyCaseError(f"{where}: missing table 'isotherm' (kind = linear | langmuir | sma, ...)")
    col = dict(opts)
    try:
        col["transport"] = TransportModel(col.get("transport"))
        col["binding"] = BindingMode(col.get("binding", "kinetic"))
    except ValueError as exc:
        raise ChromatographyCaseError(f"{where}: {exc}; 'transport' one of {[t.value for t in TransportModel]}, "
                                      f"'binding' one of {[b.value for b in BindingMode]}") from exc
    for key in ("components", "film_diffusion_m_per_s", "pore_diffusion_m2_per_s"):
        if key in col:
            col[key] = tuple(col[key])
    flow = _declared_flow(col, where)
    try:
        if "detector" in col:
            if not isinstance(col["detector"], Mapping):
                raise ChromatographyCaseError(f"{where}: 'detector' must be a table")
            col["detector"] = detector_from_mapping(col["detector"])
        if flow is not None:
            probe = ColumnSpec(**{**col, "interstitial_velocity_m_per_s": 1.0})
            probe.check()
            col["interstitial_velocity_m_per_s"] = interstitial_velocity(flow, float(col["column_diameter_m"]),
                                                                         probe.flow_porosity)
        spec = ColumnSpec(**col)
        isotherm = isotherm_from_mapping(iso_table, spec.components)
        disc = Discretisation(**disc_table)
        declaration = column_declaration(spec, isotherm, disc, name=name, description=description)
        values = declaration.parameter_values(overrides)
    except (TypeError, ValueError) as exc:
        raise ChromatographyCaseError(f"{where}: {exc}") from exc
    if overrides:
        declaration = dataclasses.replace(declaration, parameters=tuple(
            dataclasses.replace(p, value=values[p.name]) for p in declaration.parameters))
    return ChromatographyColumn(spec, isotherm, disc, declaration, compile_model(declaration),
                                column_layout(spec, disc, isotherm))


def _declared_flow(col: dict[str, Any], where: str) -> float | None:
    """Pop a ``[model]`` volumetric flow rate (m3/s or mL/min) stated instead of the interstitial velocity; needs
    ``column_diameter_m``. Returns m3/s or None."""
    given = [k for k in _FLOW_KEYS if k in col]
    if not given:
        return None
    if len(given) > 1 or "interstitial_velocity_m_per_s" in col:
        raise ChromatographyCaseError(f"{where}: give one of 'interstitial_velocity_m_per_s', "
                                      f"'flow_rate_m3_per_s' and 'flow_rate_ml_per_min', got {sorted(given)}"
                                      + (" and 'interstitial_velocity_m_per_s'" if "interstitial_velocity_m_per_s"
                                         in col else ""))
    value = col.pop(given[0])
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        raise ChromatographyCaseError(f"{where}: '{given[0]}' = {value!r}, expected a number > 0")
    if "column_diameter_m" not in col:
        raise ChromatographyCaseError(f"{where}: '{given[0]}' needs 'column_diameter_m' (u = Q / (A eps))")
    return float(value) * (1e-6 / 60.0 if given[0] == "flow_rate_ml_per_min" else 1.0)


@dataclass(frozen=True, eq=False)
class ChromatographyCase:
    """One run: a column, its inlet program, initial state (by state name) and output grid."""

    name: str
    description: str
    path: Path
    column: ChromatographyColumn
    program: InletProgram
    initial_state: Mapping[str, float | np.ndarray]
    start_s: float
    until_s: float
    output_interval_s: float
    rtol: float = 1e-6
    atol: float = 1e-8

    def output_times(self) -> np.ndarray:
        """Output grid (s) from ``start_s`` to ``until_s`` every ``output_interval_s`` (end included)."""
        times = np.arange(self.start_s, self.until_s, self.output_interval_s)
        times = times[times < self.until_s - 1e-9 * max(1.0, abs(self.until_s))]
        return np.append(times, self.until_s)

    def uniform_initial(self) -> dict[str, tuple[float, ...]]:
        """Per quantity (``bulk``, ``pore``, ``bound``) the initial value of each component, for solvers that take
        one value per component (CADET's INIT_C / INIT_CP / INIT_Q); raises if a profile is not uniform."""
        out: dict[str, tuple[float, ...]] = {}
        full = self.column.model.unpack_states(self.column.model.pack_states(self.initial_state))
        for quantity in ("bulk", "pore", "bound"):
            values = []
            for c in self.column.components:
                key = f"{quantity}_concentration_{c}"
                if key not in full:
                    break
                arr = np.asarray(full[key])
                if not np.allclose(arr, arr[0], rtol=0, atol=0):
                    raise ChromatographyCaseError(f"{self.path}: [initial_state] '{key}' is not uniform")
                values.append(float(arr[0]))
            if len(values) == len(self.column.components):
                out[quantity] = tuple(values)
        return out

    def simulate(self, times_s: Sequence[float] | None = None, parameters: Mapping[str, float] | None = None,
                 progress: bool = False) -> SimulationResult:
        """Section-wise simulation (:func:`simulate_column`) on ``times_s`` (default: the case's grid)."""
        return simulate_column(self.column, self.program, self.output_times() if times_s is None else times_s,
                               initial_state=self.initial_state, parameters=parameters, rtol=self.rtol,
                               atol=self.atol, progress=progress)


def case_path(name_or_path: str | Path) -> Path:
    """A case file path from a path or a short name of the shipped library (``sma_load_wash_elute`` ->
    ``<shipped examples>/cases/chromatography_sma_load_wash_elute.toml``). A relative path is taken as given (a
    line config's ``case`` is made absolute, relative to the config, when the config is loaded)."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        return p
    return CASES_DIR / f"chromatography_{name_or_path}.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        available = sorted(_shipped_case_names())
        raise ChromatographyCaseError(f"chromatography case file {path} not found; available: {available}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ChromatographyCaseError(f"{path}: not valid TOML: {exc}") from exc


def _input_spec(where: str, entry: Any) -> float | InputProgram:
    if isinstance(entry, int | float):
        return float(entry)
    if not isinstance(entry, Mapping):
        raise ChromatographyCaseError(f"{where}: expected a number or a table with 'value' or 'times_s'/'values'")
    if "value" in entry:
        return float(entry["value"])
    try:
        return InputProgram(tuple(entry["times_s"]), tuple(entry["values"]), entry.get("interpolation", "zoh"))
    except (KeyError, TypeError, SimulationError) as exc:
        raise ChromatographyCaseError(f"{where}: {exc}; expected 'times_s', 'values', 'interpolation'") from exc


def _case_program(path: Path, doc: Mapping[str, Any], column: ChromatographyColumn, start: float,
                  until: float) -> InletProgram:
    """The inlet program of a case: ``[[steps]]`` (process steps) or ``[inputs.inlet_concentration_<c>]``."""
    if "steps" in doc:
        if "inputs" in doc:
            raise ChromatographyCaseError(f"{path}: give the inlet either as [[steps]] or as [inputs.*], not both")
        try:
            program = program_from_steps(column.components, doc["steps"], start, column.spec.column_diameter_m,
                                         column.spec.flow_porosity, where=f"{path}: [[steps]]")
        except ValueError as exc:
            raise ChromatographyCaseError(str(exc)) from exc
        if until > program.end_time_s + 1e-9 * max(1.0, abs(until)):
            raise ChromatographyCaseError(f"{path}: [case] until_s = {until} s is after the end of the last step "
                                          f"({program.end_time_s:g} s); lengthen the steps or shorten until_s")
        return program
    raw_inputs = doc.get("inputs", {})
    inputs = {key: _input_spec(f"{path}: [inputs.{key}]", entry) for key, entry in raw_inputs.items()}
    try:
        return inlet_program_from_inputs(column.components, inputs, start, until)
    except ValueError as exc:
        raise ChromatographyCaseError(f"{path}: [inputs] {exc}") from exc


def load_case(name_or_path: str | Path,
              discretisation_overrides: Mapping[str, int] | None = None) -> ChromatographyCase:
    """Load a chromatography case file (path or short name, see :func:`case_path`), optionally with another
    discretisation (``axial_cells``, ``particle_cells``, ``weno_order``)."""
    path = case_path(name_or_path)
    doc = _read_toml(path)
    meta = doc.get("case", {})
    if meta.get("kind", "chromatography_column") != "chromatography_column":
        raise ChromatographyCaseError(f"{path}: [case] kind = {meta.get('kind')!r}, expected 'chromatography_column'")
    model_table = doc.get("model")
    if not isinstance(model_table, Mapping):
        raise ChromatographyCaseError(f"{path}: missing table [model] (the column definition)")
    options = dict(model_table)
    options.update(discretisation_overrides or {})
    name = str(meta.get("name", path.stem))
    column = column_from_options(options, where=f"{path}: [model]", name=name,
                                 description=str(meta.get("description", "")))
    try:
        start, until = float(meta.get("start_s", 0.0)), float(meta["until_s"])
        interval = float(meta["output_interval_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChromatographyCaseError(f"{path}: [case] needs numbers 'until_s' and 'output_interval_s': {exc}") from exc
    if not (until > start and interval > 0):
        raise ChromatographyCaseError(f"{path}: [case] expected until_s > start_s and output_interval_s > 0")
    program = _case_program(path, doc, column, start, until)
    raw_state = doc.get("initial_state")
    if raw_state is None:
        state: dict[str, float | np.ndarray] = dict(column.initial_state([0.0] * len(column.components)))
    else:
        state = {k: np.asarray(v, dtype=float) if isinstance(v, list) else float(v) for k, v in raw_state.items()}
        try:
            column.model.pack_states(state)
        except DeclarationError as exc:
            raise ChromatographyCaseError(f"{path}: [initial_state] {exc}") from exc
    problems = rapid_equilibrium_start_problems(column.layout, column.model, column.model.pack_states(state), program)
    if problems:
        raise ChromatographyCaseError(f"{path}: " + "; ".join(problems))
    return ChromatographyCase(name=name, description=str(meta.get("description", "")), path=path, column=column,
                              program=program, initial_state=state, start_s=start, until_s=until,
                              output_interval_s=interval)


# ----------------------------------------------------------------------------------------------
# Section-wise simulation
# ----------------------------------------------------------------------------------------------
def _section_dae(model: CompiledModel, ncomp: int, order: np.ndarray) -> dict[str, ca.SX]:
    """The model's ODE in cell-major state order ``z = x[order]`` with the inlet
    ``c0 + c1 tau + c2 tau^2 + c3 tau^3``, ``tau = t - t_section``; parameters ``[p; c0; c1; c2; c3; t_section]``."""
    coeff = [ca.SX.sym(f"c_in{k}", ncomp) for k in range(4)]
    t_start = ca.SX.sym("t_section")
    z = ca.SX.sym("z", model.nx)
    inverse = np.argsort(order)
    x_of_z = z[inverse.tolist()]
    tau = model.t_sym - t_start
    inlet = coeff[0] + tau * (coeff[1] + tau * (coeff[2] + tau * coeff[3]))
    ode = ca.substitute(model.xdot_expr, ca.vertcat(model.u_sym, model.x_sym),
                        ca.vertcat(inlet, x_of_z))[order.tolist()]
    return {"x": z, "p": ca.vertcat(model.p_sym, *coeff, t_start), "t": model.t_sym, "ode": ode}


_SECTION_INTEGRATORS: PerModelFunctions[ca.Function] = PerModelFunctions(per_model=64)
"""Integrators kept per model and thread (least recently used dropped first): a run's sections on its grid, for a
few grids."""


def _section_integrator(model: CompiledModel, ncomp: int, order: np.ndarray, name: str, t_start: float,
                        grid: np.ndarray, opts: Mapping[str, Any]) -> ca.Function:
    """The CVODES integrator of one inlet section from ``t_start`` reporting at ``grid``, made once per (model,
    thread, section span and grid, options) and reused (:mod:`process_models.model_functions`): building it costs
    more than integrating a short section, and the pooling estimator runs the same sections on the same grid for
    every evaluation of its fit (the initial state and the parameters are the call's inputs, so a reused integrator
    gives the same result as a new one)."""
    key = (ncomp, order.tobytes(), name, float(t_start), grid.tobytes(),
           tuple(sorted((k, repr(v)) for k, v in opts.items())))
    return _SECTION_INTEGRATORS.get(model, key, lambda: ca.integrator(
        name, "cvodes", _section_dae(model, ncomp, order), float(t_start), list(grid), dict(opts)))


def simulate_column(column: ChromatographyColumn, program: InletProgram, times_s: Sequence[float],
                    initial_state: Mapping[str, float | np.ndarray] | None = None,
                    parameters: Mapping[str, float] | None = None, rtol: float = 1e-6, atol: float = 1e-8,
                    progress: bool = False) -> SimulationResult:
    """Integrate ``column`` under the inlet ``program`` and report at ``times_s`` (s, within the program).

    One CVODES run per inlet section (BDF, sparse direct solver), restarted at every section start where the
    inlet may jump; a linear gradient enters the right-hand side exactly. ``initial_state`` defaults to a clean
    column (all zero; for SMA the bound salt equals the ionic capacity). Returns a
    :class:`process_models.simulator.SimulationResult` (outputs ``outlet_concentration_<component>``).
    """
    started = time.perf_counter()
    model = column.model
    if tuple(program.components) != column.components:
        raise SimulationError(f"simulate_column: program components {list(program.components)} differ from the "
                              f"column's {list(column.components)}")
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0) or not np.all(np.isfinite(times)):
        raise SimulationError("simulate_column: times_s must be a strictly increasing 1-D array of >= 2 finite times")
    tol = 1e-9 * max(1.0, abs(program.end_time_s))
    if times[0] < program.start_time_s - tol or times[-1] > program.end_time_s + tol:
        raise SimulationError(f"simulate_column: times_s [{times[0]}, {times[-1]}] s outside the inlet program "
                              f"[{program.start_time_s}, {program.end_time_s}] s")
    if initial_state is None:
        initial_state = column.initial_state([0.0] * len(column.components))
    try:
        x = model.pack_states(initial_state)
        p = model.pack_parameters(parameters)
    except DeclarationError as exc:
        raise SimulationError(f"simulate_column(model '{model.declaration.name}'): {exc}") from exc
    problems = rapid_equilibrium_start_problems(column.layout, model, x, program, parameters)
    if problems:
        raise SimulationError(f"simulate_column(model '{model.declaration.name}'): " + "; ".join(problems))
    velocity_index = model.parameter_names.index("interstitial_velocity")
    label = re.sub(r"\W", "_", model.declaration.name)
    order = cell_major_order(column.layout, model.state_slices)
    opts = {"abstol": atol, "reltol": rtol, "max_num_steps": 500000, "disable_internal_warnings": True}
    states = np.zeros((model.nx, times.size))
    if abs(times[0] - program.start_time_s) > tol:
        raise SimulationError("simulate_column: times_s must start at the program start "
                              f"({program.start_time_s} s); got {times[0]} s")
    states[:, 0] = x
    done = 1
    t_now = float(times[0])
    for k, (section, a, b) in enumerate(program.section_bounds()):
        if b <= t_now + tol or done >= times.size:
            continue
        inside = times[done:][times[done:] <= b + tol]
        grid = np.unique(np.concatenate([inside, [b]])) if (inside.size == 0 or inside[-1] < b - tol) else inside
        integ = _section_integrator(model, len(column.components), order, f"{label}_section{k}", t_now, grid, opts)
        q = np.concatenate([_section_parameters(p, velocity_index, section), section.coefficients().ravel(), [a]])
        try:
            zf = np.asarray(integ(x0=x[order], p=q)["xf"], dtype=float).reshape(model.nx, grid.size)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1]
            raise SimulationError(f"simulate_column(model '{model.declaration.name}'): integration failed in "
                                  f"section '{section.name}' [{a}, {b}] s: {reason}") from exc
        xf = np.empty_like(zf)
        xf[order] = zf
        if not np.all(np.isfinite(xf)):
            raise SimulationError(f"simulate_column: non-finite state in section '{section.name}'")
        n_in = inside.size
        states[:, done:done + n_in] = xf[:, :n_in]
        done += n_in
        x = xf[:, -1]
        t_now = float(grid[-1])
        if progress:
            sys.stderr.write(f"\r{model.declaration.name}: section {k + 1}/{len(program.sections)} "
                             f"'{section.name}' to t={b:g} s, wall {time.perf_counter() - started:.2f} s")
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    u_pts = program.concentration_at(times)
    p_pts = np.repeat(p[:, None], times.size, axis=1)
    p_pts[velocity_index] = program.velocity_at(times, float(p[velocity_index]))
    y = np.asarray(model.output.map(times.size)(states, u_pts, p_pts, times[None, :]),
                   dtype=float).reshape(model.ny, times.size)
    return SimulationResult(model=model, times_s=times, states=states, outputs=y, inputs=u_pts,
                            wall_time_s=time.perf_counter() - started,
                            parameters=model.declaration.parameter_values(parameters))


def case_file_with_steps(path: Path) -> CaseFile:
    """The registry's ``case_loader``: a case file with ``[[steps]]`` as a generic
    :class:`process_models.case_file.CaseFile` run by :func:`simulate_column` (so ``linetwin simulate`` applies the
    steps' flow changes). Errors: :class:`process_models.case_file.CaseFileError` naming the file and key."""
    from process_models.case_file import CaseFile, CaseFileError

    try:
        case = load_case(Path(path))
    except (ChromatographyCaseError, ValueError) as exc:
        message = str(exc).removeprefix(f"{path}: ")
        raise CaseFileError(Path(path), [message]) from exc
    return CaseFile(case.path, case.name, "chromatography_column", case.description, case.column.declaration,
                    case.column.model, case.start_s, case.until_s, case.output_interval_s, case.initial_state, {},
                    (), runner=lambda times, progress: case.simulate(times, progress=progress))


def _section_parameters(p: np.ndarray, velocity_index: int, section: InletSection) -> np.ndarray:
    """The model parameters while ``section`` runs: its own interstitial velocity, if it sets one."""
    if section.interstitial_velocity_m_per_s is None:
        return p
    q = p.copy()
    q[velocity_index] = section.interstitial_velocity_m_per_s
    return q


# ----------------------------------------------------------------------------------------------
# Registry factory
# ----------------------------------------------------------------------------------------------
def chromatography_model(options: Mapping[str, Any]) -> ModelDeclaration:
    """Registry factory: a column declaration from a line's or case file's ``[model]`` table (see
    :func:`column_from_options`). The table states the column: its keys, or ``case`` naming a case file (in a line
    config: relative to the config, or a short name of the shipped library); nothing is taken silently."""
    stated = bool(_COLUMN_KEYS & set(options)) or "case" in options
    if not stated and set(options) <= _MODEL_KEYS:  # (unknown keys: column_from_options names them)
        raise ChromatographyCaseError(
            "chromatography_column model: the column is not stated; expected case = \"FILE.toml\" (a case file, "
            f"relative to the line config) or a shipped case ({sorted(_shipped_case_names())}) or the column keys")
    return column_from_options(options).declaration


def _shipped_case_names() -> list[str]:
    return [f.stem.removeprefix("chromatography_") for f in CASES_DIR.glob("chromatography_*.toml")]



__all__ = [
    "CASES_DIR",
    "ChromatographyCase",
    "ChromatographyCaseError",
    "ChromatographyColumn",
    "ColumnError",
    "build_column",
    "case_file_with_steps",
    "column_from_options",
    "case_path",
    "chromatography_model",
    "load_case",
    "simulate_column",
]
