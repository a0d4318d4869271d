"""EKF step cost (issue 14): the pilot crystallizer's estimator, its transition's sensitivities as built now (one
forward-sensitivity run in the state and estimated-parameter directions) against the construction before
2026-12-07 (the Jacobians with respect to the state and to *every* declared parameter, modes left to casadi, which
took the parameter columns by an adjoint run), on the same steps in the same process.

"now" is the EKF's own transition function; "before" is rebuilt here as it was. The steps: every transition the EKF
evaluated in a stepped nominal MPC batch (``examples/scenarios/nominal_mpc.toml``,
the first ``--batch-s`` plant seconds), replayed through both constructions. Reported: CPU milliseconds per
transition (best of ``--repeats`` passes), the ratio to the construction before, and the largest difference of each
Jacobian from a reference at reltol 1e-12 / abstol 1e-14 in forward mode (relative to the reference's largest
entry; the estimated parameters' columns).

Usage: ``.venv/bin/python benchmarks/estimator.py [--batch-s 3600] [--repeats 3]`` (prints a table, writes
``benchmarks/results/estimator.json``); ``--smoke``: a 300 s batch, one pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import casadi as ca
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from process_models.estimator import (  # noqa: E402
    EKF_CVODES_OPTIONS,
    ExtendedKalmanFilter,
    sample_period_integrator,
)

SCENARIO = ROOT / "examples" / "scenarios" / "nominal_mpc.toml"


def _every_parameter_transition(ekf: ExtendedKalmanFilter, options: dict[str, object]) -> ca.Function:
    """The transition as the EKF built it before 2026-12-07: Jacobians with respect to the state and to the vector of
    every declared parameter, modes left to casadi unless ``options`` force them; the estimated columns taken."""
    m = ekf.model
    integrator = sample_period_integrator(m, ekf.sample_period_s, "cvodes", options)
    x0, u, p, t0 = ca.MX.sym("x0", m.nx), ca.MX.sym("u", m.nu), ca.MX.sym("p", m.np), ca.MX.sym("t0")
    xf = integrator(x0=x0, p=ca.vertcat(u, p, t0))["xf"]
    theta = ekf._theta_index  # noqa: SLF001 - the columns the filter uses
    return ca.Function("before", [x0, u, p, t0], [xf, ca.jacobian(xf, x0), ca.jacobian(xf, p)[:, theta]])


def _recorded_steps(batch_s: float) -> tuple[ExtendedKalmanFilter, ca.Function, list[tuple[np.ndarray, ...]]]:
    """The EKF of a stepped nominal MPC batch of ``batch_s`` plant seconds, its own transition function and the
    arguments of every transition it evaluated (state, inputs, parameters, time)."""
    from hil.scenario import load_scenario
    from hil.stepped_batch import run_stepped_batch

    calls: list[tuple[np.ndarray, ...]] = []
    built: list[tuple[ExtendedKalmanFilter, ca.Function]] = []
    build = ExtendedKalmanFilter._build_transition

    def recording(ekf: ExtendedKalmanFilter, plugin: str) -> ca.Function:
        transition = build(ekf, plugin)
        built.append((ekf, transition))

        def call(*args: object) -> object:
            calls.append(tuple(np.array(a, dtype=float) for a in args))
            return transition(*args)
        return call  # type: ignore[return-value]

    ExtendedKalmanFilter._build_transition = recording  # type: ignore[method-assign]
    try:
        scenario = dataclasses.replace(load_scenario(SCENARIO), batch_duration_s=batch_s)
        run_stepped_batch(scenario)
    finally:
        ExtendedKalmanFilter._build_transition = build  # type: ignore[method-assign]
    return built[0][0], built[0][1], calls


def _per_call_ms(function: ca.Function, calls: list[tuple[np.ndarray, ...]], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for args in calls:
            function(*args)
        best = min(best, (time.process_time() - started) / len(calls) * 1e3)
    return best


def _largest_error(function: ca.Function, reference: ca.Function, calls: list[tuple[np.ndarray, ...]]
                   ) -> tuple[float, float]:
    """Largest |dx/dx0 - ref| and |dx/dtheta - ref| over the calls, each relative to the reference's largest entry."""
    errors = [0.0, 0.0]
    for args in calls:
        got, ref = function(*args), reference(*args)
        for k in (1, 2):
            r = np.asarray(ref[k])
            errors[k - 1] = max(errors[k - 1], float(np.max(np.abs(np.asarray(got[k]) - r)) / np.max(np.abs(r))))
    return errors[0], errors[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-s", type=float, default=3600.0, help="plant seconds of the recorded batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the steps (best taken)")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.batch_s, args.repeats = 300.0, 1
    print(f"recording the EKF of a {args.batch_s:g} s stepped nominal MPC batch ...", file=sys.stderr, flush=True)
    ekf, now, calls = _recorded_steps(args.batch_s)
    variants = {"now": now,
                "before": _every_parameter_transition(ekf, EKF_CVODES_OPTIONS)}
    reference = _every_parameter_transition(ekf, {"abstol": 1e-14, "reltol": 1e-12, "max_num_steps": 200000,
                                                  "ad_weight": 0.0})
    rows = []
    for name, function in variants.items():
        error_x, error_theta = _largest_error(function, reference, calls)
        rows.append({"transition": name, "ms_per_step": _per_call_ms(function, calls, args.repeats),
                     "max_error_d_state": error_x, "max_error_d_theta": error_theta})
    before = rows[1]["ms_per_step"]
    for row in rows:
        row["ratio_to_before"] = row["ms_per_step"] / before
    print(f"{'transition':12s} {'ms/step':>9s} {'vs before':>10s} {'err d/dx0':>11s} {'err d/dtheta':>13s}")
    for r in rows:
        print(f"{r['transition']:12s} {r['ms_per_step']:9.3f} {r['ratio_to_before']:10.2f} "
              f"{r['max_error_d_state']:11.2e} {r['max_error_d_theta']:13.2e}")
    write_results(args, "estimator", {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
                                      "python": platform.python_version(), "batch_s": args.batch_s,
                                      "steps": len(calls), "states": ekf.model.nx,
                                      "estimated_parameters": list(ekf.estimate_parameters),
                                      "declared_parameters": ekf.model.np, "rows": rows})


if __name__ == "__main__":
    main()
