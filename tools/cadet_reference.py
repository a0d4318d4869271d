"""Reference chromatograms from CADET-Core for the chromatography case files, stored for the tests.

CADET-Core (https://github.com/cadet/CADET-Core) is the independent reference for ``process_models``'
chromatography models. Its PyPI wheels (``cadet-core``, with the ``cadet-cli`` binary and ``libcadet``; driven
through ``cadet-python``) exist only for CPython >= 3.12, while the project runs on 3.11. So this script has two
halves:

* the **driver** (project interpreter, 3.11): creates the side environment ``tools/.cadet-venv`` with a Python
  >= 3.12 on first use (``pip install cadet-core cadet-python numpy h5py packaging``), translates each case file
  of ``examples/cases/chromatography_*.toml`` into a CADET input (same model, same finite-volume discretisation:
  WENO k=2 axial convection, equidistant radial shells, same tolerances), runs the worker and stores the outlet
  curves and CADET's wall time in ``tests/reference/chromatography/<case>.json``;
* the **worker** (``--worker``, run by the side environment's Python): builds a ``cadet.Cadet`` simulation from
  the JSON input, runs ``cadet-cli`` and writes the outlet curves and timings as JSON. It imports only the
  standard library, numpy and cadet-python.

``cadet-python`` finds ``cadet-cli`` from ``install_path``: we pass the side environment's prefix, whose
``bin/cadet-cli`` is the wheel's console script (it sets the library path and runs the binary inside the
``cadet_core`` package); the shared library is found through the installed ``cadet_core`` package.

Usage (from the repository root)::

    .venv/bin/python tools/cadet_reference.py                    # all cases, store references
    .venv/bin/python tools/cadet_reference.py --case sma_load_wash_elute --repeats 5
    .venv/bin/python tools/cadet_reference.py --fine              # also a 4x/2x refined run per case
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".cadet-venv"
REFERENCE_DIR = ROOT / "tests" / "reference" / "chromatography"
SIDE_PYTHON_CANDIDATES = ("python3.13", "python3.12", "/root/.pyenv/versions/3.12.1/bin/python")
PACKAGES = ("cadet-core", "cadet-python", "numpy", "h5py", "packaging")
CASE_NAMES = ("ed_linear_pulse", "langmuir_lrmp_breakthrough", "grm_langmuir_pulse", "sma_load_wash_elute",
              "sma_process_steps", "grm_linear_pulse_dg", "sma_rapid_equilibrium")
CASE_OVERRIDES: dict[str, dict[str, int]] = {"sma_process_steps": {"axial_cells": 16, "particle_cells": 4},
                                             "sma_rapid_equilibrium": {"axial_cells": 16, "particle_cells": 4}}
"""Cases whose stored reference uses a coarser grid than the case file (the test runs both sides at it)."""


def _log(message: str) -> None:
    sys.stderr.write(f"[cadet_reference] {message}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------------------------
# Side environment
# ----------------------------------------------------------------------------------------------
def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def cadet_available(venv: Path = VENV) -> bool:
    """True when the side environment exists and imports cadet (no installation attempted)."""
    py = venv_python(venv)
    if not py.exists():
        return False
    probe = subprocess.run([str(py), "-c", "import cadet, cadet_core"], capture_output=True, text=True)
    return probe.returncode == 0


def _find_side_python(explicit: str | None) -> str:
    candidates = [explicit] if explicit else list(SIDE_PYTHON_CANDIDATES)
    for cand in candidates:
        try:
            out = subprocess.run([cand, "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return cand
    raise RuntimeError(f"no Python >= 3.12 found among {candidates}; pass --side-python")


def ensure_venv(venv: Path = VENV, side_python: str | None = None) -> Path:
    """Create the side environment and install the CADET wheels if needed; returns its python."""
    if cadet_available(venv):
        return venv_python(venv)
    py = _find_side_python(side_python)
    if not venv_python(venv).exists():
        _log(f"creating {venv} with {py}")
        subprocess.run([py, "-m", "venv", str(venv)], check=True)
    _log(f"installing {' '.join(PACKAGES)} into {venv} (may take a few minutes)")
    subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    if not cadet_available(venv):
        raise RuntimeError(f"cadet-python/cadet-core do not import in {venv}")
    return venv_python(venv)


# ----------------------------------------------------------------------------------------------
# Case file -> CADET input (driver side)
# ----------------------------------------------------------------------------------------------
def _import_project() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from process_models import chromatography

    return chromatography


def cadet_input(case: Any) -> dict[str, Any]:
    """CADET-Core input (``/input`` group as nested dict, keys lower-case) for a loaded ChromatographyCase."""
    from process_models.chromatography.isotherms import LangmuirIsotherm, LinearIsotherm, StericMassActionIsotherm
    from process_models.chromatography.transport import BindingMode, TransportModel

    col = case.column
    spec, iso, disc = col.spec, col.isotherm, col.discretisation
    ncomp = len(col.components)
    transport = TransportModel(spec.transport)
    initial = case.uniform_initial()
    area = 1.0e-4  # m2; any value: the flow rate below gives the case's interstitial velocity
    unit: dict[str, Any] = {
        "ncomp": ncomp,
        "col_length": spec.length_m,
        "col_dispersion": spec.axial_dispersion_m2_per_s,
        "velocity": 1.0,  # direction only: with CROSS_SECTION_AREA set, CADET derives u from the flow rate
        "cross_section_area": area,
        "nbound": [1] * ncomp,
        "init_c": list(initial["bulk"]),
    }
    if "pore" in initial:
        unit["init_cp"] = list(initial["pore"])
    if transport is TransportModel.EQUILIBRIUM_DISPERSIVE:
        unit["unit_type"] = "LUMPED_RATE_MODEL_WITHOUT_PORES"
        unit["total_porosity"] = spec.total_porosity
    else:
        unit["unit_type"] = ("LUMPED_RATE_MODEL_WITH_PORES" if transport is TransportModel.LUMPED_RATE_WITH_PORES
                             else "GENERAL_RATE_MODEL")
        unit.update(col_porosity=spec.column_porosity, par_porosity=spec.particle_porosity,
                    par_radius=spec.particle_radius_m, film_diffusion=list(spec.film_diffusion_m_per_s),
                    par_geom="SPHERE", par_coreradius=0.0, npartype=1)
        if transport is TransportModel.GENERAL_RATE:
            unit["par_diffusion"] = list(spec.pore_diffusion_m2_per_s)
            unit["par_surfdiffusion"] = [0.0] * ncomp
    liquid_phase = initial.get("pore", initial["bulk"])
    unit["init_q"] = list(initial["bound"]) if "bound" in initial else list(
        iso.equilibrium_bound(list(liquid_phase), col.components))
    kinetic = BindingMode(spec.binding) is BindingMode.KINETIC
    if isinstance(iso, LinearIsotherm):
        unit["adsorption_model"] = "LINEAR"
        ads = {"lin_ka": list(iso.adsorption_rate_per_s), "lin_kd": list(iso.desorption_rate_per_s)}
    elif isinstance(iso, LangmuirIsotherm):
        unit["adsorption_model"] = "MULTI_COMPONENT_LANGMUIR"
        ads = {"mcl_ka": list(iso.adsorption_rate_m3_per_mol_s), "mcl_kd": list(iso.desorption_rate_per_s),
               "mcl_qmax": list(iso.capacity_mol_per_m3)}
    elif isinstance(iso, StericMassActionIsotherm):
        unit["adsorption_model"] = "STERIC_MASS_ACTION"
        ads = {"sma_ka": list(iso.adsorption_rate), "sma_kd": list(iso.desorption_rate),
               "sma_nu": list(iso.characteristic_charge), "sma_sigma": list(iso.steric_factor),
               "sma_lambda": iso.ionic_capacity_mol_per_m3, "sma_refc0": iso.reference_liquid_mol_per_m3,
               "sma_refq": iso.reference_solid_mol_per_m3}
    else:
        raise TypeError(f"no CADET mapping for isotherm {type(iso).__name__}")
    ads["is_kinetic"] = int(kinetic)
    unit["adsorption"] = ads
    if disc.dg:
        # CADET's DG (Breuer et al. 2023): nodal DG along the column (POLYDEG, NELEM, collocated LGL integration)
        # and a DG particle (PAR_POLYDEG, one element); linetwin's particle is orthogonal collocation with
        # `particle_cells` interior points, so the nearest CADET resolution is PAR_POLYDEG = particle_cells.
        unit["discretization"] = {
            "spatial_method": "DG", "polydeg": disc.polynomial_degree, "nelem": disc.elements,
            "exact_integration": 0, "par_polydeg": max(1, disc.particle_cells), "par_nelem": 1,
            "par_disc_type": "EQUIDISTANT_PAR",
            "nbound": [1] * ncomp, "use_analytic_jacobian": 1,
        }
    else:
        unit["discretization"] = {
            "spatial_method": "FV",
            "ncol": disc.axial_cells,
            "npar": disc.particle_cells if transport is TransportModel.GENERAL_RATE else 1,
            "nbound": [1] * ncomp,
            "par_disc_type": "EQUIDISTANT_PAR",
            "use_analytic_jacobian": 1,
            "gs_type": 1, "max_krylov": 0, "max_restarts": 10, "schur_safety": 1e-8,
            "reconstruction": "WENO",
            "weno": {"boundary_model": 0, "weno_eps": disc.weno_epsilon, "weno_order": disc.weno_order},
        }
    inlet: dict[str, Any] = {"unit_type": "INLET", "ncomp": ncomp, "inlet_type": "PIECEWISE_CUBIC_POLY"}
    bounds = case.program.section_bounds()
    switches: dict[str, Any] = {"nswitches": len(bounds), "connections_include_ports": 1}
    porosity = spec.flow_porosity
    for k, (section, _a, _b) in enumerate(bounds):
        c = section.coefficients()
        inlet[f"sec_{k:03d}"] = {"const_coeff": list(c[0]), "lin_coeff": list(c[1]), "quad_coeff": list(c[2]),
                                 "cube_coeff": list(c[3])}
        # a process step's own flow rate (its velocity x cross-section x porosity), else the declared one
        velocity = section.interstitial_velocity_m_per_s or spec.interstitial_velocity_m_per_s
        switches[f"switch_{k:03d}"] = {"section": k, "connections": [1, 0, -1, -1, -1, -1,
                                                                     velocity * area * porosity]}
    times = [float(t) for t in case.output_times()]
    return {
        "model": {
            "nunits": 2,
            "unit_000": unit,
            "unit_001": inlet,
            "connections": switches,
            "solver": {"gs_type": 1, "max_krylov": 0, "max_restarts": 10, "schur_safety": 1e-8},
        },
        "return": {"split_components_data": 1, "write_solution_times": 1,
                   "unit_000": {"write_solution_outlet": 1, "write_solution_bulk": 0, "write_solution_inlet": 0,
                                "write_solution_particle": 0, "write_solution_flux": 0}},
        "solver": {
            "nthreads": 1,
            "user_solution_times": times,
            "sections": {"nsec": len(bounds), "section_times": [b[1] for b in bounds] + [bounds[-1][2]],
                         "section_continuity": [0] * (len(bounds) - 1)},
            "time_integrator": {"abstol": case.atol, "reltol": case.rtol, "algtol": 1e-12, "init_step_size": 1e-6,
                                "max_steps": 1000000},
        },
    }


def run_case(name: str, discretisation_overrides: dict[str, int] | None = None, repeats: int = 1,
             venv: Path = VENV) -> dict[str, Any]:
    """Run CADET-Core on case ``name`` (optionally refined) and return times, outlet curves and wall times."""
    chrom = _import_project()
    return run_loaded_case(chrom.load_case(name, discretisation_overrides=discretisation_overrides), repeats, venv)


def run_loaded_case(case: Any, repeats: int = 1, venv: Path = VENV) -> dict[str, Any]:
    """Run CADET-Core on a loaded :class:`ChromatographyCase` (a case file's, or one built in code)."""
    name = case.name
    job = {"input": cadet_input(case), "repeats": int(repeats), "components": list(case.column.components)}
    with tempfile.TemporaryDirectory(prefix="cadet_ref_") as tmp:
        in_path, out_path = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_path.write_text(json.dumps(job))
        proc = subprocess.run([str(venv_python(venv)), str(Path(__file__).resolve()), "--worker", str(in_path),
                               str(out_path), "--workdir", tmp], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"CADET worker failed for case '{name}':\n{proc.stderr[-4000:]}")
        result = json.loads(out_path.read_text())
    disc = case.column.discretisation
    result.update(case=name, axial_cells=disc.axial_cells, particle_cells=disc.particle_cells,
                  weno_order=disc.weno_order, method=disc.method, rtol=case.rtol, atol=case.atol,
                  transport=case.column.spec.transport.value, isotherm=case.column.isotherm.kind,
                  binding=case.column.spec.binding.value)
    return result


def store(result: dict[str, Any], suffix: str = "") -> Path:
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    path = REFERENCE_DIR / f"{result['case']}{suffix}.json"
    rounded = dict(result)
    rounded["outlet"] = {c: [float(f"{v:.10g}") for v in vals] for c, vals in result["outlet"].items()}
    rounded["generated_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.write_text(json.dumps(rounded, separators=(",", ":")) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# Worker (side environment, Python >= 3.12)
# ----------------------------------------------------------------------------------------------
def _worker(in_path: str, out_path: str, workdir: str) -> None:
    import numpy as np
    from addict import Dict
    from cadet import Cadet

    job = json.loads(Path(in_path).read_text())
    sim = Cadet(install_path=sys.prefix)
    sim.root.input = Dict(job["input"])
    sim.filename = str(Path(workdir) / "case.h5")
    sim.save()
    walls = []
    for _ in range(max(1, int(job["repeats"]))):
        started = time.perf_counter()
        ret = sim.run_simulation()
        walls.append(time.perf_counter() - started)
        if ret.return_code != 0:
            raise RuntimeError(f"cadet-cli failed ({ret.return_code}): {ret.error_message}")
    sim.load_from_file()
    out = sim.root.output.solution
    unit = out.unit_000
    curves = {}
    for k, comp in enumerate(job["components"]):
        key = f"solution_outlet_comp_{k:03d}"
        curves[comp] = np.asarray(unit[key] if key in unit else np.asarray(unit.solution_outlet)[:, k]).ravel().tolist()
    meta = sim.root.meta
    version = meta.cadet_version
    version = version.decode() if isinstance(version, bytes) else str(version)
    result = {"times_s": np.asarray(out.solution_times).ravel().tolist(), "outlet": curves,
              "cadet_wall_time_s": min(walls), "cadet_wall_times_s": walls,
              "cadet_internal_time_s": float(meta.time_sim), "cadet_version": version,
              "cadet_cli": str(sim.cadet_cli_path)}
    Path(out_path).write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=CASE_NAMES, help="case(s) to run (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="CADET runs per case; the fastest wall time is kept")
    parser.add_argument("--fine", action="store_true", help="also store a refined run (4x axial, 2x radial cells)")
    parser.add_argument("--side-python", help="Python >= 3.12 used to create the side environment")
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.worker[1], args.workdir or os.getcwd())
        return 0
    ensure_venv(side_python=args.side_python)
    for name in args.case or CASE_NAMES:
        _log(f"running CADET on '{name}'")
        result = run_case(name, discretisation_overrides=CASE_OVERRIDES.get(name), repeats=args.repeats)
        _log(f"  stored {store(result)} (CADET wall {result['cadet_wall_time_s']:.3f} s, "
             f"internal {result['cadet_internal_time_s']:.3f} s, version {result['cadet_version']})")
        if args.fine:
            chrom = _import_project()
            disc = chrom.load_case(name).column.discretisation
            fine = {"axial_cells": 4 * disc.axial_cells, "particle_cells": 2 * disc.particle_cells}
            _log(f"  refined run {fine}")
            result = run_case(name, discretisation_overrides=fine, repeats=1)
            _log(f"  stored {store(result, suffix='_fine')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
