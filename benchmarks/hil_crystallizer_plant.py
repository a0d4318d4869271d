"""Real-time factor of the HIL crystallizer plants (what the virtual PLC's loop costs per plant second).

For each plant (physics population balance, physics moments, stand-in) and PLC step (0.1 s and 1 s plant time) it
runs a 2-hour seeded linear-cooling batch (jacket setpoint 40 -> 25 degC) exactly as the virtual PLC's loop does:
``plant.step(step_s, commands)`` then ``plant.measurements()`` every step, and reports the wall time and the
real-time factor (plant seconds per wall second; the bench needs >= 200 at ``--speed 200``), plus the ratio to the
stand-in at the same step on this machine. Build time (model compile) is reported apart.

Usage: ``.venv/bin/python benchmarks/hil_crystallizer_plant.py [--batch-s 7200]`` (prints a table, writes
``benchmarks/results/hil_crystallizer_plant.json``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from hil.plant import make_plant  # noqa: E402

PLANTS = {
    "physics_population_balance": {"plant_model": "physics", "plant_resolution": "population_balance"},
    "physics_moments": {"plant_model": "physics", "plant_resolution": "moments"},
    "standin": {"plant_model": "standin"},
}


def run(parameters: dict, step_s: float, batch_s: float) -> dict[str, float]:
    t0 = time.perf_counter()
    plant = make_plant("crystallizer", {"volume_m3": 0.02, **parameters}, seed=1)
    build_s = time.perf_counter() - t0
    steps = round(batch_s / step_s)
    t0 = time.perf_counter()
    for k in range(steps):
        setpoint = 40.0 - 15.0 * k / steps
        plant.step(step_s, {"jacket_temperature_setpoint": setpoint, "agitator_speed_setpoint": 300.0})
        plant.measurements()
    wall_s = time.perf_counter() - t0
    return {"build_time_s": build_s, "wall_time_s": wall_s, "real_time_factor": batch_s / wall_s,
            "wall_per_step_us": 1e6 * wall_s / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-s", type=float, default=7200.0)
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.batch_s = 60.0
    rows = []
    for step_s in (0.1, 1.0):
        results = {name: run(params, step_s, args.batch_s) for name, params in PLANTS.items()}
        reference = results["standin"]["wall_time_s"]
        for name, r in results.items():
            rows.append({"plant": name, "step_s": step_s, **r, "wall_ratio_vs_standin": r["wall_time_s"] / reference})
    header = ("plant", "step_s", "build_s", "wall_s", "us/step", "RTF", "vs standin")
    print(f"{header[0]:30s} " + " ".join(f"{h:>10s}" for h in header[1:]))
    for r in rows:
        print(f"{r['plant']:30s} {r['step_s']:10.1f} {r['build_time_s']:10.3f} {r['wall_time_s']:10.2f} "
              f"{r['wall_per_step_us']:10.0f} {r['real_time_factor']:10.0f} {r['wall_ratio_vs_standin']:10.1f}")
    write_results(args, "hil_crystallizer_plant", {"when": datetime.now(UTC).isoformat(),
                                                   "machine": platform.platform(),
                                                   "python": platform.python_version(), "batch_s": args.batch_s,
                                                   "rows": rows})


if __name__ == "__main__":
    main()
