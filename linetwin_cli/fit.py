"""``linetwin fit``: fit a unit's model parameters to batches recorded in the line's historian (docs/fitting.md).

``linetwin fit CONFIG --unit U (--batch ID … | --from T --to T) --estimate P … [--method wls|ml]
[--variance-model TAG=constant|relative …] [--delay TAG=SECONDS …] [--out DIR]``

1. the batches: StartBatch/StopBatch events of the unit in the historian (:mod:`twin_server.historian.batches`);
2. per batch the recorded tags → inputs, measurements (with each instrument's delay) and the state at StartBatch,
   through the unit's control plan (:mod:`controllers.batch_fit_data`);
3. the fit: weighted least squares with the instruments' declared noise (``[control] measurement_std``) as weights
   and the residual variance estimated (``wls``), or maximum likelihood with a variance model per instrument
   (``ml``, :mod:`process_models.likelihood_fit`), starting from the parent set;
4. the diagnostics (:mod:`process_models.fit_diagnostics`): identifiability ranking, profile-likelihood intervals,
   residual statistics; a parameter the data cannot pin down ends the command (exit 1, no set stored);
5. the report (:mod:`linetwin_cli.fit_report`: JSON, summary, PNG per measured output) and a new
   :class:`process_models.parameter_sets.ParameterSet` in ``<data dir>/parameter_sets`` (parent: ``--parent``, else
   the set deployed to the unit, else its nominal set), audited as ``parameter_set_put``; its id is printed.

Progress goes to stderr, results to stdout; every refusal is one line (:mod:`linetwin_cli.failures`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linetwin_cli.common import data_dir_arg, line_data, load_or_exit, positive_arg
from linetwin_cli.failures import EXIT_FAILURE, CommandError

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from linetwin_cli.fit_run import FitOutcome
    from twin_server.config import LineConfig, UnitConfig

__all__ = ["add_fit_command", "checked_plan", "fit_batches", "run_fit"]

METHODS = ("wls", "ml")
DEFAULT_SAMPLE_INTERVAL_S = 60.0
FIT_RTOL = 1e-6
"""Integrator tolerance of the fit (relative); 1e-6 keeps the model error far below any instrument's noise."""


def add_fit_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``fit`` command."""
    p = sub.add_parser("fit", help="fit a unit's model parameters to recorded batches (docs/fitting.md)")
    p.add_argument("config", help="line config (TOML) whose historian and unit to use")
    p.add_argument("--unit", required=True, help="the unit whose model to fit")
    p.add_argument("--batch", nargs="+", default=None, metavar="ID",
                   help="batch ids (their StartBatch time, e.g. 2026-12-06T08:00:00.000Z, or a unique prefix)")
    p.add_argument("--from", dest="start", default=None, help="fit every batch started from this time (ISO 8601 or an "
                                                              "age like 2d)")
    p.add_argument("--to", dest="end", default=None, help="... up to this time (default now)")
    p.add_argument("--estimate", nargs="+", required=True, metavar="PARAMETER", help="model parameters to estimate")
    p.add_argument("--method", choices=METHODS, default="wls",
                   help="wls: weighted least squares, declared noise as weights; ml: maximum likelihood with a "
                        "variance model per instrument (default wls)")
    p.add_argument("--variance-model", action="append", default=[], metavar="TAG=constant|relative",
                   help="ml: an instrument's variance model (default constant)")
    p.add_argument("--delay", action="append", default=[], metavar="TAG=SECONDS",
                   help="an instrument's measurement delay in seconds (analyser sampling line; default 0)")
    p.add_argument("--sample-interval", type=positive_arg, default=DEFAULT_SAMPLE_INTERVAL_S, metavar="S",
                   help=f"seconds between fitted samples (default {DEFAULT_SAMPLE_INTERVAL_S:g})")
    p.add_argument("--parent", default=None, metavar="SET_ID",
                   help="the parameter set to start from and record as parent (default: the set deployed to the "
                        "unit, else its nominal set)")
    p.add_argument("--max-relative-se", type=positive_arg, default=1.0, metavar="X",
                   help="flag a parameter whose standard error exceeds X times its value (default 1)")
    p.add_argument("--no-profile", action="store_true", help="skip the profile-likelihood intervals (faster)")
    p.add_argument("--no-input-noise", action="store_true",
                   help="take the read-back inputs as exact: leave their noise out of the covariance (faster: it "
                        "costs one simulation per 60 s of batch)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default <data dir>/reports/fit-<unit>-<time>)")
    data_dir_arg(p)


def _progress(text: str) -> None:
    sys.stderr.write(f"fit: {text}\n")
    sys.stderr.flush()


def _pairs(items: list[str], flag: str, convert: Any, expected: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{flag} {item}: expected TAG={expected}")
        try:
            out[key] = convert(value)
        except ValueError:
            raise CommandError(f"{flag} {item}: got {value!r}; expected {expected}") from None
    return out


def _delay(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(text)
    return value


def _variance(text: str) -> str:
    if text not in ("constant", "relative"):
        raise ValueError(text)
    return text


def _unit(config: LineConfig, name: str) -> UnitConfig:
    try:
        return config.unit(name)
    except KeyError:
        raise CommandError(f"--unit {name}: the line '{config.name}' has no such unit; units: "
                           f"{', '.join(u.name for u in config.units)}") from None


def _plan(unit: UnitConfig) -> ControlPlan:
    from controllers.nmpc import deferred_nlp_build
    from controllers.plan_registry import control_plan_for_kind

    if not unit.control:
        raise CommandError(f"--unit {unit.name}: the unit has no [units.{unit.name}.control] table; a fit needs the "
                           "unit's control plan (which tag measures which model output, which tag is the input)")
    try:
        with deferred_nlp_build():  # a fit reads the plan's model and instruments; it never solves the NMPC
            return control_plan_for_kind(unit.kind).build_plan(unit.model, unit.control, f"units.{unit.name}.control",
                                                               {t.name for t in unit.tags})
    except (KeyError, ValueError) as exc:
        raise CommandError(f"--unit {unit.name}: cannot build the unit's model and control plan: {exc}") from None


def run_fit(args: argparse.Namespace) -> int:
    """Run ``linetwin fit`` (module docstring): 0 with a stored set, 1 when a parameter is not identifiable or the
    fit fails, 2 on bad input."""
    started = time.perf_counter()
    outcome = fit_batches(args)
    print(outcome.summary)
    if outcome.problem:
        print(f"report: {outcome.report_path}", file=sys.stderr)
        raise CommandError(outcome.problem, EXIT_FAILURE)
    _progress(f"done in {time.perf_counter() - started:.1f} s; report {outcome.report_path}")
    print(f"parameter set {outcome.set_id}")
    return 0


def fit_batches(args: argparse.Namespace) -> FitOutcome:
    """The fit ``args`` (the ``fit`` command's) ask for, its set stored unless ``problem`` says why not; progress on
    stderr. CommandError for bad input, no batch or no data."""
    from twin_server.historian.export import ExportError, parse_time

    config = load_or_exit(Path(args.config))
    unit = _unit(config, args.unit)
    if (args.batch is None) == (args.start is None):
        raise CommandError("--batch and --from: expected exactly one of them (batch ids, or a time range)")
    if args.batch is not None and args.end is not None:
        raise CommandError("--batch and --to: got both; --to bounds a --from range")
    delays = _pairs(args.delay, "--delay", _delay, "a delay in seconds >= 0")
    variance = _pairs(args.variance_model, "--variance-model", _variance, "constant or relative")
    if variance and args.method != "ml":
        raise CommandError("--variance-model: applies to --method ml only")
    data = line_data(args, config)
    try:
        lo = parse_time(args.start, "--from") if args.start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        hi = parse_time(args.end, "--to") if args.end is not None else datetime.now(UTC)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    if lo > hi:
        raise CommandError(f"--from and --to: got --from {args.start} after --to {args.end}; expected --from first")

    _progress(f"building the model and control plan of {unit.name} ({unit.kind})")
    plan = checked_plan(unit, args.estimate, {"--delay": delays, "--variance-model": variance})

    from linetwin_cli.fit_history import read_recorded_batches

    batches, experiments = read_recorded_batches(config, unit, plan, data.history, args.batch, lo, hi, delays,
                                                 args.sample_interval, _progress)
    from linetwin_cli.fit_run import FitRequest, fit_unit

    request = FitRequest(config=config, unit=unit, plan=plan, data=data, batches=batches, experiments=experiments,
                         estimate=tuple(args.estimate), method=args.method, variance_models=variance,
                         delays=delays, sample_interval_s=args.sample_interval, parent=args.parent,
                         max_relative_se=args.max_relative_se, profile=not args.no_profile,
                         out=Path(args.out) if args.out else None, input_noise=not args.no_input_noise)
    return fit_unit(request, _progress)


def checked_plan(unit: UnitConfig, estimate: list[str], tagged: dict[str, dict[str, Any]]) -> ControlPlan:
    """The unit's control plan, with ``estimate`` checked against its model's parameters and the tags of each
    option in ``tagged`` (``{"--delay": {tag: …}, …}``) against its measured tags: CommandError naming the option."""
    plan = _plan(unit)
    model = plan.model
    unknown = [p for p in estimate if p not in model.parameter_names]
    if unknown or len(set(estimate)) != len(estimate):
        raise CommandError(f"--estimate: got {unknown or estimate} (unknown or repeated); expected distinct "
                           f"parameters of the {unit.kind} model: {', '.join(model.parameter_names)}")
    measured_tags = [m.tag for m in plan.measurements]
    for flag, table in tagged.items():
        bad = sorted(set(table) - set(measured_tags))
        if bad:
            raise CommandError(f"{flag}: {bad} are not measured tags of {unit.name}; expected one of "
                               f"{', '.join(measured_tags)}")
    return plan
