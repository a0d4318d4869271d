"""Online pooling on the chromatography skid: pool yield, purity and productivity per scenario for fixed UV
thresholds, the model-based loop and the oracle (issue 19), in lockstep (:mod:`hil.pooling_stepped`).

Every scenario (nominal, isotherm mismatch, feed-titre mismatch, gradient deviation, UV drift) runs under each
seed (sensor noise and the estimator's ensemble draw); the table lists every run, the summary the mean yields,
the model loop's relative gain over fixed thresholds, its relative gap to the oracle and how many runs met the
purity spec. Usage: ``.venv/bin/python benchmarks/pooling.py [--seeds 3] [--scenarios nominal uv_drift ...]``
(prints the table, writes ``benchmarks/results/pooling.json``). About 2-3 min of CPU per scenario and seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from controllers.chromatography.elution_estimator import EstimationSpec  # noqa: E402
from hil.pooling_stepped import (  # noqa: E402
    DEFAULT_STRATEGIES,
    SCENARIOS,
    STRATEGIES,
    PoolingBench,
    PoolingSkid,
    kpi_table,
    scenario_by_name,
    scenario_table,
    summarise,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per scenario (0, 1, ...)")
    parser.add_argument("--scenarios", nargs="*", default=[s.name for s in SCENARIOS],
                        help=f"scenario names (default: all of {[s.name for s in SCENARIOS]})")
    parser.add_argument("--strategies", nargs="*", default=list(DEFAULT_STRATEGIES),
                        help=f"strategies (default: {list(DEFAULT_STRATEGIES)}; all: {list(STRATEGIES)})")
    add_run_options(parser)
    args = parse_args(parser)
    skid = PoolingSkid()
    if args.smoke:
        args.seeds, args.scenarios = 1, ["nominal"]
        args.strategies = [s for s in args.strategies if s != "fixed_thresholds_robust"]
        skid = dataclasses.replace(skid, replan_interval_s=200.0,
                                   estimation=EstimationSpec(iterations=1, ensemble_size=50))
    started = time.perf_counter()
    bench = PoolingBench(skid)
    outcomes = []
    for name in args.scenarios:
        scenario = scenario_by_name(name)
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            outcome = bench.run(scenario, seed, args.strategies)
            outcomes.append(outcome)
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    table = kpi_table(outcomes)
    summary = summarise(outcomes)
    print(table)
    print()
    print(scenario_table(outcomes))
    print()
    for key, value in summary.items():
        print(f"{key}: {value:.4f}")
    write_results(args, "pooling", {
        "generated_utc": datetime.now(UTC).isoformat(), "machine": platform.platform(),
        "python": platform.python_version(), "wall_time_s": time.perf_counter() - started,
        "fixed_threshold_levels_mau": [bench.start_level_mau, bench.stop_level_mau],
        "robust_threshold_levels_mau": list(bench.robust_levels_mau())
        if "fixed_thresholds_robust" in args.strategies else None,
        "spec": dataclasses.asdict(skid.spec), "summary": summary, "table_markdown": table,
        "scenario_table_markdown": scenario_table(outcomes),
        "runs": [{"scenario": o.scenario, "seed": o.seed,
                  "kpis": {k: dataclasses.asdict(v) for k, v in o.kpis.items()}} for o in outcomes]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
