"""One HIL batch over real sockets, as ``linetwin hil run`` and ``linetwin hil commission`` run it: a fresh bench
(the scenario's true plant behind its virtual PLC), a twin on the run's data dir (historian on: the batch is recorded
with its StartBatch/StopBatch events), the runner as operator over OPC UA (:mod:`hil.scenario_runner`); and the
scenario's ``parameter_set`` resolved to a set of that data dir.

Several batches on one data dir are one twin restarted between batches (a fresh plant each batch, as a new batch
starts from its seed charge): history, parameter sets, deployment history and audit trail carry over.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from linetwin_cli.failures import CommandError

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from hil.scenario import Scenario
    from hil.scenario_report import ScenarioReport
    from twin_server.config import LineConfig, UnitConfig
    from twin_server.data_dir import LineDataDir
    from twin_server.historian.batches import RecordedBatch

__all__ = ["SocketBatch", "recorded_batches", "resolve_parameter_set", "run_socket_batch"]


@dataclass(frozen=True)
class SocketBatch:
    """A batch run over sockets: its report and the wall-clock window (Unix seconds) the twin ran in, which holds
    the batch's StartBatch/StopBatch events in the data dir's history."""

    report: ScenarioReport
    twin_started_s: float
    twin_stopped_s: float


def resolve_parameter_set(scenario: Scenario, unit: UnitConfig, plan: ControlPlan, data: LineDataDir) -> str:
    """The full id of ``scenario.parameter_set`` in ``data``'s store: "nominal" (the unit's declared values, as the
    twin stores them at start), "latest" (the newest set stored for the unit's model declaration other than the
    nominal one, e.g. the one ``linetwin fit`` just stored) or an id / unique prefix. CommandError naming the
    scenario's key otherwise."""
    from process_models.parameter_sets import (
        ParameterSetError,
        ParameterSetStore,
        declaration_hash,
        nominal_parameter_set,
        unit_model_declaration,
    )

    wanted = scenario.parameter_set
    assert wanted is not None
    where = f"{scenario.path}: scenario.parameter_set (or --parameter-set): got {wanted!r}"
    declaration = unit_model_declaration(unit.kind, unit.model)
    nominal = nominal_parameter_set(unit.name, unit.kind, declaration, plan.model.declaration.parameter_values())
    if wanted == "nominal":
        return nominal.id
    store = ParameterSetStore(data.parameter_sets)
    try:
        if wanted == "latest":
            fitted = [s for s in store.list(unit.name)
                      if s.declaration_hash == declaration_hash(declaration) and s.id != nominal.id]
            if not fitted:
                raise CommandError(f"{where}; expected a set fitted for unit '{unit.name}' in {store.directory} "
                                   f"(none yet: run `linetwin fit … --data-dir {data.root}` on a recorded batch "
                                   "first, or `linetwin hil commission`)")
            return fitted[-1].id
        return store.resolve(wanted)
    except ParameterSetError as exc:
        raise CommandError(f"{where}; expected a set of the run's data dir ({exc})") from None


async def run_socket_batch(scenario: Scenario, config: LineConfig, plans: dict[str, ControlPlan],
                           data: LineDataDir, port: int, report: Path | None, plot: Path | None,
                           announce: TextIO | None = None) -> SocketBatch:
    """Run ``scenario`` (its line already built into ``config`` / ``plans`` by the caller, its ``parameter_set``
    already resolved to a full id or None) on a fresh bench and twin; ``port``: the twin's OPC UA port. The batch
    and where the twin runs are announced on ``announce`` (default stdout), its progress goes to stderr.

    Raises:
        hil.scenario_runner.ScenarioRunError: the batch could not be run (module :mod:`hil.scenario_runner`).
    """
    from hil.scenario_runner import run_scenario
    from linetwin_cli.bench_launcher import build_bench, config_for_bench
    from linetwin_cli.operators import scenario_engineer, scenario_operator
    from process_models.plant_clock import WallPacedClock
    from twin_server.server import TwinServer, endpoint_with_port

    credentials = scenario_operator(data)
    engineer = scenario_engineer(data) if scenario.parameter_set is not None else None
    bench = build_bench(config, speed=scenario.speed, free_ports=True, seed=scenario.seed, step_s=scenario.plant_step_s)
    await bench.start()
    twin: TwinServer | None = None
    started = time.time()
    try:
        endpoint = endpoint_with_port(config.server.endpoint, port)
        twin = TwinServer(config_for_bench(config, bench), endpoint=endpoint, data_dir=data.root, plans=plans,
                          plant_clock=WallPacedClock(scenario.speed))
        await twin.start()
        on = f" on parameter set {scenario.parameter_set}" if scenario.parameter_set else ""
        print(f"scenario '{scenario.name}': {scenario.strategy}, {scenario.batch_duration_s:g} s batch at "
              f"{scenario.speed:g}x{on}; twin at {twin.endpoint}", file=announce or sys.stdout, flush=True)
        result = await run_scenario(scenario, bench, twin.endpoint, config.server.namespace, config.name, report, plot,
                                    credentials=credentials, engineer=engineer)
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    return SocketBatch(result, started, time.time())


def recorded_batches(config: LineConfig, data: LineDataDir, batch: SocketBatch, unit: str) -> list[RecordedBatch]:
    """The complete batches of ``unit`` the twin recorded in ``data``'s history while it ran ``batch`` (found by
    their StartBatch/StopBatch events; one for a batch that ran to its end with the historian on)."""
    from twin_server.historian.batches import find_batches
    from twin_server.historian.service import open_backend
    from twin_server.historian.sqlite_store import FILE_NAME

    if config.historian.backend == "sqlite" and not (data.history / FILE_NAME).is_file():
        return []
    backend = open_backend(config.historian, data.history)
    try:
        found = find_batches(backend, unit, int(batch.twin_started_s * 1e6), int(batch.twin_stopped_s * 1e6))
    finally:
        backend.close()
    return [b for b in found if b.complete]
