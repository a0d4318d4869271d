"""Crystallizer model speed: 2-hour KDP seeded cooling batch, method of moments vs finite-volume PBE (200 bins).

Rows (``rows()``, the contract of ``benchmarks/models.py``):

* the shipped case files run exactly as ``linetwin simulate`` runs them (SI states, 60 s output, simulator
  defaults rtol 1e-8 / atol 1e-10);
* the same models with scaled states (:mod:`process_models.crystallization.simulation`), 60 s and 300 s output;
* the FV model at rtol 1e-6 (scaled, 60 s output);
* a reference: the scaled FV model integrated by one CVODES call over the whole batch with a 60 s output grid
  (no restart at every output time, the jacket ramp applied exactly), which bounds what the simulator's
  per-interval restarts cost.

Each row: median wall time of ``repeats`` runs after one warm-up run (integrator built and cached), the real-time
factor, and the largest relative deviation of the final mu0..mu4 from the method-of-moments run at rtol 1e-10.

Usage: ``.venv/bin/python benchmarks/bench_crystallizer.py [--repeats 5]`` (prints a table, writes
``benchmarks/results/crystallizer.json``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from process_models.case_file import load_case  # noqa: E402
from process_models.crystallization.crystallizer import discrete_moments, size_grid  # noqa: E402
from process_models.crystallization.simulation import ScaledModel, scale_model, simulate_scaled  # noqa: E402
from process_models.simulator import InputProgram, simulate  # noqa: E402

CASES = ROOT / "examples" / "cases"
MOMENTS = [f"mu{k}" for k in range(5)]
BATCH_S = 7200.0


def _median_wall(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    result = run()  # warm-up: builds and caches the integrator
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), result


def _continuous_cvodes(model: ScaledModel, initial_state: dict[str, Any], times: np.ndarray,
                       ramp: InputProgram) -> Callable[[], np.ndarray]:
    """One CVODES call over the whole grid; jacket temperature linear in t exactly."""
    m = model.scaled
    t = ca.SX.sym("t")
    slope = (ramp.values[-1] - ramp.values[0]) / (ramp.times_s[-1] - ramp.times_s[0])
    jacket = ramp.values[0] + slope * t
    ode = m.rhs(m.x_sym, jacket, m.p_sym, t)
    integrator = ca.integrator("kdp_fv_continuous", "cvodes", {"x": m.x_sym, "p": m.p_sym, "t": t, "ode": ode},
                               float(times[0]), [float(v) for v in times[1:]],
                               {"abstol": 1e-10, "reltol": 1e-8, "max_num_steps": 200000})
    z0 = m.pack_states({k: np.asarray(v, dtype=float) / model.scales[k] for k, v in initial_state.items()})
    p = m.pack_parameters()

    def run() -> np.ndarray:
        return np.asarray(integrator(x0=z0, p=p)["xf"]) * model.scale_vector()[:, None]

    return run


def rows(repeats: int = 5) -> list[dict[str, Any]]:
    moments_case = load_case(CASES / "crystallizer_kdp_moments.toml")
    fv_case = load_case(CASES / "crystallizer_kdp_population_balance.toml")
    times_60 = moments_case.times_s()
    times_300 = np.arange(0.0, BATCH_S + 1.0, 300.0)
    ramp = moments_case.inputs["jacket_temperature"]
    assert isinstance(ramp, InputProgram)

    mom_scaled = scale_model(moments_case.declaration, moments_case.initial_state)
    reference = simulate_scaled(mom_scaled, moments_case.initial_state, times_60, moments_case.inputs,
                                rtol=1e-10, atol=1e-12)
    ref_final = np.array([reference.output(k)[-1] for k in MOMENTS])
    fv_scaled = scale_model(fv_case.declaration, fv_case.initial_state)

    def deviation(result: Any) -> float:
        final = np.array([result.output(k)[-1] for k in MOMENTS])
        return float(np.max(np.abs(final / ref_final - 1.0)))

    runs: list[tuple[str, str, Callable[[], Any], int]] = [
        ("crystallizer_moments", "case file, 2 h, 60 s output (SI states, simulator defaults)",
         lambda: simulate(moments_case.model, moments_case.initial_state, times_60, moments_case.inputs),
         moments_case.model.nx),
        ("crystallizer_moments", "2 h, 60 s output, scaled states",
         lambda: simulate_scaled(mom_scaled, moments_case.initial_state, times_60, moments_case.inputs),
         moments_case.model.nx),
        ("crystallizer_fv_200", "case file, 2 h, 60 s output (SI states, simulator defaults)",
         lambda: simulate(fv_case.model, fv_case.initial_state, times_60, fv_case.inputs), fv_case.model.nx),
        ("crystallizer_fv_200", "2 h, 60 s output, scaled states",
         lambda: simulate_scaled(fv_scaled, fv_case.initial_state, times_60, fv_case.inputs), fv_case.model.nx),
        ("crystallizer_fv_200", "2 h, 300 s output, scaled states",
         lambda: simulate_scaled(fv_scaled, fv_case.initial_state, times_300, fv_case.inputs), fv_case.model.nx),
        ("crystallizer_fv_200", "2 h, 60 s output, scaled states, rtol 1e-6 atol 1e-8",
         lambda: simulate_scaled(fv_scaled, fv_case.initial_state, times_60, fv_case.inputs, rtol=1e-6, atol=1e-8),
         fv_case.model.nx),
    ]
    out: list[dict[str, Any]] = []
    for i, (model, case, run, nx) in enumerate(runs):
        sys.stderr.write(f"\rbench_crystallizer: {i + 1}/{len(runs) + 1} {model}: {case[:40]:<40}")
        sys.stderr.flush()
        wall, result = _median_wall(run, repeats)
        out.append({"model": model, "case": case, "wall_time_s": wall, "simulated_time_s": BATCH_S,
                    "realtime_factor": BATCH_S / wall, "n_states": nx,
                    "max_relative_error": deviation(result), "reference": "moments, scaled, rtol 1e-10"})
    sys.stderr.write(f"\rbench_crystallizer: {len(runs) + 1}/{len(runs) + 1} continuous CVODES reference{' ' * 30}\n")
    continuous = _continuous_cvodes(fv_scaled, dict(fv_case.initial_state), times_60, ramp)
    wall, states = _median_wall(continuous, repeats)
    final = discrete_moments(size_grid(200, 8e-4), states[fv_case.model.state_slices["number_density"], -1])
    out.append({"model": "crystallizer_fv_200", "case": "2 h, 60 s output grid, one continuous CVODES call "
                "(no per-interval restart; reference for the simulator's restart cost)",
                "wall_time_s": wall, "simulated_time_s": BATCH_S, "realtime_factor": BATCH_S / wall,
                "n_states": fv_case.model.nx, "max_relative_error": float(np.max(np.abs(final / ref_final - 1.0))),
                "reference": "moments, scaled, rtol 1e-10"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.repeats = 1
    table = rows(args.repeats)
    print(f"{'model':<22} {'wall [ms]':>10} {'x real time':>12} {'max rel dev':>12}  case")
    for r in table:
        print(f"{r['model']:<22} {r['wall_time_s'] * 1e3:>10.1f} {r['realtime_factor']:>12,.0f} "
              f"{r['max_relative_error']:>12.1e}  {r['case']}")
    write_results(args, "crystallizer", {"generated": datetime.now(UTC).isoformat(), "machine": platform.platform(),
                                         "python": platform.python_version(), "casadi": ca.__version__,
                                         "repeats": args.repeats, "rows": table})


if __name__ == "__main__":
    main()
