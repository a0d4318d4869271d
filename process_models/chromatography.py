"""Chromatography column: factory (from a case file or a line's ``[model]`` table), section-wise simulator and
registry entry.

A *case file* (``examples/cases/chromatography_*.toml``) describes one column run completely::

    [case]            name, description, source, output_interval_s
    [column]          transport = "equilibrium_dispersive" | "lumped_rate_with_pores" | "general_rate",
                      components, length_m, interstitial_velocity_m_per_s, axial_dispersion_m2_per_s,
                      column_porosity | total_porosity, particle_porosity, particle_radius_m,
                      film_diffusion_m_per_s, pore_diffusion_m2_per_s, binding = "kinetic" | "rapid_equilibrium"
    [isotherm]        kind = "linear" | "langmuir" | "sma" and its values (see chromatography_isotherms)
    [discretisation]  axial_cells, particle_cells, weno_order
    [initial]         liquid_mol_per_m3, bound_mol_per_m3 (optional: equilibrium with the liquid)
    [inlet]           end_time_s, [[inlet.sections]] name, start_time_s, concentration, slope
    [solver]          rtol, atol (optional)

The same case file drives CADET-Core in ``tools/cadet_reference.py``, which is how the model is validated.

:func:`simulate_column` integrates the declared model section by section with one CVODES integrator per
section (sparse direct linear solver on the banded Jacobian, the inlet polynomial exact inside a section).
The generic :func:`process_models.simulator.simulate` works on the same compiled model too (inputs
``inlet_concentration_<component>``; see :meth:`ChromatographyColumn.input_functions`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np

from process_models.chromatography_inlet import InletProgram, inlet_program_from_mapping
from process_models.chromatography_isotherms import AnyIsotherm, isotherm_from_mapping
from process_models.chromatography_transport import (
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
from process_models.simulator import SimulationError, SimulationResult

CASES_DIR = Path(__file__).resolve().parent.parent / "examples" / "cases"
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
                                column_layout(spec, discretisation))


# ----------------------------------------------------------------------------------------------
# Case files
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ChromatographyCase:
    """One run: a column, its inlet program, initial state and output grid."""

    name: str
    description: str
    source: str
    column: ChromatographyColumn
    program: InletProgram
    initial_liquid: tuple[float, ...]
    initial_bound: tuple[float, ...] | None
    output_interval_s: float
    rtol: float = 1e-6
    atol: float = 1e-8

    def output_times(self) -> np.ndarray:
        """Output grid (s) from the program start to its end, every ``output_interval_s``."""
        t0, t1 = self.program.start_time_s, self.program.end_time_s
        n = int(round((t1 - t0) / self.output_interval_s))
        return np.linspace(t0, t1, n + 1)

    def simulate(self, times_s: Sequence[float] | None = None, parameters: Mapping[str, float] | None = None,
                 progress: bool = False) -> SimulationResult:
        return simulate_column(self.column, self.program, self.output_times() if times_s is None else times_s,
                               initial_state=self.column.initial_state(self.initial_liquid, self.initial_bound),
                               parameters=parameters, rtol=self.rtol, atol=self.atol, progress=progress)


_TOP_KEYS = {"case", "column", "isotherm", "discretisation", "initial", "inlet", "solver"}
_COLUMN_KEYS = {f.name for f in dataclasses.fields(ColumnSpec)}
_DISC_KEYS = {f.name for f in dataclasses.fields(Discretisation)}


def _table(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise ChromatographyCaseError(f"{where}: missing table [{key}]")
    return value


def case_from_mapping(doc: Mapping[str, Any], where: str = "case",
                      discretisation_overrides: Mapping[str, int] | None = None) -> ChromatographyCase:
    """Parse a case document (see the module docstring); errors name ``where`` and the key."""
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ChromatographyCaseError(f"{where}: unknown table(s) {unknown}; expected {sorted(_TOP_KEYS)}")
    meta = _table(doc, "case", where)
    col = dict(_table(doc, "column", where))
    bad = sorted(set(col) - _COLUMN_KEYS)
    if bad:
        raise ChromatographyCaseError(f"{where}: [column] unknown key(s) {bad}; expected {sorted(_COLUMN_KEYS)}")
    try:
        col["transport"] = TransportModel(col.get("transport"))
        col["binding"] = BindingMode(col.get("binding", "kinetic"))
    except ValueError as exc:
        raise ChromatographyCaseError(f"{where}: [column] {exc}; transport one of "
                                      f"{[t.value for t in TransportModel]}, binding one of "
                                      f"{[b.value for b in BindingMode]}") from exc
    for key in ("components", "film_diffusion_m_per_s", "pore_diffusion_m2_per_s"):
        if key in col:
            col[key] = tuple(col[key])
    disc_table = dict(doc.get("discretisation", {}))
    disc_table.update(discretisation_overrides or {})
    bad = sorted(set(disc_table) - _DISC_KEYS)
    if bad:
        raise ChromatographyCaseError(f"{where}: [discretisation] unknown key(s) {bad}; expected {sorted(_DISC_KEYS)}")
    try:
        spec = ColumnSpec(**col)
        components = spec.components
        isotherm = isotherm_from_mapping(_table(doc, "isotherm", where), components)
        disc = Discretisation(**disc_table)
        program = inlet_program_from_mapping(_table(doc, "inlet", where), components)
        name = str(meta.get("name", "chromatography_column"))
        column = build_column(spec, isotherm, disc, name=name, description=str(meta.get("description", "")))
    except (TypeError, ValueError) as exc:
        raise ChromatographyCaseError(f"{where}: {exc}") from exc
    init = _table(doc, "initial", where)
    liquid = tuple(float(v) for v in init.get("liquid_mol_per_m3", [0.0] * len(components)))
    bound = init.get("bound_mol_per_m3")
    if len(liquid) != len(components) or (bound is not None and len(bound) != len(components)):
        raise ChromatographyCaseError(f"{where}: [initial] liquid_mol_per_m3 / bound_mol_per_m3 need one value per "
                                      f"component {list(components)}")
    solver = doc.get("solver", {})
    interval = float(meta.get("output_interval_s", 1.0))
    if not interval > 0:
        raise ChromatographyCaseError(f"{where}: [case] output_interval_s = {interval}, expected > 0")
    return ChromatographyCase(
        name=name, description=str(meta.get("description", "")), source=str(meta.get("source", "")),
        column=column, program=program, initial_liquid=liquid,
        initial_bound=None if bound is None else tuple(float(v) for v in bound),
        output_interval_s=interval, rtol=float(solver.get("rtol", 1e-6)), atol=float(solver.get("atol", 1e-8)),
    )


def case_path(name_or_path: str | Path) -> Path:
    """A case file path from a path or a short name (``sma_load_wash_elute`` ->
    ``examples/cases/chromatography_sma_load_wash_elute.toml``)."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        return p
    return CASES_DIR / f"chromatography_{name_or_path}.toml"


def load_case(name_or_path: str | Path, discretisation_overrides: Mapping[str, int] | None = None) -> ChromatographyCase:
    """Load a chromatography case file (path or short name, see :func:`case_path`)."""
    path = case_path(name_or_path)
    if not path.is_file():
        available = sorted(f.stem.removeprefix("chromatography_") for f in CASES_DIR.glob("chromatography_*.toml"))
        raise ChromatographyCaseError(f"chromatography case '{name_or_path}': no file {path}; available: {available}")
    with path.open("rb") as fh:
        try:
            doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ChromatographyCaseError(f"{path}: {exc}") from exc
    return case_from_mapping(doc, where=str(path), discretisation_overrides=discretisation_overrides)


# ----------------------------------------------------------------------------------------------
# Section-wise simulation
# ----------------------------------------------------------------------------------------------
def _section_dae(model: CompiledModel, ncomp: int, order: np.ndarray) -> dict[str, ca.SX]:
    """The model's ODE in cell-major state order ``z = x[order]`` with the inlet ``c0 + slope (t - t_section)``;
    parameters ``[p; c0; slope; t_section]``."""
    c0 = ca.SX.sym("c_in0", ncomp)
    slope = ca.SX.sym("c_in_slope", ncomp)
    t_start = ca.SX.sym("t_section")
    z = ca.SX.sym("z", model.nx)
    inverse = np.argsort(order)
    x_of_z = z[inverse.tolist()]
    ode = ca.substitute(model.xdot_expr, ca.vertcat(model.u_sym, model.x_sym),
                        ca.vertcat(c0 + slope * (model.t_sym - t_start), x_of_z))[order.tolist()]
    return {"x": z, "p": ca.vertcat(model.p_sym, c0, slope, t_start), "t": model.t_sym, "ode": ode}


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
    order = cell_major_order(column.layout, model.state_slices)
    dae = _section_dae(model, len(column.components), order)
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
        integ = ca.integrator(f"{model.declaration.name}_section{k}", "cvodes", dae, t_now, list(grid), opts)
        q = np.concatenate([p, section.concentration, section.slopes(), [a]])
        try:
            zf = np.asarray(integ(x0=x[order], p=q)["xf"], dtype=float).reshape(model.nx, grid.size)
        except RuntimeError as exc:
            raise SimulationError(f"simulate_column(model '{model.declaration.name}'): integration failed in "
                                  f"section '{section.name}' [{a}, {b}] s: {str(exc).strip().splitlines()[-1]}") from exc
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
    y = np.asarray(model.output.map(times.size)(states, u_pts, np.repeat(p[:, None], times.size, axis=1),
                                                times[None, :]), dtype=float).reshape(model.ny, times.size)
    return SimulationResult(model=model, times_s=times, states=states, outputs=y, inputs=u_pts,
                            wall_time_s=time.perf_counter() - started,
                            parameters=model.declaration.parameter_values(parameters))


# ----------------------------------------------------------------------------------------------
# Registry factory
# ----------------------------------------------------------------------------------------------
_OPTION_KEYS = {"case", "axial_cells", "particle_cells", "weno_order", "column_volume_ml", "parameters"}


def chromatography_model(options: Mapping[str, Any]) -> ModelDeclaration:
    """Registry factory: a column declaration from a line's ``[model]`` table.

    Keys: ``case`` (short name or path of a case file, default ``"sma_load_wash_elute"``), ``axial_cells``,
    ``particle_cells``, ``weno_order`` (override the case's discretisation), ``column_volume_ml`` (informational:
    the equations are per unit volume, so the volume only scales flow rates and amounts outside the model),
    ``parameters`` (table of parameter default overrides by name). Any other key is an error naming it.
    """
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise ChromatographyCaseError(f"chromatography_column model option(s) {unknown} unknown; expected some of "
                                      f"{sorted(_OPTION_KEYS)}")
    volume = options.get("column_volume_ml")
    if volume is not None and not (isinstance(volume, int | float) and volume > 0):
        raise ChromatographyCaseError(f"chromatography_column option 'column_volume_ml' = {volume!r}, expected > 0")
    overrides = {k: int(options[k]) for k in ("axial_cells", "particle_cells", "weno_order") if k in options}
    case = load_case(str(options.get("case", DEFAULT_CASE)), discretisation_overrides=overrides)
    declaration = case.column.declaration
    params = options.get("parameters", {})
    if not isinstance(params, Mapping):
        raise ChromatographyCaseError(f"chromatography_column option 'parameters' must be a table, got {params!r}")
    values = declaration.parameter_values(params)  # validates names and bounds
    new_params = tuple(dataclasses.replace(p, value=values[p.name]) for p in declaration.parameters)
    return dataclasses.replace(declaration, parameters=new_params)


def _register() -> None:
    try:
        from process_models.registry import register_model
    except ImportError:  # the registry module is optional until it lands
        return
    register_model("chromatography_column", chromatography_model,
                   "packed-bed chromatography column (ED, LRMP or GRM; linear, Langmuir or SMA binding)")


_register()

__all__ = [
    "CASES_DIR",
    "ChromatographyCase",
    "ChromatographyCaseError",
    "ChromatographyColumn",
    "ColumnError",
    "build_column",
    "case_from_mapping",
    "case_path",
    "chromatography_model",
    "load_case",
    "simulate_column",
]
