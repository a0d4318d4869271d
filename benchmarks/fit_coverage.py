"""Fit benchmark: does ``linetwin fit`` recover a plant's true parameters, with honest 95 % intervals, and how long
does a fit over two batches take (issue 17 targets: true value inside the 95 % interval in >= 9 of 10 seeded plants;
a fit over two batches within 2 minutes).

Per seeded plant (``--plants``, default 10): true kinetics drawn from the issue's mismatch ranges (growth and
nucleation rate constants x U(0.7, 1.4), solubility offset U(-0.002, +0.002) kg/kg, analyser delay U(0, 60) s),
two stepped HIL batches (linear cooling, the plant's own sensor noise; :mod:`hil.stepped_batch`) recorded into a
SQLite historian exactly as the twin records, then ``linetwin fit`` (in this process, as a user runs it) by maximum
likelihood of growth, secondary nucleation and the solubility constant, with the analyser delay declared. Counted:
each parameter's true value inside its linearised and its profile-likelihood 95 % interval, and the fit's wall time
(model + plan build, reading the history, fit, profiles, report) and its CPU time (the wall time on a shared machine
is mostly waiting for a core). The plant model is the twin's own method of moments
(``--plant-resolution moments``, the known-truth test of the method) or the bench's finite-volume population balance
(``population_balance``: adds the discretisation's model error).

Usage: ``.venv/bin/python benchmarks/fit_coverage.py [--plants 10] [--plant-resolution moments]``; writes
``benchmarks/results/fit_coverage.json``. ``--smoke``: one plant, 30-minute batches, no profiles.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from hil.scenario import load_scenario  # noqa: E402
from linetwin_cli.bench_history import record_stepped_batches  # noqa: E402
from linetwin_cli.main import main as linetwin  # noqa: E402
from twin_server.historian.sqlite_store import SqliteStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PILOT = REPO / "examples" / "pilot_line.toml"
SCENARIO = REPO / "examples" / "scenarios" / "mismatch_plus20_mpc.toml"
ESTIMATED = ("growth_rate_constant", "secondary_nucleation_rate_constant", "solubility_coefficient_0")
ANALYSERS = ("solute_concentration", "chord_count_rate", "mean_chord_length")


def nominal_values() -> dict[str, float]:
    from controllers.crystallization.control_options import plan_declaration
    from twin_server.config import load_line_config

    unit = load_line_config(PILOT).unit("crystallizer")
    _, declaration = plan_declaration(unit.model, unit.control, "c", {t.name for t in unit.tags})
    return declaration.parameter_values()


def run_plant(index: int, rng: np.random.Generator, resolution: str, duration_s: float, profile: bool,
              nominal: dict[str, float], work: Path) -> dict:
    growth, nucleation = (float(x) for x in rng.uniform(0.7, 1.4, 2))
    offset = float(rng.uniform(-0.002, 0.002))
    delay = float(np.round(rng.uniform(0.0, 60.0)))
    scenario = load_scenario(SCENARIO)
    plant = {**scenario.plant, "plant_resolution": resolution, "growth_rate_factor": growth,
             "nucleation_rate_factor": nucleation, "solubility_offset_kg_per_kg": offset,
             "measurement_delay_s": delay}
    scenario = dataclasses.replace(scenario, strategy="linear_cooling", plant=plant, batch_duration_s=duration_s,
                                   control={**scenario.control, "batch_duration_s": duration_s})
    data = work / f"plant{index}"
    store = SqliteStore(data / "history")
    started = time.perf_counter()
    try:
        batches = record_stepped_batches(scenario, store, "pilot_line", datetime(2026, 12, 1, 8, tzinfo=UTC),
                                         (1000 + 2 * index, 1001 + 2 * index))
    finally:
        store.close()
    record_s = time.perf_counter() - started
    truth = {"growth_rate_constant": nominal["growth_rate_constant"] * growth,
             "secondary_nucleation_rate_constant": nominal["secondary_nucleation_rate_constant"] * nucleation,
             "solubility_coefficient_0": nominal["solubility_coefficient_0"] + offset}
    args = ["fit", str(PILOT), "--unit", "crystallizer", "--batch", *(b for b, _ in batches), "--estimate",
            *ESTIMATED, "--method", "ml", "--data-dir", str(data), "--out", str(data / "report")]
    args += [a for tag in ANALYSERS for a in ("--delay", f"{tag}={delay:g}")]
    if not profile:
        args.append("--no-profile")
    started, cpu_started = time.perf_counter(), time.process_time()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = linetwin(args)
    fit_s = time.perf_counter() - started
    fit_cpu_s = time.process_time() - cpu_started
    row = {"plant": index, "growth_rate_factor": growth, "nucleation_rate_factor": nucleation,
           "solubility_offset_kg_per_kg": offset, "analyser_delay_s": delay, "exit_code": code,
           "record_wall_s": record_s, "fit_wall_s": fit_s, "fit_cpu_s": fit_cpu_s}
    if code != 0:
        row["error"] = err.getvalue().strip().splitlines()[-1:]
        return row
    report = json.loads((data / "report" / "fit_report.json").read_text())
    row["parameters"] = {}
    for name in ESTIMATED:
        e = report["estimates"][name]
        lin, prof = e["linearised_95"], e["profile_95"]
        se_measurements = e.get("standard_error_measurements") or e["standard_error"]
        row["parameters"][name] = {
            "true": truth[name], "estimate": e["value"], "standard_error": e["standard_error"],
            "standard_error_measurements": se_measurements, "standard_error_inputs": e.get("standard_error_inputs"),
            "error_in_standard_errors": (e["value"] - truth[name]) / e["standard_error"],
            "error_in_measurement_standard_errors": (e["value"] - truth[name]) / se_measurements,
            "inside_measurement_only_95": abs(e["value"] - truth[name]) <= report["t_value"] * se_measurements,
            "inside_linearised_95": lin[0] <= truth[name] <= lin[1],
            "inside_profile_95": None if prof is None else prof[0] <= truth[name] <= prof[1]}
    row["all_inside_linearised_95"] = all(p["inside_linearised_95"] for p in row["parameters"].values())
    row["all_inside_measurement_only_95"] = all(p["inside_measurement_only_95"] for p in row["parameters"].values())
    row["all_inside_profile_95"] = (None if not profile else
                                    all(p["inside_profile_95"] for p in row["parameters"].values()))
    return row


def _spread(rows: list[dict], name: str) -> dict[str, float]:
    """The spread (RMS) of (estimate - truth) / standard error over the plants, with the total standard error (the
    measured inputs' noise included) and with the measurements' alone: near 1 for calibrated intervals, well below 1
    for intervals that are merely wide, above 1 for intervals too narrow."""
    def rms(key: str) -> float:
        return float(np.sqrt(np.mean([r["parameters"][name][key] ** 2 for r in rows]))) if rows else float("nan")
    return {"total": rms("error_in_standard_errors"), "measurements_only": rms("error_in_measurement_standard_errors"),
            "mean_total": float(np.mean([r["parameters"][name]["error_in_standard_errors"] for r in rows]))
            if rows else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plants", type=int, default=10)
    parser.add_argument("--plant-resolution", choices=("moments", "population_balance"), default="moments")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-profile", action="store_true", help="skip the profile-likelihood intervals")
    add_run_options(parser)
    args = parse_args(parser)
    plants = 1 if args.smoke else args.plants
    duration = 1800.0 if args.smoke else 7200.0
    profile = not (args.smoke or args.no_profile)
    rng = np.random.default_rng(args.seed)
    nominal = nominal_values()
    rows = []
    with tempfile.TemporaryDirectory(prefix="linetwin-fit-bench-") as tmp:
        for i in range(plants):
            row = run_plant(i, rng, args.plant_resolution, duration, profile, nominal, Path(tmp))
            rows.append(row)
            inside = {n: p["inside_linearised_95"] for n, p in row.get("parameters", {}).items()}
            print(f"plant {i}: growth x{row['growth_rate_factor']:.3f}, "
                  f"nucleation x{row['nucleation_rate_factor']:.3f}, "
                  f"offset {row['solubility_offset_kg_per_kg']:+.4f}, delay {row['analyser_delay_s']:.0f} s: "
                  f"exit {row['exit_code']}, fit {row['fit_wall_s']:.1f} s, inside {inside}", flush=True)
    ok = [r for r in rows if r["exit_code"] == 0]
    payload = {
        "benchmark": "fit_coverage", "python": platform.python_version(), "machine": platform.machine(),
        "plant_resolution": args.plant_resolution, "plants": plants, "batch_duration_s": duration,
        "batches_per_fit": 2, "profile": profile,
        "fits_succeeded": len(ok),
        "plants_all_inside_linearised_95": sum(bool(r["all_inside_linearised_95"]) for r in ok),
        "plants_all_inside_profile_95": sum(bool(r["all_inside_profile_95"]) for r in ok) if profile else None,
        "parameter_coverage_linearised_95": {
            n: sum(r["parameters"][n]["inside_linearised_95"] for r in ok) for n in ESTIMATED},
        "plants_all_inside_measurement_only_95": sum(bool(r["all_inside_measurement_only_95"]) for r in ok),
        "error_spread": {n: _spread(ok, n) for n in ESTIMATED},
        "fit_wall_s": {"median": float(np.median([r["fit_wall_s"] for r in rows])),
                       "max": float(np.max([r["fit_wall_s"] for r in rows]))},
        "fit_cpu_s": {"median": float(np.median([r["fit_cpu_s"] for r in rows])),
                      "max": float(np.max([r["fit_cpu_s"] for r in rows]))},
        "load_average_1min_at_end": os.getloadavg()[0],
        "rows": rows,
    }
    write_results(args, "fit_coverage", payload)
    print("spread of (estimate - truth)/s.e., total (measurements only): " + ", ".join(
        f"{n} {v['total']:.2f} ({v['measurements_only']:.2f})" for n, v in payload["error_spread"].items()))
    print(f"coverage: {payload['plants_all_inside_linearised_95']}/{plants} plants with every true value inside "
          f"the linearised 95 % interval ({payload['plants_all_inside_measurement_only_95']}/{plants} with the "
          f"measurements' standard errors alone)"
          + (f", {payload['plants_all_inside_profile_95']}/{plants} inside the profile interval" if profile else "")
          + f"; fit wall time median {payload['fit_wall_s']['median']:.1f} s, max {payload['fit_wall_s']['max']:.1f} s"
          + f" (CPU median {payload['fit_cpu_s']['median']:.1f} s; "
            f"load average {payload['load_average_1min_at_end']:.1f})")


if __name__ == "__main__":
    main()
