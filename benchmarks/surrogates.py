"""Neural surrogates vs the physics models: wall time (one run, 1,000 runs batched), test NRMSE, and NMPC solves.

Per model, a surrogate is trained (CPU) from its declared physics model, then compared in the same process:

* ``mixing_tank`` — state-transition surrogate of ``examples/cases/mixing_tank.toml`` (4 states, 5 inputs);
* ``crystallizer_moments`` — state-transition surrogate of the twin's NMPC model (method of moments, pilot line
  options, seeded at 40 degC), trained over the NMPC's operating regime: jacket programmes in [15, 40] degC
  (zoh, 12 knots, rate limit 1 K per 120 s), growth and secondary-nucleation constants x (1 ± 0.2), initial states
  x (1 ± 0.02); step 120 s (the controller period). Also reports the batch-end d43 error over a 2 h batch;
* ``crystallizer_population_balance`` — state-transition surrogate of ``crystallizer_kdp_population_balance.toml``
  (202 states);
* ``chromatography_lwe`` — outlet-curve surrogate of ``chromatography_sma_load_wash_elute.toml`` (GRM + SMA,
  2,176 states): load concentrations, load end, gradient end and characteristic charges varied.

Timing: *one run* is the median over the held-out test runs (physics: ``simulate``; surrogate: one rollout or
one forward pass including the outputs); *1,000 runs* is one batched surrogate call on 1,000 runs vs the physics
model run one after another — measured on ``--physics-runs`` runs and scaled to 1,000 where fewer were run
(said so in the table). NMPC: the crystallizer batch problem of the twin (shrinking horizon of 20 intervals to
batch end, d43 target 400 um, fines term, soft CV and supersaturation bounds, rate limit) closed on the physics
plant for a 2 h batch, once predicting with the physics model, once with the surrogate; median solve time and
batch-end d43. Prints a table, writes ``benchmarks/results/surrogates.json``.

Usage: ``.venv/bin/python benchmarks/surrogates.py [--quick] [--models ...]``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from controllers.crystallization.objective import CrystallizationObjective, crystallizer_nmpc_config  # noqa: E402
from controllers.nmpc import NonlinearMpc  # noqa: E402
from controllers.nmpc_solvers import SolverOptions  # noqa: E402
from process_models.case_file import load_case  # noqa: E402
from process_models.crystallization.crystallizer import (  # noqa: E402
    crystallizer_model,
    moments_initial_state,
    seed_moments,
)
from process_models.crystallization.kinetics import solubility  # noqa: E402
from process_models.declaration import compile_model  # noqa: E402
from process_models.instruments import fbrm_instruments, with_instruments  # noqa: E402
from process_models.simulator import simulate  # noqa: E402
from process_models.surrogates.artifact import SurrogateArtifact  # noqa: E402
from process_models.surrogates.dataset import ModelSource, TrainingDataset, load_dataset  # noqa: E402
from process_models.surrogates.design import (  # noqa: E402
    InputRange,
    ParameterRange,
    StateRange,
    TrainingDesign,
)
from process_models.surrogates.outlet_curve import OutletCurveSurrogate  # noqa: E402
from process_models.surrogates.pipeline import (  # noqa: E402
    TrainingSettings,
    design_for_source,
    outputs_of_states,
    train_surrogate,
)

RESULTS = ROOT / "benchmarks" / "results" / "surrogates.json"
CASES = ROOT / "examples" / "cases"
PLANT_OPTIONS = {"volume_m3": 0.02, "resolution": "moments"}  # the pilot line's crystallizer, as its NMPC sees it
JACKET = "jacket_temperature"


def crystallizer_plan_state() -> dict[str, float]:
    """Seeded start of the twin's crystallizer batch: 3.5 g/kg seed N(150, 15) um, saturated at 40 degC."""
    model = compile_model(crystallizer_model(PLANT_OPTIONS))
    nominal = model.declaration.parameter_values()
    t0 = 313.15
    moments = seed_moments(0.0035, 150e-6, 15e-6, nominal["crystal_density"], nominal.get("volume_shape_factor", 1.0))
    return moments_initial_state(float(solubility(t0, nominal)), moments, t0)


def crystallizer_plan_design(seed: int = 0) -> TrainingDesign:
    model = compile_model(crystallizer_model(PLANT_OPTIONS))
    nominal = model.declaration.parameter_values()
    state = crystallizer_plan_state()
    return TrainingDesign(
        base_state=state, base_inputs={}, start_s=0.0, until_s=7200.0, interval_s=120.0,
        states=tuple(StateRange(n, 0.98, 1.02) for n in state if n != "temperature")
        + (StateRange("temperature", 311.15, 315.15, relative=False),),
        inputs=(InputRange(JACKET, 288.15, 313.15, knots=12, interpolation="zoh", max_rate_per_s=1.0 / 120.0),),
        parameters=tuple(ParameterRange(n, 0.8 * nominal[n], 1.2 * nominal[n])
                         for n in ("growth_rate_constant", "secondary_nucleation_rate_constant")),
        seed=seed)


def _case_source(name: str) -> tuple[ModelSource, Any]:
    path = CASES / f"{name}.toml"
    case = load_case(path)
    source = ModelSource(case.kind, tomllib.loads(path.read_text()).get("model", {}))
    return source, case


def _median_time(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _physics_runs(model: Any, dataset: TrainingDataset, runs: np.ndarray, n: int) -> tuple[float, int]:
    """Wall time of ``n`` physics runs (cycling over ``runs``), run one after another."""
    design = dataset.design
    times = design.times_s()
    t0 = time.perf_counter()
    for i in range(n):
        state, inputs, params = design.run_from_point(dataset.arrays["points"][runs[i % runs.size]])
        simulate(model, state, times, inputs, params)
    return time.perf_counter() - t0, n


def timing(artifact: SurrogateArtifact, dataset: TrainingDataset, model: Any, physics_runs: int) -> dict[str, Any]:
    test = np.asarray(artifact.metadata["split"]["test"], dtype=int)
    s = artifact.surrogate
    one = test[:1]
    batch = np.resize(test, 1000)
    if isinstance(s, OutletCurveSurrogate):
        def predict(runs: np.ndarray) -> Any:
            return s.predict(dataset.arrays["points"][runs])
    else:
        def predict(runs: np.ndarray) -> Any:
            states = s.rollout(dataset.arrays["states"][runs][:, :, 0], dataset.arrays["interval_inputs"][runs],
                               dataset.arrays["parameters"][runs])
            if runs.size == 1:
                return outputs_of_states(model, dataset, runs, states)
            return states  # batched: states of all 1,000 runs (outputs are algebraic in them)
    surrogate_one = _median_time(lambda: predict(one), 5)
    surrogate_batch = _median_time(lambda: predict(batch), 3)
    one_physics, _ = _physics_runs(model, dataset, test, 1)
    n = min(physics_runs, 1000)
    wall, n = _physics_runs(model, dataset, test, n)
    physics_batch = wall * 1000.0 / n
    return {"physics_one_run_s": one_physics, "surrogate_one_run_s": surrogate_one,
            "speedup_one_run": one_physics / surrogate_one,
            "physics_1000_runs_s": physics_batch, "physics_1000_measured_runs": n,
            "surrogate_1000_runs_s": surrogate_batch, "speedup_1000_runs": physics_batch / surrogate_batch}


def d43_batch_error(artifact: SurrogateArtifact, dataset: TrainingDataset, model: Any) -> dict[str, float]:
    test = np.asarray(artifact.metadata["split"]["test"], dtype=int)
    states = artifact.surrogate.rollout(dataset.arrays["states"][test][:, :, 0],
                                        dataset.arrays["interval_inputs"][test], dataset.arrays["parameters"][test])
    sl = model.state_slices
    d43 = states[:, sl["mu4"].start, -1] / states[:, sl["mu3"].start, -1]
    ref = dataset.arrays["states"][test]
    d43_ref = ref[:, sl["mu4"].start, -1] / ref[:, sl["mu3"].start, -1]
    err = np.abs(d43 / d43_ref - 1)
    return {"d43_batch_end_rel_error_median": float(np.median(err)), "d43_batch_end_rel_error_max": float(err.max()),
            "d43_batch_end_rel_error_p90": float(np.quantile(err, 0.9)), "test_runs": int(test.size)}


def closed_loop(nmpc: NonlinearMpc, plant: Any, x0: dict[str, float], target: float) -> dict[str, Any]:
    """A 2 h batch: NMPC every 120 s on the physics plant (state feedback); a failed solve holds the input."""
    x, u_prev, solves, failures = dict(x0), 313.15, [], 0
    for k in range(60):
        t = 120.0 * k
        res = nmpc.step(t, x, {JACKET: u_prev}, references={"d43": target}, batch_end_s=7200.0)
        solves.append(res.solve_time_s)
        if res.success:
            u_prev = res.commands[0].value
        else:
            failures += 1
        x = simulate(plant, x, [t, t + 120.0], {JACKET: u_prev}).final_state()
    d43 = x["mu4"] / x["mu3"]
    return {"median_solve_s": float(np.median(solves)), "mean_solve_s": float(np.mean(solves)),
            "failed_solves": failures, "final_d43_um": d43 * 1e6,
            "final_d43_error_pct": 100.0 * (d43 - target) / target}


def nmpc_comparison(artifact: SurrogateArtifact, solver: SolverOptions | None = None) -> dict[str, Any]:
    """Physics vs surrogate NMPC on the same 2 h batch, both solved with ``solver`` (default IPOPT)."""
    model = compile_model(with_instruments(crystallizer_model(PLANT_OPTIONS), fbrm_instruments()))
    plant = compile_model(crystallizer_model(PLANT_OPTIONS))
    x0 = crystallizer_plan_state()
    target = 400e-6
    baseline = simulate(plant, x0, [0.0, 7200.0], {JACKET: lambda t: 313.15 - 15.0 * t / 7200.0})
    objective = CrystallizationObjective(target_d43_m=target, seed_count_per_kg=x0["mu0"],
                                         max_cv=float(baseline.output("cv")[-1]), max_supersaturation=0.05)
    config = crystallizer_nmpc_config(objective, 120.0, 20, 288.15, 313.15, 1.0, max_cpu_time_s=5.0)
    config = replace(config, solver=solver or SolverOptions())
    physics = NonlinearMpc(model, config)
    surrogate = NonlinearMpc(model, config, prediction=artifact.surrogate.interval_function(model, 1),
                             prediction_model="surrogate")
    out = {"physics": closed_loop(physics, plant, x0, target), "surrogate": closed_loop(surrogate, plant, x0, target)}
    out["solver"] = config.solver.label
    out["speedup_median_solve"] = out["physics"]["median_solve_s"] / out["surrogate"]["median_solve_s"]
    out["final_d43_error_difference_pp"] = abs(out["surrogate"]["final_d43_error_pct"]
                                               - out["physics"]["final_d43_error_pct"])
    return out


def run_model(name: str, args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], SurrogateArtifact]:
    quick = args.quick
    if name == "crystallizer_moments":
        source = ModelSource("crystallizer", PLANT_OPTIONS)
        design = crystallizer_plan_design()
        samples = 48 if quick else args.crystallizer_samples
        settings = TrainingSettings(hidden=tuple(args.crystallizer_hidden), epochs=20 if quick else args.epochs,
                                    window=20, batch_size=256, patience=150)
    elif name == "chromatography_lwe":
        source, case = _case_source("chromatography_sma_load_wash_elute")
        design = design_for_source(source.kind, case.model, case.initial_state, case.inputs, case.start_s,
                                   case.until_s, case.output_interval_s)
        samples = 16 if quick else args.chromatography_samples
        settings = TrainingSettings(hidden=(128, 128, 128), activation="silu", epochs=100 if quick else 3000,
                                    batch_size=32, patience=600, learning_rate=2e-3)
    else:
        case_name = {"mixing_tank": "mixing_tank",
                     "crystallizer_population_balance": "crystallizer_kdp_population_balance"}[name]
        source, case = _case_source(case_name)
        design = design_for_source(source.kind, case.model, case.initial_state, case.inputs, case.start_s,
                                   case.until_s, case.output_interval_s)
        samples = 16 if quick else (48 if name == "crystallizer_population_balance" else 128)
        settings = TrainingSettings(hidden=(64, 64), epochs=20 if quick else min(args.epochs, 200), window=16,
                                    batch_size=256, patience=40)
    out = work / name
    reused = None
    if args.reuse is not None and (args.reuse / name / "dataset").is_dir():
        reused = load_dataset(args.reuse / name / "dataset")  # hash-checked; same design and model required
        if reused.metadata["design"] != json.loads(json.dumps(design.to_json())) or reused.sample_count != samples:
            raise SystemExit(f"--reuse {args.reuse / name / 'dataset'}: another design or sample count")
    t0 = time.perf_counter()
    artifact = train_surrogate(source, design, samples, out, settings=settings, workers=args.workers,
                               progress=not args.quiet, dataset=reused)
    wall = time.perf_counter() - t0
    model = source.build()
    dataset = load_dataset(out / "dataset")
    row: dict[str, Any] = {
        "model": name, "surrogate": artifact.kind, "samples": samples, "train_wall_s": artifact.metadata["training"]
        ["wall_s"], "pipeline_wall_s": wall, "epochs_run": artifact.metadata["training"]["epochs_run"],
        "test_nrmse_max": artifact.metadata["metrics"]["test_nrmse_max"],
        "test_nrmse_mean": artifact.metadata["metrics"]["test_nrmse_mean"],
        "test_nrmse": artifact.metadata["metrics"]["test_nrmse"],
        **timing(artifact, dataset, model, args.physics_runs if name != "chromatography_lwe" else 4),
    }
    if name == "crystallizer_moments":
        row.update(d43_batch_error(artifact, dataset, model))
    if args.keep:
        row["artifact"] = str(out)
    return row, artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mixing_tank", "crystallizer_moments",
                                                        "crystallizer_population_balance", "chromatography_lwe"])
    parser.add_argument("--quick", action="store_true", help="tiny runs (checks the script, not the figures)")
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--crystallizer-hidden", type=int, nargs="+", default=[32, 32])
    parser.add_argument("--crystallizer-samples", type=int, default=256)
    parser.add_argument("--chromatography-samples", type=int, default=96)
    parser.add_argument("--physics-runs", type=int, default=100, help="physics runs timed for the 1,000-run figure")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-nmpc", action="store_true")
    parser.add_argument("--nmpc-solvers", nargs="+", default=["ipopt"],
                        help="solver labels for the NMPC comparison (benchmarks/mpc.py --solvers)")
    parser.add_argument("--keep", type=Path, help="keep the artifacts in this directory")
    parser.add_argument("--reuse", type=Path,
                        help="train on the datasets of an earlier --keep directory (same design and sample count)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models' rows (and the NMPC figures unless re-run) of the existing JSON")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:  # --quick sizes, one model, no NMPC comparison, no merge with the published JSON
        args.quick, args.models, args.no_nmpc, args.merge = True, ["mixing_tank"], True, False
        args.physics_runs, args.workers = 2, 1
    torch.set_num_threads(1)
    rows, nmpc, nmpc_runs = [], None, []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for name in args.models:
            row, artifact = run_model(name, args, work)
            rows.append(row)
            if name == "crystallizer_moments" and not args.no_nmpc:
                from benchmarks.mpc import solver_options

                nmpc_runs = [nmpc_comparison(artifact, solver_options(label)) for label in args.nmpc_solvers]
                nmpc = nmpc_runs[0]
    print()
    print(f"{'model':<34}{'kind':<18}{'runs':>5}{'train s':>9}{'NRMSE max':>11}{'1 run phys':>12}{'1 run sur':>11}"
          f"{'x':>8}{'1000 phys':>11}{'1000 sur':>10}{'x':>10}")
    for r in rows:
        extrap = "*" if r["physics_1000_measured_runs"] < 1000 else " "
        err = f"{r['test_nrmse_max']:.2%}" if r["test_nrmse_max"] < 10 else f"{r['test_nrmse_max'] * 100:.1e}%"
        print(f"{r['model']:<34}{r['surrogate']:<18}{r['samples']:>5}{r['train_wall_s']:>9.1f}"
              f"{err:>11} {r['physics_one_run_s']:>11.4f}{r['surrogate_one_run_s']:>11.5f}"
              f"{r['speedup_one_run']:>8.1f}{r['physics_1000_runs_s']:>10.1f}{extrap}{r['surrogate_1000_runs_s']:>10.4f}"
              f"{r['speedup_1000_runs']:>10.0f}")
    print("* physics time for 1,000 runs scaled from the runs measured (physics_1000_measured_runs)")
    for r in rows:
        if "d43_batch_end_rel_error_max" in r:
            print(f"crystallizer 2 h batch, batch-end d43 vs physics over {r['test_runs']} test runs: median "
                  f"{r['d43_batch_end_rel_error_median']:.2%}, p90 {r['d43_batch_end_rel_error_p90']:.2%}, max "
                  f"{r['d43_batch_end_rel_error_max']:.2%} (target <= 1 %)")
    for run in nmpc_runs:
        p, s = run["physics"], run["surrogate"]
        print(f"NMPC crystallizer batch, solver {run['solver']} (60 solves each): median solve physics "
              f"{p['median_solve_s'] * 1e3:.1f} ms, "
              f"surrogate {s['median_solve_s'] * 1e3:.1f} ms -> {run['speedup_median_solve']:.2f}x (target >= 3x); "
              f"final d43 {p['final_d43_um']:.1f} / {s['final_d43_um']:.1f} um "
              f"(error {p['final_d43_error_pct']:+.2f} % / {s['final_d43_error_pct']:+.2f} %; "
              f"difference {run['final_d43_error_difference_pp']:.2f} pp); "
              f"failed solves {p['failed_solves']} / {s['failed_solves']}")
    if args.merge and RESULTS.is_file():
        previous = json.loads(RESULTS.read_text())
        rows = [r for r in previous.get("models", []) if r["model"] not in args.models] + rows
        nmpc = nmpc if nmpc is not None else previous.get("nmpc")
    payload = {"benchmark": "surrogates", "when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
               "python": platform.python_version(), "torch": torch.__version__, "torch_threads": 1,
               "quick": args.quick, "models": rows, "nmpc": nmpc, "nmpc_by_solver": nmpc_runs}
    write_results(args, "surrogates", payload,
                  default=lambda o: None if isinstance(o, float) and not math.isfinite(o) else str(o))


if __name__ == "__main__":
    main()
