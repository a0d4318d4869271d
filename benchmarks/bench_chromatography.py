"""Chromatography model speed and accuracy against CADET-Core on the shipped case files.

For every ``examples/cases/chromatography_*.toml`` case (ED linear pulse, LRMP Langmuir breakthrough, GRM
two-component Langmuir pulse, GRM + SMA load-wash-elute):

* our wall time: median of ``repeats`` runs of the section-wise simulator (:func:`simulate_column`, integrators
  built inside each run, so this is what a user waits for; the declaration is compiled once beforehand and its
  time reported as ``build_time_s``);
* CADET-Core's wall time on the same case at the same discretisation and tolerances: the fastest of ``repeats``
  ``cadet-cli`` runs, measured live through ``tools/cadet_reference.py`` when its side environment
  (``tools/.cadet-venv``) exists, else the wall time stored with the reference curves (``cadet_source`` says which;
  stored times come from another moment and load, so compare them with care);
* ``time_ratio_vs_cadet``: our wall time / CADET's (> 1: we are slower); ``time_ratio_vs_cadet_internal`` divides
  by CADET's own reported simulation time (``/meta/time_sim``, no process start-up or HDF5 I/O);
* ``l2_error``: largest relative L2 difference of our outlet curves from CADET's (matched discretisation), and
  ``l2_error_vs_cadet_fine``: from CADET at 4x axial / 2x radial resolution (the discretisation error).

Rows follow the contract of ``benchmarks/models.py`` (``rows()``). Usage:
``.venv/bin/python benchmarks/bench_chromatography.py [--repeats 3] [--stored]`` (prints a table, writes
``benchmarks/results/chromatography.json``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from process_models.chromatography.column import load_case  # noqa: E402

REFERENCES = ROOT / "tests" / "reference" / "chromatography"
CASES = ("ed_linear_pulse", "langmuir_lrmp_breakthrough", "grm_langmuir_pulse", "sma_load_wash_elute")


def _cadet_tool() -> Any:
    spec = importlib.util.spec_from_file_location("cadet_reference", ROOT / "tools" / "cadet_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _max_rel_l2(result: Any, outlet: dict[str, list[float]]) -> float:
    errors = []
    for comp, ref in outlet.items():
        r = np.asarray(ref, dtype=float)
        errors.append(float(np.linalg.norm(result.output(f"outlet_concentration_{comp}") - r) / np.linalg.norm(r)))
    return max(errors)


def _progress(message: str) -> None:
    sys.stderr.write(f"[bench_chromatography] {message}\n")
    sys.stderr.flush()


def rows(repeats: int = 3, live_cadet: bool | None = None) -> list[dict[str, Any]]:
    """One row per case (keys: model, case, wall_time_s, simulated_time_s, realtime_factor, cadet_wall_time_s,
    time_ratio_vs_cadet, l2_error, plus build_time_s, cadet_source, cadet_internal_time_s,
    time_ratio_vs_cadet_internal, l2_error_vs_cadet_fine, discretisation)."""
    tool = _cadet_tool()
    live = tool.cadet_available() if live_cadet is None else live_cadet
    out = []
    for name in CASES:
        _progress(f"{name}: ours x{repeats}" + (", CADET live" if live else ", CADET stored"))
        t0 = time.perf_counter()
        case = load_case(name)
        build = time.perf_counter() - t0
        stored = json.loads((REFERENCES / f"{name}.json").read_text())
        times = np.asarray(stored["times_s"], dtype=float)
        walls = []
        result = None
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            result = case.simulate(times_s=times)
            walls.append(time.perf_counter() - t0)
        assert result is not None
        wall = statistics.median(walls)
        reference = tool.run_case(name, repeats=max(1, repeats)) if live else stored
        fine_path = REFERENCES / f"{name}_fine.json"
        fine_error = _max_rel_l2(result, json.loads(fine_path.read_text())["outlet"]) if fine_path.exists() else None
        cadet_wall = float(reference["cadet_wall_time_s"])
        disc = case.column.discretisation
        out.append({
            "model": "chromatography_column",
            "case": name,
            "wall_time_s": wall,
            "simulated_time_s": float(times[-1] - times[0]),
            "realtime_factor": float(times[-1] - times[0]) / wall,
            "cadet_wall_time_s": cadet_wall,
            "time_ratio_vs_cadet": wall / cadet_wall,
            "l2_error": _max_rel_l2(result, reference["outlet"]),
            "build_time_s": build,
            "cadet_source": "live" if live else "stored",
            "cadet_internal_time_s": float(reference.get("cadet_internal_time_s", float("nan"))),
            "time_ratio_vs_cadet_internal": wall / float(reference.get("cadet_internal_time_s", float("nan"))),
            "l2_error_vs_cadet_fine": fine_error,
            "discretisation": f"{case.column.spec.transport.value}, {disc.axial_cells} axial"
                              + (f" x {disc.particle_cells} radial" if case.column.layout.shells > 1 else "")
                              + f" cells, WENO k={disc.weno_order}, nx={case.column.model.nx}",
        })
    return out


def _table(data: list[dict[str, Any]]) -> str:
    head = (f"{'case':<28} {'ours s':>8} {'CADET s':>8} {'ours/CADET':>10} {'/internal':>9} {'x real time':>11} "
            f"{'L2 vs CADET':>11} {'L2 vs fine':>10}  discretisation")
    lines = [head, "-" * len(head)]
    for r in data:
        fine = f"{r['l2_error_vs_cadet_fine']:.1e}" if r["l2_error_vs_cadet_fine"] is not None else "-"
        lines.append(f"{r['case']:<28} {r['wall_time_s']:>8.3f} {r['cadet_wall_time_s']:>8.3f} "
                     f"{r['time_ratio_vs_cadet']:>10.2f} {r['time_ratio_vs_cadet_internal']:>9.2f} "
                     f"{r['realtime_factor']:>11.0f} {r['l2_error']:>11.1e} "
                     f"{fine:>10}  {r['discretisation']} (CADET {r['cadet_source']})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stored", action="store_true", help="use the stored CADET wall times even if CADET runs")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.repeats, args.stored = 1, True
    data = rows(args.repeats, live_cadet=False if args.stored else None)
    print(_table(data))
    write_results(args, "chromatography", {"generated_utc": datetime.now(UTC).isoformat(),
                                           "machine": platform.platform(), "python": platform.python_version(),
                                           "rows": data})
    return 0


if __name__ == "__main__":
    sys.exit(main())
