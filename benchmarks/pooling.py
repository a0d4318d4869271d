"""Online pooling on the chromatography skid: pool yield, purity and productivity per scenario for fixed UV
thresholds, the model-based loop and the oracle (issue 19), in lockstep (:mod:`hil.pooling_stepped`).

Every scenario (nominal, isotherm mismatch, feed-titre mismatch, gradient deviation, UV drift) runs under each
seed (sensor noise and the estimator's ensemble draw); the table lists every run, the summary the mean yields,
the model loop's relative gain over fixed thresholds, its relative gap to the oracle and how many runs met the
purity spec. Usage: ``.venv/bin/python benchmarks/pooling.py [--seeds 3] [--scenarios nominal uv_drift ...]
[--workers 2]`` (prints the table, writes ``benchmarks/results/pooling.json``). About 40 s of CPU per scenario and
seed; ``--workers`` runs that many (scenario, seed) runs at once in separate processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
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
    ScenarioOutcome,
    kpi_table,
    scenario_by_name,
    scenario_table,
    summarise,
)

_BENCH: PoolingBench | None = None


def _run_one(skid: PoolingSkid, name: str, seed: int, strategies: list[str]) -> tuple[ScenarioOutcome, float]:
    """One (scenario, seed) run on this process's bench (built on first use); the outcome and its wall time s."""
    global _BENCH
    if _BENCH is None or _BENCH.skid != skid:
        _BENCH = PoolingBench(skid)
    t0 = time.perf_counter()
    return _BENCH.run(scenario_by_name(name), seed, strategies), time.perf_counter() - t0


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per scenario (0, 1, ...)")
    parser.add_argument("--scenarios", nargs="*", default=[s.name for s in SCENARIOS],
                        help=f"scenario names (default: all of {[s.name for s in SCENARIOS]})")
    parser.add_argument("--strategies", nargs="*", default=list(DEFAULT_STRATEGIES),
                        help=f"strategies (default: {list(DEFAULT_STRATEGIES)}; all: {list(STRATEGIES)})")
    parser.add_argument("--workers", type=int, default=1, help="runs at once, in separate processes")
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
    jobs = [(scenario_by_name(name).name, seed) for name in args.scenarios for seed in range(args.seeds)]
    outcomes = []
    with ProcessPoolExecutor(max_workers=max(args.workers, 1)) as pool:
        futures = [pool.submit(_run_one, skid, name, seed, args.strategies) for name, seed in jobs]
        for (name, seed), future in zip(jobs, futures, strict=True):
            outcome, wall_s = future.result()
            outcomes.append(outcome)
            print(f"{name} seed {seed}: {wall_s:.0f} s", file=sys.stderr, flush=True)
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
        "cpu_time_s": _cpu_s(resource.RUSAGE_SELF) + _cpu_s(resource.RUSAGE_CHILDREN),
        "load_average_at_end": list(os.getloadavg()), "workers": args.workers,
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
