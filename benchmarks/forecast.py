"""What-if forecasts: how fast a forecast of a whole 2 h batch is, and whether its 95 % band is calibrated.

1. **Speed.** The pilot line's crystallizer plan; a batch started in lockstep (the nominal linear-cooling scenario)
   and, at its first estimator tick, the twin's forecast (:func:`controllers.forecasting.prepare_forecast`, what the
   ``Forecast`` method runs: unscented transform over states + online parameters) of the whole batch (horizon
   7,200 s, 121 points) under the recipe, repeated; reported as median / max wall time and as a ratio against the
   reference: one simulation of the nominal model over the same grid in the same process. And the ``Forecast``
   method's round trip as a client sees it: the pilot line's crystallizer (HIL physics plant at 400×, the twin's
   clock scaled to match) on loopback, a batch started, an anonymous viewer calling ``Forecast("", 7200)``.
2. **Calibration.** Seeded stepped batches (:mod:`hil.forecast_calibration`): per seed a plant with growth and
   nucleation constants × log-uniform factors in [0.8, 1.25] and its own sensor noise, forecast at
   ``--forecast-at-s`` to batch end; coverage (realised batch-end d43 inside the band; target ≥ 90 %), the band's
   width (µm and relative to d43) and the RMS normalised error (1: calibrated). ``--solubility-offset X``: plants with
   a solubility offset uniform in ±X kg/kg too; ``--online-solubility``: the twin then also estimates the offset
   online (``solubility_coefficient_0`` in ``online_parameters``, bounds ±0.004 kg/kg, prior 1σ 0.002 kg/kg).
3. **Calibrated band.** ``--train-seeds N`` more batches (seeds 1000.., plants drawn the same way, never the test
   seeds) teach the band's scale k (RMS of their normalised errors, :meth:`hil.forecast_calibration.Calibration.
   learn`): what a unit's ``forecast_band_scale = k`` / ``forecast_band_batches = N`` would be set to from its past
   batches. The test batches' figures are then reported again with that band (same forecast mean, σ × k, ± Student's
   t with N degrees of freedom: exactly what the twin forecasts with those keys set).

Usage: ``.venv/bin/python benchmarks/forecast.py [--seeds 20] [--forecast-at-s 3600] [--repeats 20]``; ``--smoke``:
one seed, three repeats, 20-minute batches forecast at 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from asyncua import Client, ua  # noqa: E402
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from controllers.batch_control import BatchControl  # noqa: E402
from controllers.forecasting import FORECAST_POINTS, prepare_forecast, recipe_programmes  # noqa: E402
from hil.campaign.strategies import ONLINE_SOLUBILITY_CONTROL  # noqa: E402
from hil.forecast_calibration import calibrate  # noqa: E402
from hil.scenario import Scenario, load_scenario  # noqa: E402
from hil.stepped_batch import run_stepped_batch  # noqa: E402
from linetwin_cli.bench_launcher import build_bench, config_for_bench  # noqa: E402
from linetwin_examples import example_path  # noqa: E402
from process_models.simulator import simulate  # noqa: E402
from tests.ports import free_tcp_port  # noqa: E402
from tests.security_helpers import OPERATOR, add_operator  # noqa: E402
from twin_server.config import load_line_config  # noqa: E402
from twin_server.server import TwinServer  # noqa: E402

SCENARIO = "scenarios/nominal_linear_cooling.toml"
TRAIN_SEED_BASE = 1000
"""Training batches' seeds start here: apart from the test seeds 0..N-1."""
SMOKE_BATCH_S = 1200.0
"""A smoke run's batches: 20 minutes (the forecast at 10 minutes), not the scenario's 2 h: the code paths in
seconds, not a figure."""


def sized(scenario: Scenario, batch_s: float | None) -> Scenario:
    """``scenario`` with ``batch_s``-second batches (None: as it is)."""
    if batch_s is None:
        return scenario
    return dataclasses.replace(scenario, batch_duration_s=batch_s, control={**scenario.control,
                                                                          "batch_duration_s": batch_s})


def speed(repeats: int, batch_s: float | None = None) -> dict[str, float]:
    scenario = sized(load_scenario(example_path(SCENARIO)), batch_s)
    timings: list[float] = []
    reference: list[float] = []

    def observe(t: float, core: BatchControl) -> None:
        if timings:
            return
        horizon = core.plan.batch_duration_s
        for _ in range(repeats):
            started = time.perf_counter()
            prepare_forecast(core, None, horizon)()
            timings.append(time.perf_counter() - started)
        est = core.estimate
        assert est is not None
        grid = est.time_s + np.linspace(0.0, horizon, FORECAST_POINTS)
        for _ in range(repeats):
            started = time.perf_counter()
            simulate(core.plan.model, dict(est.states), grid, recipe_programmes(core.plan))
            reference.append(time.perf_counter() - started)

    run_stepped_batch(scenario.with_strategy("linear_cooling"), on_tick=observe)
    median, ref = statistics.median(timings), statistics.median(reference)
    return {"horizon_s": scenario.batch_duration_s, "points": FORECAST_POINTS, "repeats": repeats, "median_s": median,
            "max_s": max(timings), "reference_simulation_median_s": ref, "ratio_to_one_simulation": median / ref}


async def method_round_trip(repeats: int) -> dict[str, float]:
    """Wall seconds of ``Forecast("", 7200)`` called by an anonymous viewer on a live twin, batch running."""
    data = Path(os.environ["LINETWIN_DATA_DIR"])
    add_operator(data / "security")
    base = load_line_config(example_path("pilot_line.toml"))
    units = tuple(dataclasses.replace(u, plant={"plant_model": "physics"}, control={**u.control, "time_scale": 400.0})
                  for u in base.units if u.name == "crystallizer")
    config = dataclasses.replace(base, units=units, scan_period_s=0.05)
    bench = build_bench(config, speed=400.0, free_ports=True, step_s=1.0)
    await bench.start()
    twin = TwinServer(config_for_bench(config, bench), endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/",
                      data_dir=data)
    timings: list[float] = []
    try:
        await twin.start()
        adapter = twin.runtime.adapters["crystallizer"] if twin.runtime else None
        while adapter is None or not adapter.last_samples or \
                not all(s.quality.is_good for s in adapter.last_samples.values()):
            await asyncio.sleep(0.05)
        operator = Client(twin.endpoint)
        operator.set_user(OPERATOR.user)
        operator.set_password(OPERATOR.password)
        async with operator, Client(twin.endpoint) as viewer:
            idx = await viewer.get_namespace_index(config.server.namespace)
            unit = f"{config.name}.crystallizer"
            await operator.get_node(ua.NodeId(f"{unit}.control", idx)).call_method(
                ua.NodeId(f"{unit}.control.StartBatch", idx))
            forecast = viewer.get_node(ua.NodeId(f"{unit}.forecast", idx))
            method = ua.NodeId(f"{unit}.forecast.Forecast", idx)
            for _ in range(repeats):
                started = time.perf_counter()
                await forecast.call_method(method, ua.Variant("", ua.VariantType.String),
                                           ua.Variant(7200.0, ua.VariantType.Double))
                timings.append(time.perf_counter() - started)
    finally:
        await twin.stop()
        await bench.stop()
    return {"repeats": repeats, "median_s": statistics.median(timings), "max_s": max(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    parser.add_argument("--seeds", type=int, default=20, help="calibration batches (seeds 0..N-1)")
    parser.add_argument("--forecast-at-s", type=float, default=3600.0, help="batch time the forecast is made at")
    parser.add_argument("--spread", type=float, default=1.25, help="plant kinetics factors in [1/spread, spread]")
    parser.add_argument("--repeats", type=int, default=20, help="timed forecasts")
    parser.add_argument("--solubility-offset", type=float, default=0.0, help="plant solubility offsets in ±X kg/kg")
    parser.add_argument("--online-solubility", action="store_true",
                        help="the twin estimates the solubility offset online")
    parser.add_argument("--skip-speed", action="store_true", help="calibration only")
    parser.add_argument("--train-seeds", type=int, default=20,
                        help="batches (seeds 1000..) the band's scale is learnt from (0: no calibrated band)")
    args = parse_args(parser)
    seeds = 1 if args.smoke else args.seeds
    repeats = 3 if args.smoke else args.repeats
    batch_s = SMOKE_BATCH_S if args.smoke else None
    forecast_at_s = SMOKE_BATCH_S / 2 if args.smoke else args.forecast_at_s
    timing = {} if args.skip_speed else speed(repeats, batch_s)
    if timing:
        print(f"forecast of a 2 h batch ({FORECAST_POINTS} points, unscented): "
              f"median {timing['median_s'] * 1e3:.0f} ms, "
              f"max {timing['max_s'] * 1e3:.0f} ms = {timing['ratio_to_one_simulation']:.1f} x one simulation")
    if timing:
        timing["method_round_trip"] = asyncio.run(method_round_trip(repeats))
        trip = timing["method_round_trip"]
        print(f"Forecast method round trip (anonymous viewer, loopback, batch running): median "
              f"{trip['median_s'] * 1e3:.0f} ms, max {trip['max_s'] * 1e3:.0f} ms")
    started = time.perf_counter()
    control = ONLINE_SOLUBILITY_CONTROL if args.online_solubility else {}
    scenario = sized(load_scenario(example_path(SCENARIO)), batch_s)
    cal = calibrate(scenario, list(range(seeds)), forecast_at_s, args.spread, args.solubility_offset, control)
    for b in cal.batches:
        print(f"seed {b.seed:3d}: growth x{b.growth_rate_factor:.3f} nucleation x{b.nucleation_rate_factor:.3f} "
              f"solubility {b.solubility_offset_kg_per_kg:+.4f}: "
              f"band [{b.forecast_low_um:.1f}, {b.forecast_high_um:.1f}] um, realised {b.realised_um:.1f} um"
              f"{'' if b.inside else '  OUTSIDE'}")
    print(f"coverage {cal.coverage:.0%} of {len(cal.batches)} batches; mean band width {cal.mean_width_um:.1f} um "
          f"({cal.mean_relative_width:.1%} of d43); RMS normalised error {cal.rms_normalised_error:.2f}; "
          f"{time.perf_counter() - started:.0f} s")
    train_seeds = args.train_seeds
    calibrated: dict[str, object] = {}
    if train_seeds:
        # a smoke run learns from its one test batch: the code path in seconds, not a figure
        train = cal if args.smoke else calibrate(
            scenario, list(range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + train_seeds)), forecast_at_s, args.spread,
            args.solubility_offset, control)
        band = train.learn()
        test = cal.with_band(band)
        print(f"learnt from {band.batches} training batches: forecast_band_scale = {band.scale:.3f} "
              f"(forecast_band_batches = {band.batches}; band ± {band.quantile:.3f} σ)")
        print(f"calibrated band on the test batches: coverage {test.coverage:.0%} of {len(test.batches)}; mean band "
              f"width {test.mean_width_um:.1f} um ({test.mean_relative_width:.1%} of d43); RMS normalised error "
              f"{test.rms_normalised_error:.2f}; largest |error| "
              f"{max(abs(b.normalised_error) for b in test.batches):.2f} σ")
        calibrated = {"train_seeds": [b.seed for b in train.batches],
                      "forecast_band_scale": band.scale, "forecast_band_batches": band.batches,
                      "quantile": band.quantile, "train_rms_normalised_error_propagated": band.scale,
                      "coverage": test.coverage, "mean_width_um": test.mean_width_um,
                      "mean_relative_width": test.mean_relative_width,
                      "rms_normalised_error": test.rms_normalised_error,
                      "max_abs_normalised_error": max(abs(b.normalised_error) for b in test.batches),
                      "train_batches": [{"seed": b.seed, "growth_rate_factor": b.growth_rate_factor,
                                         "nucleation_rate_factor": b.nucleation_rate_factor,
                                         "normalised_error": b.propagated_normalised_error} for b in train.batches]}
    name = "forecast" + ("_solubility" if args.solubility_offset else "") + \
        ("_online" if args.online_solubility else "")
    write_results(args, name, {
        "machine": platform.platform(), "speed": timing,
        "calibration": {"scenario": SCENARIO, "forecast_at_s": forecast_at_s, "spread": args.spread,
                        "solubility_offset_kg_per_kg": args.solubility_offset,
                        "online_solubility": args.online_solubility,
                        "seeds": seeds, "coverage": cal.coverage, "mean_width_um": cal.mean_width_um,
                        "rms_normalised_error": cal.rms_normalised_error,
                        "mean_relative_width": cal.mean_relative_width,
                        "batches": [{"seed": b.seed, "growth_rate_factor": b.growth_rate_factor,
                                     "nucleation_rate_factor": b.nucleation_rate_factor,
                                     "solubility_offset_kg_per_kg": b.solubility_offset_kg_per_kg,
                                     "low_um": b.forecast_low_um, "mean_um": b.forecast_mean_um,
                                     "high_um": b.forecast_high_um, "realised_um": b.realised_um,
                                     "inside": b.inside, "normalised_error": b.normalised_error}
                                    for b in cal.batches]},
        "calibrated": calibrated})


if __name__ == "__main__":
    main()
