"""NMPC solve time per step on the batch cooling crystallizer: linetwin's NonlinearMpc beside do-mpc.

Same problem for both, solved in the same run on the same machine:

* model: method-of-moments KDP crystallizer
  (:func:`process_models.crystallization.crystallizer.crystallizer_moments_model`,
  7 states, input ``jacket_temperature``), seeded at 40 degC; do-mpc gets the same casadi right-hand side;
* horizon N (10, 20, 40) of 120 s intervals, receding (do-mpc has no shrinking horizon);
* objective: supersaturation control (track S = 0.015 at every node: ((S - 0.015)/0.001)^2, plus
  0.01 (move in K)^2); jacket bounds [283.15, 313.15] K; no hard rate limit (do-mpc has none);
* IPOPT: print_level 0, sb yes, tol 1e-6, max_iter 200, max_cpu_time 2 s, acceptable_iter 0, mu_strategy
  adaptive; state scaling by the initial state for both.
* discretisation: each tool's own default — linetwin multiple shooting with 1 RK4 step per interval and a
  primal-dual warm start; do-mpc orthogonal collocation (Radau, degree 2, 1 element per interval) and its own
  warm start.

A third column times linetwin alone on the batch problem of the tests (shrinking horizon to batch end, terminal
d43 target, fines term, soft terminal CV constraint, hard rate limit of 1 K per sample), which do-mpc cannot
state.

Every linetwin solver (``--solvers``: labels of :class:`controllers.nmpc_solvers.SolverOptions`, e.g. ``ipopt``,
``fatrop``, ``sqp_hpipm+gn``, ``sqp_hpipm+rti+gn``) runs both problems; the batch problem is scaled by the seeded
state as the control plan does (``state_scales``). Each controller closes its own loop on the simulated nominal
plant for ``--steps`` samples; the time of a step is the wall time of the whole ``step()`` / ``make_step()`` call
(the first, cold step included). Prints a table with median / p95 / max, the ratios to IPOPT and do-mpc measured
in the same run, and writes JSON to ``--out`` (default: a new temporary directory; ``benchmarks/results/`` is
git-ignored). ``--smoke``: a horizon of 5, 4 steps, seconds.

Usage: ``.venv/bin/python benchmarks/mpc.py [--steps 30] [--horizons 10 20 40] [--solvers ipopt fatrop]
[--out DIR] [--smoke]``
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import casadi as ca
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from controllers.crystallization.objective import CrystallizationObjective, crystallizer_nmpc_config  # noqa: E402
from controllers.nmpc import (  # noqa: E402
    HorizonMode,
    ManipulatedInput,
    NmpcConfig,
    NonlinearMpc,
    OutputTracking,
)
from controllers.nmpc_solvers import SolverOptions  # noqa: E402
from process_models.crystallization.crystallizer import crystallizer_moments_model, moments_initial_state, seed_moments  # noqa: E402
from process_models.crystallization.kinetics import solubility  # noqa: E402
from process_models.crystallization.params import parameter_set  # noqa: E402
from process_models.declaration import CompiledModel, compile_model  # noqa: E402
from process_models.simulator import simulate  # noqa: E402

SOLVERS = ("ipopt", "fatrop", "sqp_hpipm+gn", "sqp_hpipm+rti+gn")
SAMPLE_S = 120.0
START_K = 313.15
LOWER_K, UPPER_K = 283.15, 313.15
TARGET_D43 = 400e-6
SUPERSATURATION_REF, SUPERSATURATION_SCALE = 0.015, 0.001
MOVE_WEIGHT = 0.01
BATCH_S = 7200.0
IPOPT = {"print_level": 0, "sb": "yes", "tol": 1e-6, "max_iter": 200, "max_cpu_time": 2.0, "acceptable_iter": 0,
         "mu_strategy": "adaptive"}
JACKET = "jacket_temperature"


def _case() -> tuple[CompiledModel, dict[str, float]]:
    model = compile_model(crystallizer_moments_model())
    kdp = parameter_set("kdp_water").values
    c0 = float(solubility(START_K, kdp))
    x0 = moments_initial_state(c0, seed_moments(0.01 * c0, 150e-6, 15e-6, kdp["crystal_density"]), START_K)
    return model, x0


def _plant_step(model: CompiledModel, x: dict[str, float], k: int, jacket_k: float) -> dict[str, float]:
    sim = simulate(model, x, [k * SAMPLE_S, (k + 1) * SAMPLE_S], {JACKET: jacket_k})
    return {name: float(sim.states[sl, -1][0]) for name, sl in model.state_slices.items()}


def solver_options(label: str) -> SolverOptions:
    """``sqp_hpipm+rti+gn`` -> SolverOptions("sqp_hpipm", rti=True, hessian="gauss_newton"); ``+c``: codegen."""
    method, *flags = label.split("+")
    unknown = set(flags) - {"rti", "gn", "c"}
    if unknown:
        raise SystemExit(f"--solvers {label!r}: unknown flags {sorted(unknown)}; expected rti, gn, c")
    return SolverOptions(method, rti="rti" in flags, hessian="gauss_newton" if "gn" in flags else "exact",
                         codegen="c" in flags)


def _linetwin_loop(model: CompiledModel, x0: dict[str, float], horizon: int, steps: int,
                   solver: SolverOptions) -> dict[str, object]:
    config = NmpcConfig(
        sample_period_s=SAMPLE_S, horizon=horizon, horizon_mode=HorizonMode.RECEDING,
        inputs=(ManipulatedInput(JACKET, LOWER_K, UPPER_K, move_weight=MOVE_WEIGHT),),
        tracking=(OutputTracking("supersaturation", 1.0, SUPERSATURATION_SCALE),),
        state_scales={name: max(abs(v), 1.0) for name, v in x0.items()},
        max_cpu_time_s=IPOPT["max_cpu_time"], max_iter=IPOPT["max_iter"], tolerance=IPOPT["tol"], solver=solver)
    return _run_linetwin(model, x0, config, steps, {"supersaturation": SUPERSATURATION_REF}, None)


def _linetwin_batch_loop(model: CompiledModel, x0: dict[str, float], horizon: int, steps: int,
                         solver: SolverOptions) -> dict[str, object]:
    objective = CrystallizationObjective(target_d43_m=TARGET_D43, seed_count_per_kg=x0["mu0"], max_cv=0.94)
    config = crystallizer_nmpc_config(objective, SAMPLE_S, horizon, LOWER_K, UPPER_K, max_move_k=1.0,
                                      max_cpu_time_s=IPOPT["max_cpu_time"],
                                      state_scales={k: abs(v) for k, v in x0.items() if v})  # as the control plan
    config = replace(config, solver=solver)
    return _run_linetwin(model, x0, config, steps, {"d43": TARGET_D43}, BATCH_S)


def _run_linetwin(model: CompiledModel, x0: dict[str, float], config: NmpcConfig, steps: int,
                  references: dict[str, float], batch_end_s: float | None) -> dict[str, object]:
    started = time.perf_counter()
    mpc = NonlinearMpc(model, config)
    build_s = time.perf_counter() - started
    x, u = dict(x0), START_K
    walls, ipopt_walls, iterations, failures, objectives, statuses = [], [], [], 0, [], {}
    for k in range(steps):
        t0 = time.perf_counter()
        result = mpc.step(k * SAMPLE_S, x, {JACKET: u}, references, batch_end_s=batch_end_s)
        walls.append(time.perf_counter() - t0)
        ipopt_walls.append(result.solve_time_s)
        iterations.append(result.iterations)
        failures += not result.success
        objectives.append(result.objective)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        u = result.commands[0].value if result.success else u
        x = _plant_step(model, x, k, u)
    return {"build_s": build_s, "walls": walls, "ipopt_walls": ipopt_walls, "iterations": iterations,
            "failures": failures, "final_jacket_k": u, "objectives": objectives, "statuses": statuses}


def _dompc_loop(model: CompiledModel, x0: dict[str, float], horizon: int, steps: int) -> dict[str, object]:
    import do_mpc

    names = list(model.state_slices)
    dm = do_mpc.model.Model("continuous", "SX")
    xs = [dm.set_variable("_x", name) for name in names]
    u = dm.set_variable("_u", JACKET)
    x_vec = ca.vertcat(*xs)
    p = model.pack_parameters()
    xdot = model.rhs(x_vec, u, p, 0.0)
    for i, name in enumerate(names):
        dm.set_rhs(name, xdot[i])
    y = model.output(x_vec, u, p, 0.0)
    dm.set_expression("supersaturation", y[model.output_slices["supersaturation"]])
    dm.setup()
    mpc = do_mpc.controller.MPC(dm)
    mpc.set_param(n_horizon=horizon, t_step=SAMPLE_S, store_full_solution=False, n_robust=0,
                  nlpsol_opts={**{f"ipopt.{k}": v for k, v in IPOPT.items()}, "print_time": False})
    tracking = ((dm.aux["supersaturation"] - SUPERSATURATION_REF) / SUPERSATURATION_SCALE) ** 2
    mpc.set_objective(mterm=tracking, lterm=tracking)
    mpc.set_rterm(**{JACKET: MOVE_WEIGHT})
    mpc.bounds["lower", "_u", JACKET] = LOWER_K
    mpc.bounds["upper", "_u", JACKET] = UPPER_K
    for name in names:
        mpc.scaling["_x", name] = max(abs(x0[name]), 1.0)
    started = time.perf_counter()
    mpc.setup()
    build_s = time.perf_counter() - started
    x_arr = np.array([x0[n] for n in names]).reshape(-1, 1)
    mpc.x0 = x_arr
    mpc.u0 = np.array([[START_K]])
    mpc.set_initial_guess()
    x, u_val = dict(x0), START_K
    walls, iterations, failures = [], [], 0
    for k in range(steps):
        x_arr = np.array([x[n] for n in names]).reshape(-1, 1)
        t0 = time.perf_counter()
        u_arr = mpc.make_step(x_arr)
        walls.append(time.perf_counter() - t0)
        stats = mpc.solver_stats
        iterations.append(int(stats.get("iter_count", 0)))
        ok = bool(stats.get("success", False)) and np.all(np.isfinite(u_arr))
        failures += not ok
        u_val = float(u_arr[0, 0]) if ok else u_val
        x = _plant_step(model, x, k, u_val)
    return {"build_s": build_s, "walls": walls, "iterations": iterations, "failures": failures,
            "final_jacket_k": u_val}


def _summary(walls: list[float]) -> dict[str, float]:
    arr = np.asarray(walls) * 1e3
    return {"median_ms": float(np.median(arr)), "p95_ms": float(np.percentile(arr, 95)), "max_ms": float(arr.max())}


def _row(run: dict[str, object]) -> dict[str, object]:
    out = {**_summary(run["walls"]), "median_iterations": float(np.median(run["iterations"])),
           "failures": run["failures"], "build_s": run["build_s"], "final_jacket_k": run["final_jacket_k"]}
    if "statuses" in run:
        out["statuses"] = run["statuses"]
        out["final_objective"] = run["objectives"][-1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="closed-loop steps per controller and horizon")
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), help="linetwin solver labels")
    parser.add_argument("--no-dompc", action="store_true", help="skip do-mpc")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:  # horizon 5, 4 steps: seconds
        args.horizons, args.steps = [5], 4
    solvers = [solver_options(label) for label in args.solvers]
    warnings.filterwarnings("ignore")
    logging.getLogger("do_mpc").setLevel(logging.ERROR)
    logging.getLogger("controllers").setLevel(logging.ERROR)
    model, x0 = _case()
    rows = []
    for horizon in args.horizons:
        row: dict[str, object] = {"horizon": horizon, "steps": args.steps, "shared": {}, "batch": {}}
        for solver in solvers:
            sys.stderr.write(f"[mpc bench] N={horizon} {solver.label}: shared problem ...\n")
            row["shared"][solver.label] = _row(_linetwin_loop(model, x0, horizon, args.steps, solver))
            sys.stderr.write(f"[mpc bench] N={horizon} {solver.label}: batch problem ...\n")
            row["batch"][solver.label] = _row(_linetwin_batch_loop(model, x0, horizon, args.steps, solver))
        if not args.no_dompc:
            sys.stderr.write(f"[mpc bench] N={horizon} do-mpc ...\n")
            row["shared"]["do-mpc"] = _row(_dompc_loop(model, x0, horizon, args.steps))
        rows.append(row)
    header = (f"{'N':>3} {'problem':>7} {'controller':>18} | {'median':>8} {'p95':>8} {'max':>8} ms | {'it':>4} "
              f"{'fail':>4} | {'ipopt/x':>7} {'do-mpc/x':>8} {'p95/med':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        for problem in ("shared", "batch"):
            table = r[problem]
            ipopt = table.get("ipopt", {}).get("median_ms", math.nan)
            dompc = table.get("do-mpc", {}).get("median_ms", math.nan)
            for name, a in table.items():
                a["median_ratio_ipopt_over_this"] = ipopt / a["median_ms"]
                a["median_ratio_dompc_over_this"] = dompc / a["median_ms"]
                print(f"{r['horizon']:>3} {problem:>7} {name:>18} | {a['median_ms']:8.1f} {a['p95_ms']:8.1f} "
                      f"{a['max_ms']:8.1f}    | {a['median_iterations']:4.0f} {a['failures']:4d} | "
                      f"{a['median_ratio_ipopt_over_this']:7.2f} {a['median_ratio_dompc_over_this']:8.2f} "
                      f"{a['p95_ms'] / a['median_ms']:7.2f}")
    versions = {"casadi": ca.__version__, "numpy": np.__version__}
    if not args.no_dompc:
        import do_mpc

        versions["do_mpc"] = do_mpc.__version__
    payload = {
        "benchmark": "nmpc_solve_time_crystallizer",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "versions": versions,
        "problem": {"sample_period_s": SAMPLE_S, "supersaturation_reference": SUPERSATURATION_REF, "ipopt": IPOPT,
                    "jacket_bounds_k": [LOWER_K, UPPER_K],
                    "linetwin": "multiple shooting, RK4 x1 per interval (batch problem: x2), staged NLP",
                    "do_mpc": "collocation radau deg 2, 1 element per interval (defaults)"},
        "rows": rows,
    }
    write_results(args, "mpc", payload, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))


if __name__ == "__main__":
    main()
