"""Process model speed: wall time per simulation and real-time factor, per model and case.

Rows measured here (the mixing tank and the RTD dispersion vessel) plus rows contributed by the
other model modules. Printed as a table and written to ``benchmarks/results/models.json``.

Contract for contributed rows
-----------------------------
If ``benchmarks/bench_crystallizer.py`` and/or ``benchmarks/bench_chromatography.py`` exist, this
script loads each (by file path; ``benchmarks`` need not be a package) and calls its ``rows()``
function with no arguments. ``rows()`` returns ``list[dict]``; each dict has at least

* ``model``: str — model name (e.g. ``"crystallizer"``)
* ``case``: str — what was simulated (e.g. ``"PBE 200 bins, 2 h cooling"``)
* ``wall_time_s``: float — wall-clock seconds per simulation (median of repeats, integrator built)
* ``simulated_time_s``: float — process time covered by one simulation, s
* ``realtime_factor``: float — ``simulated_time_s / wall_time_s``

and may add reference fields (e.g. ``reference``: a name; ``reference_wall_time_s``,
``speedup_vs_reference``, ``max_relative_error``); extra keys are kept in the JSON and shown in the
table's ``notes`` column. A module that is missing is skipped; one that fails is reported and skipped.

A second table, *accuracy per second*, compares the chromatography column's finite volumes and DG scheme against
the exact solution of :mod:`process_models.chromatography.laplace_reference` (GRM and LRMP, linear pulse).

Figures are comparable only between rows measured on the same machine in the same run.

Usage: ``.venv/bin/python benchmarks/models.py [--repeats 20] [--cadet]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from process_models.case_file import load_case  # noqa: E402
from process_models.chromatography.column import build_column, simulate_column  # noqa: E402
from process_models.chromatography.inlet import inlet_program_from_inputs  # noqa: E402
from process_models.chromatography.isotherms import LinearIsotherm  # noqa: E402
from process_models.chromatography.laplace_reference import linear_component, pulse_response  # noqa: E402
from process_models.chromatography.transport import (  # noqa: E402
    BindingMode,
    ColumnSpec,
    Discretisation,
    TransportModel,
)
from process_models.declaration import compile_model  # noqa: E402
from process_models.mixing.rtd import axial_dispersion_model  # noqa: E402
from process_models.simulator import InputProgram, sensitivities, simulate  # noqa: E402

CONTRIBUTED = ("bench_crystallizer.py", "bench_chromatography.py")
REQUIRED_KEYS = ("model", "case", "wall_time_s", "simulated_time_s", "realtime_factor")


def _timed(run: Any, repeats: int) -> tuple[float, float]:
    """(first call s, median of ``repeats`` further calls s)."""
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def _row(model: str, case: str, simulated_s: float, first_s: float, wall_s: float, **extra: Any) -> dict[str, Any]:
    return {"model": model, "case": case, "wall_time_s": wall_s, "simulated_time_s": simulated_s,
            "realtime_factor": simulated_s / wall_s, "first_call_s": first_s, **extra}


def mixing_tank_rows(repeats: int) -> list[dict[str, Any]]:
    case = load_case(ROOT / "examples" / "cases" / "mixing_tank.toml")
    rows = []
    for until, label in ((case.until_s, "example case 1 h, 10 s output"), (24 * 3600.0, "example inputs 24 h, 10 s")):
        times = case.times_s(until)

        def run(times: np.ndarray = times) -> None:
            simulate(case.model, case.initial_state, times, case.inputs)

        first, wall = _timed(run, repeats)
        rows.append(_row("mixing_tank", label, float(times[-1] - times[0]), first, wall,
                         n_states=case.model.nx, n_outputs_times=int(times.size)))
    times = case.times_s()

    def run_sens() -> None:
        sensitivities(case.model, case.initial_state, times, case.inputs, None,
                      ["overall_heat_transfer_coefficient", "outlet_valve_coefficient"])

    first, wall = _timed(run_sens, max(3, repeats // 4))
    rows.append(_row("mixing_tank", "1 h + forward sensitivities (2 parameters)", float(times[-1]), first, wall,
                     n_states=case.model.nx))
    return rows


def dispersion_rows(repeats: int) -> list[dict[str, Any]]:
    model = compile_model(axial_dispersion_model(n_cells=200, volume_m3=0.1, peclet_number=20.0))
    times = np.linspace(0.0, 1000.0, 1001)
    inputs = {"flow": 1e-3, "inlet_tracer_concentration": InputProgram((0.0, 1.0), (1.0, 0.0))}

    def run() -> None:
        simulate(model, {"tracer_concentration": 0.0}, times, inputs)

    first, wall = _timed(run, max(3, repeats // 4))
    return [_row("axial_dispersion", "200 cells, Pe 20, pulse, 10 tau, 1 s output", 1000.0, first, wall,
                 n_states=model.nx)]


def contributed_rows() -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for filename in CONTRIBUTED:
        path = Path(__file__).resolve().parent / filename
        if not path.exists():
            continue
        try:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            got = list(module.rows())
        except Exception:  # a contributed benchmark failing must not hide the others
            problems.append(f"{filename}: failed:\n{traceback.format_exc()}")
            continue
        for row in got:
            missing = [k for k in REQUIRED_KEYS if k not in row]
            if missing:
                problems.append(f"{filename}: row {row.get('model')}/{row.get('case')} lacks {missing}; skipped")
                continue
            rows.append({**row, "source": filename})
    return rows, problems


def _linear_column(transport: TransportModel) -> ColumnSpec:
    """CADET's LWE benchmark column, one component, linear rapid-equilibrium binding (H = 35.5)."""
    return ColumnSpec(transport, components=("a",), length_m=0.014, interstitial_velocity_m_per_s=5.75e-4,
                      axial_dispersion_m2_per_s=5.75e-8, column_porosity=0.37, particle_porosity=0.75,
                      particle_radius_m=4.5e-5, film_diffusion_m_per_s=(6.9e-6,),
                      pore_diffusion_m2_per_s=(6.07e-11,), binding=BindingMode.RAPID_EQUILIBRIUM)


def _cadet_tool() -> Any:
    spec = importlib.util.spec_from_file_location("cadet_reference", ROOT / "tools" / "cadet_reference.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _cadet_row(tool: Any, column: Any, program: Any, times: np.ndarray, exact: np.ndarray, repeats: int,
               transport: TransportModel, grid: str) -> dict[str, Any]:
    """The same column, program and resolution run by CADET-Core (FV or DG), scored against the exact outlet."""
    from process_models.chromatography.column import ChromatographyCase

    case = ChromatographyCase(name=f"accuracy_{transport.value}", description="", path=ROOT / "benchmarks",
                              column=column, program=program, initial_state=column.initial_state([0.0]),
                              start_s=0.0, until_s=float(times[-1]), output_interval_s=float(times[1] - times[0]),
                              rtol=1e-10, atol=1e-12)
    result = tool.run_loaded_case(case, repeats=max(1, min(repeats, 3)))
    outlet = np.asarray(result["outlet"]["a"], dtype=float)
    error = float(np.linalg.norm(outlet - exact) / np.linalg.norm(exact))
    return {"model": transport.value, "scheme": grid, "solver": f"CADET-Core {result['cadet_version']}",
            "states": None, "relative_l2_error": error, "wall_time_s": float(result["cadet_wall_time_s"]),
            "cadet_simulation_time_s": float(result["cadet_internal_time_s"])}


def accuracy_rows(repeats: int, smoke: bool, cadet: bool = False) -> list[dict[str, Any]]:
    """Error against the exact (Laplace) solution vs wall time: FV and DG, GRM and LRMP, a 10 s unit pulse.

    Error: relative L2 of the outlet at the output times (2500 s, 51 times; smoke 11). Wall: median of the
    timed simulations (integrator built per call, model compiled once; rtol 1e-10, atol 1e-12). ``cadet``: the
    same grids also run by CADET-Core (``tools/cadet_reference.py``'s side environment; FV WENO3/DG rows, wall =
    the fastest ``cadet-cli`` run incl. process start and HDF5 I/O, beside CADET's own simulation time)."""
    tool = _cadet_tool() if cadet else None
    if tool is not None and not tool.cadet_available():
        print("CADET-Core rows skipped: its side environment is absent (create it with "
              "`.venv/bin/python tools/cadet_reference.py --case ed_linear_pulse`)", file=sys.stderr)
        tool = None
    isotherm = LinearIsotherm(adsorption_rate_per_s=(3.55,), desorption_rate_per_s=(0.1,))
    times = np.linspace(0.0, 2500.0, 11 if smoke else 51)
    program = inlet_program_from_inputs(("a",), {"inlet_concentration_a": InputProgram((0.0, 10.0), (1.0, 0.0))},
                                        0.0, float(times[-1]))
    grids = [Discretisation(axial_cells=16, particle_cells=4), Discretisation(method="dg", polynomial_degree=4,
                                                                              elements=8, particle_cells=4)]
    if not smoke:
        grids = [Discretisation(axial_cells=n, particle_cells=q, weno_order=w)
                 for n, q in ((16, 4), (64, 8), (128, 16)) for w in (2, 3)] + [
            Discretisation(method="dg", polynomial_degree=p, elements=e, particle_cells=p)
            for p, e in ((3, 4), (4, 8), (5, 8), (6, 8))]
    rows = []
    for transport in (TransportModel.GENERAL_RATE, TransportModel.LUMPED_RATE_WITH_PORES):
        spec = _linear_column(transport)
        exact = pulse_response(linear_component(spec, isotherm, "a"), times, 1.0, 10.0, digits=20)
        for disc in grids:
            column = build_column(spec, isotherm, disc)
            outlet = simulate_column(column, program, times, rtol=1e-10, atol=1e-12).outputs[0]
            walls = []
            for _ in range(max(1, min(repeats, 3))):
                started = time.perf_counter()
                simulate_column(column, program, times, rtol=1e-10, atol=1e-12)
                walls.append(time.perf_counter() - started)
            error = float(np.linalg.norm(outlet - exact) / np.linalg.norm(exact))
            grid = (f"DG p={disc.polynomial_degree} x {disc.elements} el" if disc.dg
                    else f"FV {disc.axial_cells} cells WENO{2 * disc.weno_order - 1}")
            if transport is TransportModel.GENERAL_RATE:
                grid += f", {disc.particle_cells} {'coll. pts' if disc.dg else 'shells'}"
            wall = statistics.median(walls)
            rows.append({"model": transport.value, "scheme": grid, "solver": "linetwin", "states": column.model.nx,
                         "relative_l2_error": error, "wall_time_s": wall})
            if tool is not None and (disc.dg or disc.weno_order == 2):
                rows.append(_cadet_row(tool, column, program, times, exact, repeats, transport, grid))
    return rows


def print_accuracy_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'model':<24}{'scheme':<40}{'solver':<20}{'states':>8}{'rel. L2 vs exact':>18}{'wall [s]':>10}"
              f"{'CADET sim [s]':>15}")
    print("\naccuracy per second (linear pulse, exact solution by inverse Laplace transform)")
    print(header)
    print("-" * len(header))
    for r in rows:
        states = "" if r.get("states") is None else str(r["states"])
        sim = r.get("cadet_simulation_time_s")
        print(f"{r['model']:<24}{r['scheme']:<40}{r.get('solver', 'linetwin'):<20}{states:>8}"
              f"{r['relative_l2_error']:>18.2e}{r['wall_time_s']:>10.3f}{'' if sim is None else f'{sim:.3f}':>15}")


def _notes(row: dict[str, Any]) -> str:
    skip = set(REQUIRED_KEYS) | {"source"}
    parts = []
    for key, value in row.items():
        if key in skip:
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'model':<22}{'case':<48}{'wall/sim [s]':>14}{'simulated [s]':>15}{'real-time x':>14}  notes"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<22}{r['case'][:47]:<48}{r['wall_time_s']:>14.4g}{r['simulated_time_s']:>15.6g}"
              f"{r['realtime_factor']:>14,.0f}  {_notes(r)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per row after a first (build) call")
    parser.add_argument("--cadet", action="store_true",
                        help="also run CADET-Core (FV and DG) on the accuracy table's grids, side by side")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.repeats = 1
    rows = mixing_tank_rows(args.repeats) + dispersion_rows(args.repeats)
    # a smoke run leaves the contributed rows to the contributing scripts' own smoke runs
    extra, problems = ([], []) if args.smoke else contributed_rows()
    rows += extra
    print_table(rows)
    accuracy = accuracy_rows(args.repeats, args.smoke, cadet=args.cadet)
    print_accuracy_table(accuracy)
    for p in problems:
        print(p, file=sys.stderr)
    write_results(args, "models", {
        "benchmark": "models",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "casadi": ca.__version__},
        "rows": rows,
        "chromatography_accuracy": accuracy,
        "problems": problems,
    }, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
