"""``linetwin surrogate train|evaluate``: train a surrogate from a case file (or a line's unit), evaluate it.

::

    linetwin surrogate train CASE.toml --samples N [--epochs E] [--out DIR] [--hidden 64,64] [--seed S]
                             [--workers W | --scheduler tcp://HOST:PORT] [--vary NAME=LOW:HIGH ...]
                             [--kind state_transition|outlet_curve]
    linetwin surrogate train --config LINE.toml --unit NAME --samples N ...
    linetwin surrogate evaluate DIR [--json]

``--scheduler``: the training data is simulated on that Dask cluster, through the Dask client campaigns use
(:func:`hil.campaign.cluster.dask_client`); without it, in ``--workers`` local processes.

Exit codes: 0 success, 2 bad input (case, config, artifact, declaration mismatch), 1 a failure while running.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from linetwin_cli.failures import OneLineParser
from linetwin_cli.simulate import case_file_error_text
from process_models.case_file import CaseFileError
from process_models.simulator import SimulationError
from process_models.surrogates.dataset import DatasetError, ModelSource
from process_models.surrogates.design import DesignError, ParameterRange
from process_models.surrogates.errors import SurrogateArtifactError

__all__ = ["cli_surrogate"]


class _UsageError(ValueError):
    pass


class _Unreachable(RuntimeError):
    """The Dask scheduler of ``--scheduler`` does not answer."""


def _parse_vary(items: Sequence[str], model: Any) -> list[ParameterRange]:
    """``NAME=LOW:HIGH`` as factors of the declared default."""
    out = []
    defaults = model.declaration.parameter_values()
    for item in items:
        try:
            name, rng = item.split("=", 1)
            low, high = (float(v) for v in rng.split(":", 1))
        except ValueError as exc:
            raise _UsageError(f"--vary {item!r}: expected NAME=LOW:HIGH (factors of the default)") from exc
        if name not in defaults:
            raise _UsageError(f"--vary {item!r}: unknown parameter '{name}'; expected one of {sorted(defaults)}")
        v = defaults[name]
        out.append(ParameterRange(name, min(v * low, v * high), max(v * low, v * high)))
    return out


def _source_from_case(path: Path) -> tuple[ModelSource, Any]:
    from process_models.case_file import load_case

    case = load_case(path)
    options = tomllib.loads(path.read_text()).get("model", {})
    return ModelSource(case.kind, options), (case.model, case.initial_state, case.inputs, case.start_s,
                                             case.until_s, case.output_interval_s)


def _source_from_line(config: Path, unit: str, until_s: float | None, interval_s: float | None
                      ) -> tuple[ModelSource, Any, list[Any]]:
    """A unit of a line config with a ``[control]`` table: its control plan's model, seeded initial state, the
    NMPC's input bounds and rate limits (zoh programmes, a knot every 10 min), the estimated parameters x (1 ± 0.2),
    over the batch (``until_s`` overrides it) on the estimator period (``interval_s`` overrides it)."""
    from controllers.plan_registry import control_plan_for_kind
    from process_models.surrogates.design import InputRange, StateRange, TrainingDesign

    try:
        raw = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _UsageError(f"{config}: cannot read line config: {exc}") from exc
    units = raw.get("units", {})
    if unit not in units:
        raise _UsageError(f"{config}: [units.{unit}] not found; units: {sorted(units)}")
    entry = units[unit]
    kind, options, control = entry.get("kind"), dict(entry.get("model", {})), dict(entry.get("control", {}))
    if not control:
        raise _UsageError(f"{config}: [units.{unit}] has no [control] table, so no operating regime to train over; "
                          "give a case file of `linetwin simulate` instead")
    tags = set(entry.get("tags", {}))
    plan = control_plan_for_kind(kind).build_plan(options, control, f"units.{unit}.control", tags)
    model = plan.model
    x0, _ = plan.initial_estimate({})
    until = float(until_s or plan.batch_duration_s)
    step = float(interval_s or plan.estimator_period_s)
    knots = max(2, int(round(until / 600.0)))
    nmpc_config = plan.nmpc.config
    inputs = tuple(InputRange(mi.name, mi.lower, mi.upper, knots, "zoh",
                              mi.max_move / nmpc_config.sample_period_s if math.isfinite(mi.max_move) else math.inf)
                   for mi in nmpc_config.inputs)
    manipulated = {mi.name for mi in nmpc_config.inputs}
    base_inputs = {k: v for k, v in model.declaration.nominal_inputs().items() if k not in manipulated}
    nominal = model.declaration.parameter_values()
    params = [ParameterRange(n, 0.8 * nominal[n], 1.2 * nominal[n]) for n in plan.estimated_parameters]
    design = TrainingDesign(base_state={k: float(v) for k, v in x0.items()}, base_inputs=base_inputs, start_s=0.0,
                            until_s=until, interval_s=step,
                            states=tuple(StateRange(n, 0.98, 1.02) for n in x0), inputs=inputs,
                            parameters=tuple(params))
    model_options = {**options, "resolution": "moments"} if kind == "crystallizer" else options
    return ModelSource(kind, model_options), model, [design]


def _train(args: argparse.Namespace) -> int:
    if args.case is not None and args.config is not None:
        raise _UsageError(f"{args.case} and --config: got both; expected a case file, or --config LINE.toml "
                          "--unit NAME")
    if args.case is None and args.config is None:
        raise _UsageError("give a case file, or --config LINE.toml --unit NAME")
    if args.config is None:
        given = [flag for flag, value in (("--unit", args.unit), ("--until", args.until),
                                          ("--interval", args.interval)) if value is not None]
        if given:
            raise _UsageError(f"{given[0]}: got it with a case file; expected it only with --config LINE.toml "
                              "(a case file states its own run)")
    if args.config is not None:
        if not args.unit:
            raise _UsageError("--config needs --unit NAME")
        source, model, (design,) = _source_from_line(args.config, args.unit, args.until, args.interval)
        if args.vary:
            design = replace(design, parameters=tuple(_parse_vary(args.vary, model)))
        design = replace(design, seed=args.seed)
    else:
        source, case = _source_from_case(args.case)
        model = case[0]
        from process_models.surrogates.pipeline import design_for_source  # torch: once the case file is good

        design = design_for_source(source.kind, *case, seed=args.seed,
                                   parameter_ranges=_parse_vary(args.vary, model), state_spread=args.state_spread)
    from process_models.surrogates.pipeline import TrainingSettings, train_surrogate

    hidden = tuple(int(h) for h in args.hidden.split(",")) if args.hidden else None
    kind = args.kind
    settings = TrainingSettings(seed=args.seed, epochs=args.epochs,
                                **({"hidden": hidden} if hidden else {}))
    if (kind or ("outlet_curve" if source.kind == "chromatography_column" else "")) == "outlet_curve":
        settings = TrainingSettings(seed=args.seed, epochs=args.epochs, hidden=hidden or (128, 128, 128),
                                    activation="silu", patience=600, learning_rate=2e-3)
    out = args.out or Path("surrogates") / (args.unit or args.case.stem)
    if args.scheduler is not None:
        from hil.campaign.cluster import dask_client

        try:
            with dask_client(args.scheduler) as client:
                artifact = train_surrogate(source, design, args.samples, out, kind=kind, settings=settings,
                                           progress=not args.quiet, executor=client.get_executor(pure=False))
        except (OSError, TimeoutError) as exc:
            if getattr(exc, "filename", None) is not None:
                raise
            raise _Unreachable(f"--scheduler {args.scheduler}: cannot reach the scheduler ({exc})") from None
    else:
        artifact = train_surrogate(source, design, args.samples, out, kind=kind, settings=settings,
                                   workers=args.workers, progress=not args.quiet)
    m = artifact.metadata["metrics"]
    print(f"{artifact.kind} surrogate of {artifact.metadata['model']['name']} written to {out} "
          f"(version {artifact.version}, {artifact.metadata['dataset']['sample_count']} runs, "
          f"training {artifact.metadata['training']['wall_s']:.1f} s, {artifact.metadata['training']['stopped']})")
    print(f"test NRMSE: max {m['test_nrmse_max']:.3%}, mean {m['test_nrmse_mean']:.3%}; "
          f"test points in envelope {m['test_in_envelope_fraction']:.1%}; report: {out / 'report.png'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from process_models.surrogates.artifact_metadata import read_artifact_metadata

    read_artifact_metadata(args.directory)  # a missing or malformed artifact is refused before torch is imported
    from process_models.surrogates.pipeline import evaluate_artifact

    artifact, ev = evaluate_artifact(args.directory)
    doc = {"path": str(args.directory), "kind": artifact.kind, "version": artifact.version,
           "model": artifact.metadata["model"]["name"], "declaration_hash": artifact.declaration_hash,
           "envelope": {"features": list(artifact.envelope.feature_names),
                        "lower": artifact.envelope.lower.tolist(), "upper": artifact.envelope.upper.tolist(),
                        "distance_threshold": artifact.envelope.threshold},
           **ev.to_json()}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{artifact.kind} surrogate {artifact.version} of {doc['model']} ({args.directory})")
    print(f"held-out test runs: {ev.runs}; in envelope: {ev.in_envelope_fraction:.1%}")
    print("test NRMSE per output:")
    for name, value in ev.test_nrmse.items():
        print(f"  {name:<40} {value:8.3%}")
    print(f"wall time for the {ev.runs} test runs: physics {ev.physics_wall_s:.3f} s, surrogate "
          f"{ev.surrogate_wall_s:.4f} s -> speed-up {ev.speedup:,.0f}x (measured now, same process)")
    print("envelope (scaled features; distance threshold "
          f"{artifact.envelope.threshold:.3g}):")
    for name, lo, hi in zip(artifact.envelope.feature_names, artifact.envelope.lower, artifact.envelope.upper,
                            strict=True):
        print(f"  {name:<40} [{lo:+.3f}, {hi:+.3f}]")
    return 0


def surrogate_parser() -> argparse.ArgumentParser:
    """The sub-commands and options of ``linetwin surrogate``."""
    parser = OneLineParser(prog="linetwin surrogate", description="Neural surrogates of the physics models.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="generate data from a model, train a surrogate, write its artifact")
    train.add_argument("case", type=Path, nargs="?", help="case file of `linetwin simulate` (TOML)")
    train.add_argument("--config", type=Path, help="line config (with --unit) instead of a case file")
    train.add_argument("--unit", help="unit of the line config")
    train.add_argument("--until", type=float, help="run length in s (--config only; default the batch duration)")
    train.add_argument("--interval", type=float,
                       help="surrogate step in s (--config only; default the estimator period)")
    train.add_argument("--samples", type=int, required=True, help="number of simulated runs")
    train.add_argument("--epochs", type=int, default=300)
    train.add_argument("--out", type=Path, help="artifact directory (default surrogates/<case or unit>)")
    train.add_argument("--hidden", help="hidden layer widths, e.g. 64,64")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--workers", type=int, help="simulation worker processes (default 2)")
    train.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="simulate the training data on this Dask cluster (as `linetwin campaign` does)")
    train.add_argument("--kind", choices=("state_transition", "outlet_curve"))
    train.add_argument("--vary", action="append", default=[], help="vary a parameter: NAME=LOW:HIGH factors")
    train.add_argument("--state-spread", type=float, default=0.01, help="initial states x (1 +- spread)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    ev = sub.add_parser("evaluate", help="test NRMSE, envelope and speed-up over the physics model")
    ev.add_argument("directory", type=Path)
    ev.add_argument("--json", action="store_true")
    return parser


def cli_surrogate(argv: Sequence[str]) -> int:
    """Entry point of ``linetwin surrogate``."""
    args = surrogate_parser().parse_args(list(argv))
    try:
        if args.command == "train" and args.samples < 5:
            raise _UsageError(f"--samples: expected >= 5 runs, got {args.samples}")
        if args.command == "train" and args.scheduler is not None:
            if not args.scheduler.startswith(("tcp://", "tls://", "inproc://")):
                raise _UsageError(f"--scheduler: got {args.scheduler!r}; expected a scheduler address "
                                  "tcp://HOST:PORT")
            if args.workers is not None:
                raise _UsageError("--workers: got it with --scheduler; expected one of them (the cluster's workers "
                                  "run the simulations)")
        return _train(args) if args.command == "train" else _evaluate(args)
    except (_UsageError, DesignError, SurrogateArtifactError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"error: simulation failed: {exc}", file=sys.stderr)
        return 1
    except _Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CaseFileError as exc:
        print(case_file_error_text(exc), file=sys.stderr)
        return 2
    except ValueError as exc:  # model option errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
