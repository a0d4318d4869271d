"""Campaign throughput on Dask: closed-loop batches per hour with 1 and 2 workers, and the scheduler's overhead.

For each worker count, an embedded LocalCluster runs the same small campaign (a fresh results directory, so every
run is computed): ``plants`` × (linear_cooling, mpc) stepped batches of ``batch_duration_s`` plant seconds. Figures:

* ``batches_per_hour`` (wall, whole campaign incl. cluster start) and per worker (core);
* ``speedup_2_over_1`` (the issue's target: ≥ 1.8× on an idle machine; this 2-core box is shared);
* ``mean_run_wall_s`` (a batch on a worker, from the rows) and ``scheduler_overhead_s_per_task`` = (campaign wall −
  cluster start − Σ run walls / workers) / runs, an upper bound of what Dask adds per task;
* ``mpc_batches_per_core_hour`` (target ≥ 200) from the MPC rows' worker wall time.

Run: ``python benchmarks/campaign.py [--plants 32] [--batch-s 7200]`` (~4 min on an idle 2-core machine);
``--smoke``: 1 plant, 10-minute batches, 1 worker only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_cli import add_run_options, parse_args, write_results  # noqa: E402

SCENARIO = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "nominal_mpc.toml"


def _campaign_file(directory: Path, plants: int, batch_s: float) -> Path:
    path = directory / "bench.toml"
    path.write_text(f"""[campaign]
name = "bench"
scenario = "{SCENARIO}"
plants = {plants}
sampling = "sobol"
seed = 1
strategies = ["linear_cooling", "mpc"]
[fixed]
"scenario.batch_duration_s" = {batch_s}
[dimensions.growth]
target = "plant.growth_rate_factor"
distribution = "uniform"
low = 0.8
high = 1.2
""")
    return path


def _measure(campaign_path: Path, workers: int) -> dict[str, float]:
    from hil.campaign.runner import run_campaign
    from hil.campaign.spec import load_campaign

    campaign = load_campaign(campaign_path)
    with tempfile.TemporaryDirectory(prefix="linetwin-bench-campaign-") as out:
        start = time.perf_counter()
        first: list[float] = []
        outcome = run_campaign(campaign, Path(out), workers=workers, progress=None,
                               on_row=lambda _r: first.append(time.perf_counter()) if not first else None)
        wall = time.perf_counter() - start
    rows = [r for r in outcome.rows if r.get("status") == "ok"]
    run_walls = [float(r["wall_s"]) for r in rows]
    mpc_walls = [float(r["wall_s"]) for r in rows if r["strategy"] == "mpc"]
    startup = (first[0] - start) - run_walls[0] if first and run_walls else 0.0
    overhead = (wall - startup - sum(run_walls) / workers) / max(len(rows), 1)
    return {"workers": workers, "runs": outcome.total, "failed": outcome.failed, "wall_s": wall,
            "cluster_start_s": startup, "batches_per_hour": 3600.0 * outcome.total / wall,
            "batches_per_hour_per_worker": 3600.0 * outcome.total / wall / workers,
            "mean_run_wall_s": sum(run_walls) / len(run_walls) if run_walls else None,
            "mpc_batches_per_core_hour": 3600.0 / (sum(mpc_walls) / len(mpc_walls)) if mpc_walls else None,
            "scheduler_overhead_s_per_task": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plants", type=int, default=32,
                        help="plants per worker count (x2 strategies); 32 amortises each worker's start-up")
    parser.add_argument("--batch-s", type=float, default=7200.0, help="plant seconds per batch")
    add_run_options(parser)
    args = parse_args(parser)
    plants, batch_s, worker_counts = (1, 600.0, (1,)) if args.smoke else (args.plants, args.batch_s, (1, 2))
    with tempfile.TemporaryDirectory(prefix="linetwin-bench-campaign-file-") as d:
        path = _campaign_file(Path(d), plants, batch_s)
        results = [_measure(path, n) for n in worker_counts]
    for r in results:
        print(f"{r['workers']} worker(s): {r['runs']} batches in {r['wall_s']:.1f} s = {r['batches_per_hour']:.0f}/h "
              f"({r['batches_per_hour_per_worker']:.0f}/h per worker); run {r['mean_run_wall_s']:.2f} s; cluster "
              f"start {r['cluster_start_s']:.1f} s; overhead {r['scheduler_overhead_s_per_task']:.2f} s/task")
    payload: dict[str, object] = {"plants": plants, "batch_duration_s": batch_s, "by_workers": results}
    if len(results) == 2:
        payload["speedup_2_over_1"] = results[0]["wall_s"] / results[1]["wall_s"]
        print(f"speed-up 1 -> 2 workers: {payload['speedup_2_over_1']:.2f}x")
    write_results(args, "campaign", payload)


if __name__ == "__main__":
    main()
