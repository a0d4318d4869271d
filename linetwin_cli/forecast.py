"""``linetwin forecast CONFIG --unit U --batch ID --profile FILE``: what if batch ID had run profile FILE?

The recorded batch's start is its StartBatch event in the historian (the control loop records ``batch started in
mode …``); its id is the StartBatch time, ISO 8601 UTC to the millisecond with a ``Z``
(``2026-12-06T08:00:00.000Z``; any unique prefix selects it). The initial state is what the twin's estimator
started that batch from: the unit's measured tags as recorded at StartBatch (the last value at or before it),
through the plan's ``initial_estimate`` (seeded, saturated at the measured temperature and concentration) with the
plan's initial uncertainty of the states. The online parameters are what the twin learned of the plant over that
batch: their historized estimate and 1σ at its end (``<unit>/estimator/parameter_<p>``), else their prior. From
there the batch is forecast under the
profile (:mod:`controllers.forecasting`, same JSON encoding as the ``Forecast`` method, times from StartBatch) with a
95 % band (unscented transform), over the batch duration or ``--horizon-s``.

Output: a table of the quality quantities at the horizon's end (forecast mean and band; beside it the twin's
recorded estimate at the end of the batch where the history has one) on standard output; ``--json FILE`` writes
the whole forecast (every time point). Reads the history through the historian's public query API
(:func:`twin_server.historian.service.open_backend`: SQLite or InfluxDB).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from linetwin_cli.common import data_dir_arg
from linetwin_cli.failures import CommandError

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from controllers.forecasting import QualityForecast
    from twin_server.historian.batches import RecordedBatch
    from twin_server.historian.records import HistoryBackend

__all__ = ["add_forecast_command", "run_forecast"]

MEASURED_BEFORE_S = 600.0
"""How far before StartBatch a recorded measurement may be to count as the batch's initial one (s)."""


def add_forecast_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("forecast", help="what-if forecast of a recorded batch under another input profile, with a "
                                        "95 %% band (docs/forecast.md)")
    p.add_argument("config", help="line config (TOML) whose historian holds the batch")
    p.add_argument("--unit", required=True, help="the controlled unit (e.g. crystallizer)")
    p.add_argument("--batch", required=True,
                   help="batch id: its StartBatch time, ISO 8601 UTC (any unique prefix, e.g. 2026-12-06T08)")
    p.add_argument("--profile", required=True, type=Path,
                   help='JSON file {"time_s": [...], "<manipulated tag>": [...]} (tag units, s from StartBatch)')
    p.add_argument("--horizon-s", type=float, default=None, help="seconds to forecast (default: the batch duration)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the whole forecast as JSON")
    data_dir_arg(p)


def run_forecast(args: argparse.Namespace) -> int:
    """The ``forecast`` command: exit 0, or 2 with the option and what was expected."""
    from linetwin_cli.common import line_data, load_or_exit

    config = load_or_exit(Path(args.config))
    names = [u.name for u in config.units if u.control]
    if args.unit not in names:
        raise CommandError(f"--unit: got {args.unit!r}; expected a unit with a [control] table: "
                           + (", ".join(names) or "none in this line"))
    unit = config.unit(args.unit)
    try:
        profile_text = args.profile.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"--profile: {args.profile} is not UTF-8 text ({exc.reason}); expected a JSON "
                           "file") from None
    history = line_data(args, config).history
    if config.historian.backend == "sqlite" and not history.is_dir():
        raise CommandError(f"--data-dir: no history at {history}; expected the line's data directory")

    import numpy as np

    from controllers.forecasting import ProfileError, check_horizon, forecast_qualities, parse_profile
    from controllers.nmpc import deferred_nlp_build
    from controllers.plan_registry import control_plan_for_kind
    from twin_server.historian.batches import BatchSelectionError, find_batches, select_batches
    from twin_server.historian.service import open_backend

    backend = open_backend(config.historian, history)
    try:
        found = find_batches(backend, unit.name, 0, int(datetime.now(UTC).timestamp() * 1e6))
        batch = select_batches(found, [args.batch])[0]
    except BatchSelectionError as exc:
        raise CommandError(f"{exc} (unit '{unit.name}')") from None
    finally:
        backend.close()
    print(f"building the {unit.kind} control plan of '{unit.name}' …", file=sys.stderr)
    with deferred_nlp_build():  # a what-if forecast runs the model and the estimator; it never solves the NMPC
        plan = control_plan_for_kind(unit.kind).build_plan(unit.model, unit.control, f"units.{unit.name}.control",
                                                           {t.name for t in unit.tags})
    if not plan.forecast_outputs:
        raise CommandError(f"--unit: '{unit.name}' is a {unit.kind}, whose control plan forecasts nothing")
    try:
        profile = parse_profile(profile_text, plan)
        horizon = check_horizon(plan.batch_duration_s if args.horizon_s is None else args.horizon_s,
                                2.0 * plan.batch_duration_s)
    except ProfileError as exc:
        raise CommandError(f"--profile {args.profile}: {exc}" if "horizon_s" not in str(exc)
                           else f"--horizon-s: {exc}") from None
    backend = open_backend(config.historian, history)
    try:
        measured = _initial_measurements(backend, config.name, unit.name, plan, batch)
        recorded = _recorded_end(backend, config.name, unit.name, plan, batch)
        learned = _learned_parameters(backend, config.name, unit.name, plan, batch)
    finally:
        backend.close()
    estimator = plan.make_estimator()
    x0, std0 = plan.initial_estimate(measured)
    estimator.initialize(x0, std0)
    mean, cov = estimator.mean, estimator.covariance
    nx = plan.model.nx
    parameters: dict[str, dict[str, float | str]] = {}
    for i, name in enumerate(plan.estimated_parameters):
        if name in learned:  # what the twin learned of the plant over batch Y: its batch-end estimate and 1σ
            value, std = learned[name]
            cov[nx + i, :] = 0.0
            cov[:, nx + i] = 0.0
            mean[nx + i], cov[nx + i, nx + i] = value, std**2
        parameters[name] = {"value": float(mean[nx + i]), "std": float(np.sqrt(cov[nx + i, nx + i])),
                            "source": "batch_end_estimate" if name in learned else "prior"}
    print(f"batch {batch.id}: forecasting {horizon:g} s under {args.profile} …", file=sys.stderr)
    result = forecast_qualities(plan, mean, cov, 0.0, horizon, profile.programmes(0.0), "profile",
                                plan.model.declaration.parameter_values(), estimator.parameter_bounds)
    _print_table(plan, result, recorded, batch, horizon, parameters)
    if args.json_out is not None:
        payload = {"unit": unit.name, "batch": batch.id, "profile": str(args.profile),
                   "initial_measurements_si": measured, "online_parameters": parameters,
                   "recorded_end_estimates": recorded, **result.as_json()}
        args.json_out.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"written {args.json_out}", file=sys.stderr)
    return 0


def _last_value(backend: HistoryBackend, key: str, start_us: int, end_us: int) -> float | None:
    raw = backend.read_raw(key, start_us, end_us)
    good = [v for v, st in zip(raw.values, raw.statuses, strict=True)
            if v is not None and (st & 0x80000000) == 0 and math.isfinite(float(v))]
    return float(good[-1]) if good else None


def _initial_measurements(backend: HistoryBackend, line: str, unit: str, plan: ControlPlan,
                          batch: RecordedBatch) -> dict[str, float]:
    """Each measured output (SI) as recorded at StartBatch: the last usable value at or shortly before it."""
    out: dict[str, float] = {}
    missing: list[str] = []
    for m in plan.measurements:
        value = _last_value(backend, f"{line}.{unit}.{m.tag}", batch.start_us - int(MEASURED_BEFORE_S * 1e6),
                            batch.start_us + 1_000_000)
        if value is None:
            missing.append(m.tag)
        else:
            out[m.output] = m.to_model(value)
    if missing:
        raise CommandError(f"--batch {batch.id}: no recorded usable value of {missing} in the {MEASURED_BEFORE_S:g} s "
                           f"before StartBatch; expected the unit's measured tags to be historized")
    return out


def _recorded_end(backend: HistoryBackend, line: str, unit: str, plan: ControlPlan,
                  batch: RecordedBatch) -> dict[str, float]:
    """The twin's historized estimate of each forecast quantity at the end of the recorded batch (where there is
    one): what the batch actually did, as the twin saw it."""
    end = batch.end_us  # a batch still running: now
    out: dict[str, float] = {}
    for name in plan.forecast_outputs:
        value = _last_value(backend, f"{line}.{unit}.control.estimated_{name}", batch.start_us, end)
        if value is not None:
            out[name] = value
    return out


def _learned_parameters(backend: HistoryBackend, line: str, unit: str, plan: ControlPlan,
                        batch: RecordedBatch) -> dict[str, tuple[float, float]]:
    """Each online parameter's historized estimate and 1σ at the end of the batch (the estimator object's
    ``parameter_<p>`` / ``parameter_<p>_std``), where the history has both."""
    end = batch.end_us  # a batch still running: now
    out: dict[str, tuple[float, float]] = {}
    for name in plan.estimated_parameters:
        key = f"{line}.{unit}.estimator.parameter_{name}"
        value, std = _last_value(backend, key, batch.start_us, end), _last_value(backend, f"{key}_std",
                                                                                  batch.start_us, end)
        if value is not None and std is not None and std >= 0:
            out[name] = (value, std)
    return out


def _print_table(plan: ControlPlan, result: QualityForecast, recorded: dict[str, float], batch: RecordedBatch,
                 horizon: float, parameters: dict[str, dict[str, float | str]]) -> None:
    from process_models.engineering_units import UNITS_BY_CODE

    print(f"what-if forecast of batch {batch.id} at t = {horizon:g} s ({result.sigma_points} sigma points, "
          f"{result.band_text})")
    for name, p in parameters.items():
        print(f"  {name} = {p['value']:.4g} ± {p['std']:.2g} (1σ, {p['source']})")
    print(f"{'quantity':<16}{'unit':<6}{'forecast':>12}{'95 % band':>26}{'recorded (twin)':>18}")
    for name in plan.forecast_outputs:
        unit = UNITS_BY_CODE[result.unit_codes[name]].symbol
        band = f"[{result.low[name][-1]:.4g}, {result.high[name][-1]:.4g}]"
        seen = f"{recorded[name]:.4g}" if name in recorded else "-"
        print(f"{name:<16}{unit:<6}{result.mean[name][-1]:>12.4g}{band:>26}{seen:>18}")
