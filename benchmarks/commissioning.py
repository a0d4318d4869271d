"""Commissioning on the bench (issue 17 item 6): the loop from a mismatched plant's recorded batch to a fitted parameter
set running in the NMPC, stepped (no sockets), with a KPI table for linear cooling, the NMPC on the nominal set and
the NMPC on the fitted set, all on the same plant.

The plant (the pilot line's crystallizer, the bench's finite-volume population balance) has known true kinetics
off the twin's nominal set: by default growth rate constant x0.7, secondary nucleation rate constant x1.4,
solubility offset +0.002 kg/kg (the edges of the issue's mismatch ranges; ``--growth-factor`` …), its analysers
20 s late (declared to the fit, as an instrument's sampling delay is known at commissioning). The workflow (steps
2-5: :func:`linetwin_cli.bench_commissioning.commission_on_bench`, which the campaign strategy ``mpc_fitted`` runs
on every sampled plant too):

1. **recipe**: a linear-cooling batch on the plant (the KPI table's reference; not recorded), and the **oracle**
   (the NMPC given the plant's true parameters and state, :mod:`hil.oracle`): whether the target is reachable;
2. **batch 1**: the NMPC on the nominal set, recorded into a temporary SQLite historian by the bench recorder
   (:func:`linetwin_cli.bench_history.record_stepped_batches`), exactly as the twin's historian keeps a batch;
3. **fit**: ``linetwin fit`` on batch 1 (in this process, as a user runs it: maximum likelihood of the growth and
   secondary nucleation rate constants and the solubility constant ``solubility_coefficient_0``, the analysers'
   delay declared), which stores the fitted set in the data dir's ``parameter_sets``;
4. **apply**: the set deployed to the unit through the twin's deployment
   (:func:`twin_server.parameter_deployment.unit_deployment`, ``request_apply`` with no batch running: the same
   checks as ``ApplyParameterSet`` — stored, verified, same declaration);
5. **batch 2**: the NMPC on the deployed (fitted) set, recorded (the next fit's parent defaults to it).

Printed and written (JSON): d43 error against the target, number CV, fines fraction and yield per strategy, and each
fitted value against the plant's truth with its linearised and profile-likelihood 95 % intervals. Progress on stderr.

Usage: ``.venv/bin/python benchmarks/commissioning.py``; writes ``benchmarks/results/commissioning.json``.
``--smoke``: 30-minute batches on the twin's own method-of-moments plant, no profile intervals, no oracle.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from hil.scenario import Scenario, load_scenario  # noqa: E402
from hil.scenario_report import ScenarioReport  # noqa: E402
from hil.stepped_batch import run_stepped_batch  # noqa: E402
from linetwin_cli.bench_commissioning import ANALYSERS, ESTIMATED, commission_on_bench  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PILOT = REPO / "examples" / "pilot_line.toml"
SCENARIO = REPO / "examples" / "scenarios" / "mismatch_plus20_mpc.toml"
UNIT = "crystallizer"
ANALYSER_DELAY_S = 20.0
SEED = 1


def progress(text: str) -> None:
    print(f"[commissioning] {text}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """The plant's truth against the twin's nominal set: rate-constant factors and solubility offset (kg/kg)."""

    growth: float = 0.7
    nucleation: float = 1.4
    solubility_offset: float = 0.002


def mismatched_plant(resolution: str, duration_s: float, mismatch: Mismatch) -> Scenario:
    """The pilot line's crystallizer scenario on the mismatched plant (see the module docstring)."""
    scenario = load_scenario(SCENARIO)
    plant = {**scenario.plant, "plant_resolution": resolution, "growth_rate_factor": mismatch.growth,
             "nucleation_rate_factor": mismatch.nucleation, "solubility_offset_kg_per_kg": mismatch.solubility_offset,
             "measurement_delay_s": ANALYSER_DELAY_S}
    return dataclasses.replace(scenario, strategy="mpc", plant=plant, batch_duration_s=duration_s,
                               control={**scenario.control, "batch_duration_s": duration_s})


def true_values(nominal: dict[str, float], mismatch: Mismatch) -> dict[str, float]:
    return {"growth_rate_constant": nominal["growth_rate_constant"] * mismatch.growth,
            "secondary_nucleation_rate_constant": nominal["secondary_nucleation_rate_constant"] * mismatch.nucleation,
            "solubility_coefficient_0": nominal["solubility_coefficient_0"] + mismatch.solubility_offset}


def kpi_row(report: ScenarioReport) -> dict[str, Any]:
    k = report.kpis
    return {"final_d43_um": k["final_d43_um"], "d43_error_percent": k["d43_error_percent"],
            "final_cv": k["final_cv"], "fines_fraction": k["fines_fraction"], "yield": k["yield"],
            "supersaturation_violation": k["supersaturation_violation"], "wall_time_s": report.run["wall_time_s"]}


def run(resolution: str, duration_s: float, mismatch: Mismatch, profile: bool, oracle: bool,
        work: Path) -> dict[str, Any]:
    from fit_coverage import nominal_values

    scenario = mismatched_plant(resolution, duration_s, mismatch)
    nominal = nominal_values()
    truth = true_values(nominal, mismatch)
    started = time.perf_counter()
    progress(f"recipe (linear cooling) batch, {duration_s:g} s, {resolution} plant")
    recipe = run_stepped_batch(scenario, seed=SEED, strategy="linear_cooling")
    best = None
    if oracle:
        progress("oracle batch: the NMPC given the plant's true parameters and state (is the target reachable?)")
        best = run_stepped_batch(scenario, seed=SEED, strategy="oracle")
    done = commission_on_bench(scenario, work / "data", (SEED, SEED), estimate=ESTIMATED, method="ml",
                               delays={tag: ANALYSER_DELAY_S for tag in ANALYSERS}, profile=profile,
                               progress=progress)
    parameters = {}
    for name in ESTIMATED:
        e = done.estimates()[name]
        lin, prof = e["linearised_95"], e["profile_95"]
        parameters[name] = {"nominal": nominal[name], "true": truth[name], "fitted": e["value"],
                            "standard_error": e["standard_error"], "linearised_95": lin, "profile_95": prof,
                            "inside_linearised_95": lin[0] <= truth[name] <= lin[1],
                            "inside_profile_95": None if prof is None else prof[0] <= truth[name] <= prof[1]}
    kpis = {"recipe": kpi_row(recipe), "nominal_nmpc": kpi_row(done.nominal_report),
            "fitted_nmpc": kpi_row(done.fitted_report)}
    if best is not None:
        kpis["oracle"] = kpi_row(best)
    return {"plant": {"resolution": resolution, "growth_rate_factor": mismatch.growth,
                      "nucleation_rate_factor": mismatch.nucleation,
                      "solubility_offset_kg_per_kg": mismatch.solubility_offset, "analyser_delay_s": ANALYSER_DELAY_S},
            "target_d43_um": scenario.target_d43_um, "batch_duration_s": duration_s, "seed": SEED,
            "batches": {"nominal_nmpc": done.nominal_batch, "fitted_nmpc": done.fitted_batch},
            "parameter_set": done.parameter_set,
            "kpis": kpis,
            "parameters": parameters, "fit_wall_s": done.fit_wall_s, "wall_s": time.perf_counter() - started}


def _f(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'strategy':<14}{'d43 um':>9}{'|d43-target| %':>16}{'CV':>7}{'fines':>8}{'yield':>8}"]
    for name, k in result["kpis"].items():
        lines.append(f"{name:<14}{_f(k['final_d43_um'], '.1f'):>9}{_f(k['d43_error_percent'], '.2f'):>16}"
                     f"{_f(k['final_cv'], '.3f'):>7}{_f(k['fines_fraction'], '.3f'):>8}{_f(k['yield'], '.3f'):>8}")
    lines.append(f"{'parameter':<36}{'nominal':>11}{'true':>11}{'fitted':>11}  95 % (linearised)")
    for name, p in result["parameters"].items():
        lo, hi = p["linearised_95"]
        lines.append(f"{name:<36}{p['nominal']:>11.4g}{p['true']:>11.4g}{p['fitted']:>11.4g}  [{lo:.4g}, {hi:.4g}]"
                     f"{'' if p['inside_linearised_95'] else '  (truth outside)'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plant-resolution", choices=("moments", "population_balance"), default=None,
                        help="the plant's model (default population_balance; moments with --smoke)")
    parser.add_argument("--growth-factor", type=float, default=Mismatch.growth,
                        help="the plant's growth rate constant over the nominal one")
    parser.add_argument("--nucleation-factor", type=float, default=Mismatch.nucleation,
                        help="the plant's secondary nucleation rate constant over the nominal one")
    parser.add_argument("--solubility-offset", type=float, default=Mismatch.solubility_offset,
                        help="the plant's solubility offset, kg/kg")
    parser.add_argument("--no-oracle", action="store_true",
                        help="skip the oracle batch (the NMPC given the truth: whether the target is reachable)")
    add_run_options(parser)
    args = parse_args(parser)
    resolution = args.plant_resolution or ("moments" if args.smoke else "population_balance")
    duration = 1800.0 if args.smoke else 7200.0
    with tempfile.TemporaryDirectory(prefix="linetwin-commissioning-") as tmp:
        mismatch = Mismatch(args.growth_factor, args.nucleation_factor, args.solubility_offset)
        result = run(resolution, duration, mismatch, not args.smoke, not (args.smoke or args.no_oracle), Path(tmp))
    payload = {"benchmark": "commissioning", "python": platform.python_version(), "machine": platform.machine(),
               "date_utc": datetime.now(UTC).isoformat(timespec="seconds"), **result,
               "load_average_1min_at_end": os.getloadavg()[0]}
    print(table(result))
    write_results(args, "commissioning", payload)


if __name__ == "__main__":
    main()
