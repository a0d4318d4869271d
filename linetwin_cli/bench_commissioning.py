"""Commissioning on the bench: a unit's NMPC batch recorded into a line's historian, ``linetwin fit`` on it, the
fitted set applied, the next NMPC batch run on it — the workflow shared by ``benchmarks/commissioning.py`` (one
mismatched plant, KPI table) and the campaign strategy ``mpc_fitted`` (:mod:`linetwin_cli.fitted_strategy`, every
sampled plant of a campaign).

1. **batch 1**: the scenario's NMPC on the nominal set, recorded into ``<data dir>/history`` (SQLite) by the bench
   recorder (:func:`linetwin_cli.bench_history.record_stepped_batches`), exactly as the twin's historian keeps a
   batch;
2. **fit**: ``linetwin fit`` on batch 1 in this process, as a user runs it (:func:`fit_recorded_batch`: maximum
   likelihood by default, the analysers' delays declared), which stores the fitted set in the data dir's
   ``parameter_sets`` and writes its report;
3. **apply**: the set deployed to the unit through the twin's deployment (:func:`apply_parameter_set`:
   ``request_apply`` with no batch running, the checks of ``ApplyParameterSet``: stored, verified, same declaration);
4. **batch 2**: the NMPC on the deployed set (``run_stepped_batch(..., parameter_set=(id, values))``), recorded
   :data:`linetwin_cli.bench_history.BATCH_GAP_S` after batch 1 (a later fit's parent defaults to the deployed set).

Everything is written under the data directory given (a temporary one on the bench); nothing else is touched.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hil.scenario import Scenario
from hil.scenario_report import ScenarioReport

__all__ = ["ANALYSERS", "ESTIMATED", "FIRST_START", "Commissioning", "CommissioningError", "apply_parameter_set",
           "commission_on_bench", "fit_recorded_batch"]

ESTIMATED = ("growth_rate_constant", "secondary_nucleation_rate_constant", "solubility_coefficient_0")
"""What commissioning fits by default: the growth and secondary nucleation rate constants and the solubility
constant (the solubility polynomial's ``a0``, kg/kg water), the parameters a KDP plant is most uncertain in."""
ANALYSERS = ("solute_concentration", "chord_count_rate", "mean_chord_length")
"""The crystallizer's analyser tags (ATR-FTIR concentration, FBRM chord count and mean chord length)."""
FIRST_START = datetime(2026, 12, 1, 8, tzinfo=UTC)
"""StartBatch of the first recorded batch (any aware UTC time: the bench's history is its own)."""


class CommissioningError(RuntimeError):
    """A step of commissioning failed (the fit refused or failed, the set could not be applied); the message says
    which step and what ``linetwin fit`` reported."""


@dataclass(frozen=True)
class Commissioning:
    """What commissioning did: batch 1 (the NMPC on the nominal set) and its report, the fit's report (the
    ``fit_report.json`` of ``linetwin fit``), the deployed set's id and values (model units), batch 2 (the NMPC on
    it) and its report, and the fit's wall time s."""

    nominal_batch: str
    nominal_report: ScenarioReport
    fit_report: dict[str, Any]
    parameter_set: str
    values: Mapping[str, float]
    fitted_batch: str
    fitted_report: ScenarioReport
    fit_wall_s: float

    def estimates(self) -> dict[str, dict[str, Any]]:
        """Per fitted parameter: ``value``, ``standard_error``, ``linearised_95``, ``profile_95`` (or None), as in
        the fit report (model units)."""
        return dict(self.fit_report["estimates"])


def fit_recorded_batch(line_path: Path, unit: str, data_dir: Path, batch: str, *,
                       estimate: Sequence[str] = ESTIMATED, method: str = "ml",
                       delays: Mapping[str, float] | None = None, profile: bool = False,
                       quiet: bool = False) -> tuple[str, dict[str, Any]]:
    """Run ``linetwin fit`` on ``batch`` of ``unit`` in ``data_dir``'s history (in this process, with the options a
    user gives: ``--estimate``, ``--method``, ``--delay TAG=S`` per analyser, ``--no-profile`` unless ``profile``),
    report into ``<data_dir>/fit-report``; returns the stored set's id and the fit report. ``quiet``: the command's
    progress (stderr) is captured, and its last line (why it failed) quoted in the error if it fails.

    Raises:
        CommissioningError: ``linetwin fit`` exited non-zero (bad option, no batch, a parameter the batch cannot
            identify, the fit failed): its exit status and last message.
    """
    import json

    from linetwin_cli.main import main as linetwin

    out_dir = data_dir / "fit-report"
    args = ["fit", str(line_path), "--unit", unit, "--batch", batch, "--estimate", *estimate, "--method", method,
            "--data-dir", str(data_dir), "--out", str(out_dir)]
    args += [a for tag, delay in (delays or {}).items() for a in ("--delay", f"{tag}={delay:g}")]
    if not profile:
        args.append("--no-profile")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), (contextlib.redirect_stderr(err) if quiet else contextlib.nullcontext()):
        code = linetwin(args)
    if code != 0:
        said = [line for line in err.getvalue().splitlines() if line.strip()][-1:] if quiet else []
        raise CommissioningError(f"linetwin fit on batch {batch} exited {code}" + (f": {said[0]}" if said else ""))
    set_id = out.getvalue().strip().splitlines()[-1].removeprefix("parameter set ").strip()
    return set_id, json.loads((out_dir / "fit_report.json").read_text())


def apply_parameter_set(line_path: Path, unit_name: str, data_dir: Path, set_id: str,
                        reason: str) -> tuple[str, dict[str, float]]:
    """Deploy ``set_id`` to the unit as ``ApplyParameterSet`` does with no batch running; (id, values) deployed.

    Raises:
        CommissioningError: the deployment refused the set (not stored, does not verify, another declaration).
    """
    from controllers.plan_registry import control_plan_for_kind
    from twin_server.config import load_line_config
    from twin_server.method_calls import MethodRefused
    from twin_server.parameter_deployment import unit_deployment

    unit = load_line_config(line_path).unit(unit_name)
    plan = control_plan_for_kind(unit.kind).build_plan(unit.model, unit.control, f"units.{unit_name}.control",
                                                       {t.name for t in unit.tags})
    deployment = unit_deployment(unit_name, unit.kind, unit.model, plan.model, data_dir / "parameter_sets")
    try:
        deployment.request_apply(set_id, reason, batch_running=False)
    except MethodRefused as exc:
        raise CommissioningError(f"applying parameter set {set_id} to {unit_name}: {exc.reason}") from exc
    deployed = deployment.deployed
    return deployed.id, dict(deployed.values)


def commission_on_bench(scenario: Scenario, data_dir: Path, seeds: tuple[int, int], *,
                        estimate: Sequence[str] = ESTIMATED, method: str = "ml",
                        delays: Mapping[str, float] | None = None, profile: bool = False,
                        first_start: datetime = FIRST_START, quiet: bool = False,
                        progress: Callable[[str], None] | None = None) -> Commissioning:
    """Batch 1 on the nominal set, recorded; fit; apply; batch 2 on the fitted set, recorded (module docstring).

    ``scenario``: run under ``mpc`` (its strategy is overridden); ``seeds``: the plant's sensor-noise seed of batch 1
    and of batch 2; ``estimate``, ``method``, ``delays``, ``profile``, ``quiet``: :func:`fit_recorded_batch`;
    ``data_dir``: the line's data directory (created; the history, parameter sets, fit report and audit go there).

    Raises:
        CommissioningError: the fit or the apply failed (:func:`fit_recorded_batch`, :func:`apply_parameter_set`).
    """
    from linetwin_cli.bench_history import BATCH_GAP_S, record_stepped_batches
    from twin_server.config import load_line_config
    from twin_server.historian.sqlite_store import SqliteStore

    say = progress or (lambda _text: None)
    scenario = scenario.with_strategy("mpc")
    line = load_line_config(scenario.line_path).name
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(data_dir / "history")
    try:
        say("batch 1: NMPC on the nominal set, recorded")
        [(batch1, nominal)] = record_stepped_batches(scenario, store, line, first_start, (seeds[0],))
    finally:
        store.close()
    say(f"fitting {', '.join(estimate)} on batch {batch1}")
    started = time.perf_counter()
    set_id, report = fit_recorded_batch(scenario.line_path, scenario.unit, data_dir, batch1, estimate=estimate,
                                        method=method, delays=delays, profile=profile, quiet=quiet)
    fit_s = time.perf_counter() - started
    deployed_id, values = apply_parameter_set(scenario.line_path, scenario.unit, data_dir, set_id,
                                              "commissioning on the bench")
    say(f"parameter set {deployed_id} deployed; batch 2: NMPC on it, recorded")
    store = SqliteStore(data_dir / "history")
    try:
        second_start = first_start + timedelta(seconds=scenario.batch_duration_s + BATCH_GAP_S)
        [(batch2, fitted)] = record_stepped_batches(scenario, store, line, second_start, (seeds[1],),
                                                    parameter_set=(deployed_id, values))
    finally:
        store.close()
    return Commissioning(nominal_batch=batch1, nominal_report=nominal, fit_report=report,
                         parameter_set=deployed_id, values=values, fitted_batch=batch2, fitted_report=fitted,
                         fit_wall_s=fit_s)
