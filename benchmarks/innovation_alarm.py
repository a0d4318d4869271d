"""How well the ``parameter_set_mismatch`` alarm tells a plant its parameter set fits from one that changed.

Stepped batches (``hil/stepped_batch.py``: the twin's control core on the physics plant, lockstep, deterministic for
a seed) of the nominal linear-cooling scenario, the estimator declaring the plant's own sensor noise
(``measurement_std`` = the physics plant's noise std), the deployed set = the nominal one. Per plant case and seed,
every estimator step's NIS goes through the alarm's own decision (``twin_server.alarms.innovation_alarm.NisOnDelay``:
95 % χ² band, upper side, 180 plant seconds on-delay). Cases: the nominal plant (a false alarm is one raised at
all), and plants whose kinetics change at ``change_at_s`` (growth ×0.5 / nucleation ×3; both ×1.4; a solubility
offset of +0.002 kg/kg). Figures per case: batches with an alarm, the delay from the change to the alarm, the
fraction of steps above the band (2.5 % expected on a fitting set).

Run: ``python benchmarks/innovation_alarm.py [--seeds 10] [--batch-s 3600]``; ``--smoke``: 1 seed, 20-minute
batches, two cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_cli import add_run_options, parse_args, write_results  # noqa: E402

SCENARIO = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "nominal_linear_cooling.toml"
PLANT_NOISE = {"temperature": 0.02, "solute_concentration": 0.3, "mean_chord_length": 1.0, "chord_count_rate": 20.0}
CASES: dict[str, dict[str, float]] = {
    "nominal": {},
    "growth x0.5, nucleation x3": {"changed_growth_rate_factor": 0.5, "changed_nucleation_rate_factor": 3.0},
    "growth and nucleation x1.4": {"changed_growth_rate_factor": 1.4, "changed_nucleation_rate_factor": 1.4},
    "solubility +0.002 kg/kg": {"changed_solubility_offset_kg_per_kg": 0.002},
}


def _batch(case: dict[str, float], seed: int, batch_s: float, change_at_s: float) -> dict[str, Any]:
    from hil.scenario import load_scenario
    from hil.stepped_batch import run_stepped_batch
    from process_models.innovation_consistency import NisBand
    from twin_server.alarms.innovation_alarm import NisOnDelay

    base = load_scenario(SCENARIO)
    plant = {**base.plant, **({"kinetics_change_at_s": change_at_s, **case} if case else {})}
    scenario = dataclasses.replace(base, plant=plant, batch_duration_s=batch_s,
                                   control={**base.control, "measurement_std": PLANT_NOISE})
    band = NisBand(0.95)
    test = NisOnDelay(band, on_delay_s=180.0)
    steps: list[tuple[float, float, int]] = []
    raised: list[float] = []

    def on_tick(t: float, core: Any) -> None:
        est = core.estimate
        if est is None or est.nis is None or est.nis_dof < 1:
            return
        steps.append((t, est.nis, est.nis_dof))
        if test.update(est.nis, est.nis_dof, t) is not None and not raised:
            raised.append(t)

    run_stepped_batch(scenario, seed=seed, on_tick=on_tick)
    above = sum(1 for _, nis, dof in steps if nis > band.limits(dof)[1])
    return {"alarm_at_s": raised[0] if raised else None, "steps": len(steps),
            "fraction_above": above / len(steps) if steps else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batch-s", type=float, default=3600.0)
    parser.add_argument("--change-at-s", type=float, default=1200.0)
    add_run_options(parser)
    args = parse_args(parser)
    seeds, batch_s, change_at = (1, 1200.0, 600.0) if args.smoke else (args.seeds, args.batch_s, args.change_at_s)
    cases = dict(list(CASES.items())[:2]) if args.smoke else CASES
    start = time.perf_counter()
    results: dict[str, Any] = {}
    print(f"{'plant':<30}{'alarms':>8}{'delay after change, s (median, max)':>38}{'steps above band':>18}")
    for name, case in cases.items():
        runs = [_batch(case, seed, batch_s, change_at) for seed in range(seeds)]
        alarms = [r["alarm_at_s"] for r in runs if r["alarm_at_s"] is not None]
        delays = [a - change_at for a in alarms] if case else []
        above = statistics.fmean(r["fraction_above"] for r in runs)
        results[name] = {"batches": seeds, "alarms": len(alarms), "alarm_at_s": [r["alarm_at_s"] for r in runs],
                         "delay_after_change_s": delays, "mean_fraction_of_steps_above_band": above}
        delay_text = f"{statistics.median(delays):.0f}, {max(delays):.0f}" if delays else "-"
        print(f"{name:<30}{len(alarms):>5}/{seeds:<2}{delay_text:>38}{above:>17.1%}")
    write_results(args, "innovation_alarm", {
        "scenario": str(SCENARIO.name), "batch_s": batch_s, "change_at_s": change_at, "seeds": seeds,
        "band_probability": 0.95, "on_delay_s": 180.0, "measurement_std": PLANT_NOISE, "cases": results,
        "wall_s": time.perf_counter() - start})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
