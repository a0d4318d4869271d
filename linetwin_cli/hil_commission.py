"""``linetwin hil commission SCENARIO``: commissioning on the HIL bench over real sockets (issue 17 item 6).

SCENARIO is the batch on the fitted set: a scenario with a ``[fit]`` table (:mod:`hil.scenario_fit`) naming the
scenario of the batch it is fitted from (``fit.batch_of``, same line, unit and plant). The command does what an
engineer does at commissioning, each batch on a fresh bench and the twin restarted on one data dir (its historian,
parameter sets, deployment history and audit trail carry over; :mod:`linetwin_cli.hil_batch`):

1. checks both scenarios and the fit's parameters and tags against the unit's model, before any batch runs;
2. **recipe**: batch 1's scenario under linear cooling, the KPI table's reference (``--no-recipe`` skips it);
3. **batch 1**: batch 1's scenario (the shipped pair: the NMPC on the nominal set), recorded by the twin's historian;
4. finds batch 1 in the history by its StartBatch/StopBatch events (the one batch started while its twin ran; a
   bench at N× real time records it N times shorter, :mod:`twin_server.historian.batches` reads it back in plant
   seconds);
5. ``linetwin fit`` on it with the ``[fit]`` table's options (the fit command's own code, its report in
   ``REPORT_DIR/fit``); the set is stored in the data dir;
6. **batch 2**: SCENARIO on that set, applied by an engineer over OPC UA (``ApplyParameterSet``, audited) before
   StartBatch; the batch's report names the set the twin ran it on (``model.parameter_set`` at StartBatch), which
   must be the fitted one;
7. the KPI table (d43 error, number CV, fines, yield per batch) and the fitted values with their 95 % intervals on
   stdout, ``commissioning.json`` in the report dir.

Progress goes to stderr. Exit 0 when the loop closed, 1 when a batch or the fit failed (a parameter the batch
cannot identify, a set refused), 2 for bad input. Roles: the command runs its own bench users in the data dir's
users file (``hil_operator``: mode, target, StartBatch; ``hil_engineer``: ApplyParameterSet); the twin audits
every call.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linetwin_cli.common import endpoint_free, port_arg, positive_arg
from linetwin_cli.failures import EXIT_FAILURE, CommandError, bench_file_error_text

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from hil.scenario import Scenario
    from twin_server.config import LineConfig
    from twin_server.data_dir import LineDataDir
    from twin_server.historian.batches import RecordedBatch

__all__ = ["add_commission_command", "run_hil_commission"]

SUMMARY_FILE = "commissioning.json"
KPIS = ("final_d43_um", "d43_error_percent", "final_cv", "fines_fraction", "yield", "setpoints_written",
        "fallbacks_used", "solves")


def add_commission_command(hil_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``hil commission`` under the ``hil`` command group."""
    p = hil_sub.add_parser("commission", help="commissioning over real sockets: batch on the nominal set, fit it, "
                                              "apply the fitted set, batch on it; KPI table")
    p.add_argument("scenario", help="the scenario of the batch on the fitted set, with a [fit] table (docs/hil.md, "
                                    "e.g. examples/scenarios/commissioning_2_fitted_mpc.toml)")
    p.add_argument("--speed", type=positive_arg, metavar="N", default=None,
                   help="plant seconds per wall-clock second of every batch (default: the scenarios')")
    p.add_argument("--report-dir", default=None, metavar="DIR",
                   help="batch reports, fit report and commissioning.json (default hil_reports/<scenario name>)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="the twin's data directory for all batches (default <report dir>/twin)")
    p.add_argument("--no-recipe", action="store_true", help="skip the linear-cooling reference batch")
    p.add_argument("--port", type=port_arg, metavar="P", default=4840, help="OPC UA port of the twin (default 4840)")


def _progress(text: str) -> None:
    print(f"[commission] {text}", file=sys.stderr, flush=True)


async def run_hil_commission(args: argparse.Namespace) -> int:
    """Run ``linetwin hil commission`` (module docstring)."""
    from hil.scenario import ScenarioError, load_scenario
    from hil.scenario_runner import ScenarioRunError
    from linetwin_cli.bench_launcher import scenario_line_config
    from twin_server.config import ConfigError
    from twin_server.data_dir import line_data_dir
    from twin_server.line_build import build_line_or_raise
    from twin_server.server import endpoint_with_port

    try:
        fitted = load_scenario(args.scenario)
        if fitted.fit is None:
            raise CommandError(f"{fitted.path}: fit: got no [fit] table; expected the scenario of the batch on the "
                               "fitted set, whose [fit] names the batch to fit (fit.batch_of) and the parameters")
        nominal = load_scenario(fitted.fit.batch_of)
        if args.speed is not None:
            fitted, nominal = fitted.with_speed(args.speed), nominal.with_speed(args.speed)
        config = scenario_line_config(fitted)
        plans = build_line_or_raise(config)
    except (ScenarioError, ConfigError) as exc:
        print(bench_file_error_text(exc), file=sys.stderr)
        return 2
    _check_fit(fitted, config)
    reports = Path(args.report_dir) if args.report_dir else Path("hil_reports") / fitted.name
    data = line_data_dir(config, args.data_dir or reports / "twin")
    endpoint_free(endpoint_with_port(config.server.endpoint, args.port), "choose another port with --port")
    reports.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    try:
        if not args.no_recipe:
            recipe = nominal.with_strategy("linear_cooling").with_parameter_set(None)
            rows["recipe"] = await _batch("recipe (linear cooling)", recipe, config, plans, data, args.port,
                                          reports / "recipe.json")
        rows["nominal_nmpc"] = await _batch("batch 1", nominal, config, plans, data, args.port,
                                            reports / "batch_1.json")
        batch1 = _recorded_batch(config, data, rows["nominal_nmpc"], fitted.unit)
        rows["nominal_nmpc"]["batch_id"] = batch1.id
        set_id, fit_report = _fit(fitted, batch1, data, reports / "fit")
        rows["fitted_nmpc"] = await _batch("batch 2", fitted.with_parameter_set(set_id), config, plans, data,
                                           args.port, reports / "batch_2.json")
    except ScenarioRunError as exc:
        raise CommandError(f"commissioning '{fitted.name}' failed: {exc}", EXIT_FAILURE) from None
    ran_on = rows["fitted_nmpc"]["parameter_set"]
    if ran_on != set_id:
        raise CommandError(f"batch 2 ran on parameter set {ran_on!r} (model.parameter_set at StartBatch); expected "
                           f"the fitted set {set_id}", EXIT_FAILURE)
    rows["fitted_nmpc"]["batch_id"] = _recorded_batch(config, data, rows["fitted_nmpc"], fitted.unit).id
    for row in rows.values():
        del row["socket_batch"]
    summary = {
        "command": "linetwin hil commission", "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": str(fitted.path), "batch_of": str(nominal.path), "speed": fitted.speed,
        "target_d43_um": fitted.target_d43_um, "plant": dict(fitted.plant), "data_dir": str(data.root),
        "parameter_set": set_id, "fit_report": str(fit_report), "batches": rows,
        "estimates": json.loads(fit_report.read_text(encoding="utf-8"))["estimates"],
    }
    (reports / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(kpi_table(summary))
    print(f"summary {reports / SUMMARY_FILE}; twin data dir {data.root}")
    return 0


def _check_fit(scenario: Scenario, config: LineConfig) -> ControlPlan:
    """The ``[fit]`` table against the unit's model (parameters) and tags, before any batch runs."""
    from linetwin_cli.fit import checked_plan

    assert scenario.fit is not None
    try:
        return checked_plan(config.unit(scenario.unit), list(scenario.fit.estimate),
                            {"--delay": dict(scenario.fit.delay_s)})
    except CommandError as exc:
        raise CommandError(f"{scenario.path}: fit: {exc}") from None


async def _batch(label: str, scenario: Scenario, config: LineConfig, plans: dict[str, ControlPlan],
                 data: LineDataDir, port: int, report: Path) -> dict[str, Any]:
    """One socket batch (``scenario.parameter_set`` resolved in ``data``); its KPI row."""
    from linetwin_cli.hil_batch import resolve_parameter_set, run_socket_batch

    if scenario.parameter_set is not None:
        scenario = scenario.with_parameter_set(
            resolve_parameter_set(scenario, config.unit(scenario.unit), plans[scenario.unit], data))
    _progress(f"{label}: {scenario.name}, {scenario.strategy}" +
              (f" on parameter set {scenario.parameter_set}" if scenario.parameter_set else ""))
    batch = await run_socket_batch(scenario, config, plans, data, port, report, report.with_suffix(".png"),
                                   announce=sys.stderr)
    k = batch.report.kpis
    _progress(f"{label}: final d43 {k['final_d43_um']:.1f} µm ({k['d43_error_percent']:.2f} % off), CV "
              f"{k['final_cv']:.3f}; report {report}")
    return {"scenario": scenario.name, "strategy": scenario.strategy, "report": str(report),
            "parameter_set": batch.report.run.get("parameter_set"), **{name: k.get(name) for name in KPIS},
            "socket_batch": batch}


def _recorded_batch(config: LineConfig, data: LineDataDir, row: dict[str, Any], unit: str) -> RecordedBatch:
    """The batch the twin recorded while it ran ``row``'s batch (by its StartBatch/StopBatch events)."""
    from linetwin_cli.hil_batch import recorded_batches

    found = recorded_batches(config, data, row["socket_batch"], unit)
    if len(found) != 1:
        raise CommandError(f"{data.history}: {len(found)} complete batches of unit '{unit}' recorded while "
                           f"'{row['scenario']}' ran; expected exactly one (StartBatch and StopBatch events; is the "
                           "line's historian on?)", EXIT_FAILURE)
    _progress(f"recorded batch {found[0].id}: {found[0].plant_duration_s:.0f} plant s "
              f"({found[0].time_scale:.0f} plant s per recorded s)")
    return found[0]


def _fit(scenario: Scenario, batch: RecordedBatch, data: LineDataDir, out: Path) -> tuple[str, Path]:
    """``linetwin fit`` on ``batch`` with the scenario's ``[fit]`` options; (stored set id, fit report JSON)."""
    from linetwin_cli.fit import add_fit_command, fit_batches

    fit = scenario.fit
    assert fit is not None
    argv = ["fit", str(scenario.line_path), "--unit", scenario.unit, "--batch", batch.id, "--estimate",
            *fit.estimate, "--method", fit.method, "--sample-interval", f"{fit.sample_interval_s:g}",
            "--data-dir", str(data.root), "--out", str(out)]
    argv += [a for tag, delay in fit.delay_s.items() for a in ("--delay", f"{tag}={delay:g}")]
    if not fit.profile:
        argv.append("--no-profile")
    parser = argparse.ArgumentParser(prog="linetwin")
    add_fit_command(parser.add_subparsers(dest="command"))
    _progress("linetwin " + " ".join(argv[:1] + argv[1:]))
    outcome = fit_batches(parser.parse_args(argv))
    print(outcome.summary, file=sys.stderr)
    if outcome.problem or outcome.set_id is None:
        raise CommandError(f"fit of batch {batch.id}: {outcome.problem} (report {outcome.report_path}); no set to "
                           "apply", EXIT_FAILURE)
    _progress(f"parameter set {outcome.set_id} stored in {data.parameter_sets}")
    return outcome.set_id, outcome.report_path


def kpi_table(summary: dict[str, Any]) -> str:
    """The KPI rows (recipe, NMPC on the nominal set, NMPC on the fitted set) and the fitted values."""
    names = {"recipe": "recipe (linear cooling)", "nominal_nmpc": "NMPC, nominal set",
             "fitted_nmpc": "NMPC, fitted set"}
    lines = [f"commissioning on {Path(summary['scenario']).name} at {summary['speed']:g}x, target "
             f"{summary['target_d43_um']:g} µm",
             f"{'batch':<26}{'parameter set':<18}{'d43 µm':>8}{'d43 error':>11}{'CV':>7}{'fines':>8}{'yield':>8}"]
    for key, row in summary["batches"].items():
        fines = row["fines_fraction"]
        lines.append(f"{names[key]:<26}{(row['parameter_set'] or '-'):<18}{row['final_d43_um']:>8.1f}"
                     f"{row['d43_error_percent']:>10.2f}%{row['final_cv']:>7.3f}"
                     f"{'n/a' if fines is None else format(fines, '.3f'):>8}{row['yield']:>8.3f}")
    lines.append(f"fitted set {summary['parameter_set']} from batch {summary['batches']['nominal_nmpc']['batch_id']}:")
    for name, e in summary["estimates"].items():
        lo, hi = e["linearised_95"]
        lines.append(f"  {name:<36} {e['parent_value']:>11.4g} -> {e['value']:<11.5g} 95 % [{lo:.5g}, {hi:.5g}]")
    return "\n".join(lines)
