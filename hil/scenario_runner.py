"""Running a HIL scenario as the operator: over OPC UA only, exactly the twin's control contract.

The caller (``linetwin hil run``) has already started the bench (built with the scenario's plant) and the twin
(control configured from the scenario: strategy, target, ``time_scale`` = speed). :func:`run_scenario` then

1. waits until every measured tag of the unit reads Good on the twin (``<line>.<unit>.<tag>``);
2. when the scenario names a parameter set (:attr:`Scenario.parameter_set`, a full id by now), calls
   ``model.ApplyParameterSet(id)`` as an engineer (a second session with ``engineer`` credentials: the operator may
   not change sets) and checks that ``model.parameter_set`` then reads that id (no batch runs: the switch is at once);
3. writes ``control.target_d43`` (Double, µm) and ``control.mode`` (String: "auto" for the recipes, "mpc");
4. calls ``control.StartBatch()``, takes the virtual PLC's plant time as the batch origin and reads the set the batch
   runs on (``model.parameter_set``, into the report's ``run.parameter_set``);
5. follows the batch by PLANT time (``bench.plc(unit).plant_time_s``) until ``batch_duration_s``: starts/ends the
   scheduled faults (:class:`hil.faults.FaultInjector`), samples every ``sample_interval_s`` plant seconds the
   plant truth, the virtual PLC's jacket setpoint register and the twin's control nodes (one OPC UA Read), and
   records ``solve_time_ms`` once per increment of ``solves``; shows the batch percentage on stderr;
6. calls ``control.StopBatch()``, reads the counters, computes the KPIs (:mod:`hil.scenario_kpis`) and writes
   the JSON report and the PNG plot (:mod:`hil.scenario_report`).

Node ids: ``ns=<namespace index>;s=<line>.<unit>.control.<name>`` (see /work/notes/control_contract.md) and
``<line>.<unit>.model.<name>`` (twin_server/model_nodes.py).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from asyncua import Client, Node, ua

from hil.bench import HilBench
from hil.faults import FaultInjector
from hil.plant import physics_capability
from hil.scenario import Scenario
from hil.scenario_kpis import TimelineSample, compute_kpis
from hil.scenario_report import ScenarioReport, plot_report, write_report
from plc_adapters.tag_map import Direction

# the control nodes sampled along the batch (missing ones read as None, e.g. no NMPC in a recipe-only twin)
SAMPLED_CONTROL_NODES = (
    "mode", "batch_active", "batch_time_s", "estimated_d43", "estimated_d43_std", "estimated_cv",
    "estimated_supersaturation", "estimated_supersaturation_std", "estimated_solute_concentration",
    "estimated_solute_concentration_std", "estimated_yield", "estimated_crystal_count", "solve_time_ms",
    "solve_status", "solves", "failed_solves",
    "setpoints_written", "fallbacks_used", "last_event",
)
REQUIRED_CONTROL_NODES = ("mode", "target_d43", "batch_active", "solves", "setpoints_written", "fallbacks_used")
COUNTER_NODES = ("solves", "failed_solves", "setpoints_written", "fallbacks_used", "last_event", "solve_status")
JACKET_SETPOINT_TAG = "jacket_temperature_setpoint"


class ScenarioRunError(RuntimeError):
    """The scenario could not be run (twin not ready, contract node missing or refusing, plant stalled)."""


class _Operator:
    """The OPC UA side: the unit's tag nodes and control nodes by name."""

    def __init__(self, client: Client, namespace_index: int, line: str, unit: str) -> None:
        self.client = client
        self.idx = namespace_index
        self.prefix = f"{line}.{unit}"

    def node(self, name: str) -> Node:
        return self.client.get_node(ua.NodeId(f"{self.prefix}.{name}", self.idx))

    def control(self, name: str) -> Node:
        return self.node(f"control.{name}")

    async def parameter_set(self) -> str | None:
        """The set the unit's model runs on (``model.parameter_set``); None when the twin has no such node."""
        value = (await self.read([self.node("model.parameter_set")]))[0]
        return str(value.Value.Value) if value.StatusCode.is_good() and value.Value is not None else None

    async def apply_parameter_set(self, set_id: str) -> None:
        """``model.ApplyParameterSet(set_id)`` (engineer role), then ``model.parameter_set`` must read ``set_id``."""
        try:
            await self.node("model").call_method(self.node("model.ApplyParameterSet").nodeid,
                                                 ua.Variant(set_id, ua.VariantType.String))
        except ua.UaStatusCodeError as exc:
            raise ScenarioRunError(f"{self.prefix}.model.ApplyParameterSet({set_id}) refused: "
                                   f"{ua.StatusCode(exc.code).name} (the set must be in the twin's data dir, verify "
                                   "and belong to the unit's model declaration; the caller needs the engineer "
                                   "role)") from None
        deployed = await self.parameter_set()
        if deployed != set_id:
            raise ScenarioRunError(f"{self.prefix}.model.parameter_set reads {deployed!r} after ApplyParameterSet("
                                   f"{set_id}); expected the set at once (no batch was running)")

    async def read(self, nodes: Sequence[Node]) -> list[ua.DataValue]:
        return await self.client.read_attributes(list(nodes), ua.AttributeIds.Value)

    async def read_control(self, names: Sequence[str]) -> dict[str, Any]:
        """Values by name; None where the node is missing or its status is not Good."""
        values = await self.read([self.control(n) for n in names])
        return {n: (dv.Value.Value if dv.StatusCode.is_good() and dv.Value is not None else None)
                for n, dv in zip(names, values, strict=True)}

    async def require(self, names: Sequence[str]) -> None:
        values = await self.read([self.control(n) for n in names])
        missing = [f"{self.prefix}.control.{n} ({dv.StatusCode.name})"
                   for n, dv in zip(names, values, strict=True)
                   if dv.StatusCode.value in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid)]
        if missing:
            raise ScenarioRunError("the twin does not expose the control contract nodes: " + ", ".join(missing)
                                   + " (does the unit have a [control] section?)")

    async def write(self, name: str, value: Any, variant_type: ua.VariantType) -> None:
        node = self.control(name)
        try:
            await node.write_value(ua.DataValue(ua.Variant(value, variant_type)))
        except ua.UaStatusCodeError as exc:
            raise ScenarioRunError(f"writing {value!r} to {self.prefix}.control.{name} refused: {exc}") from exc

    async def call(self, method: str) -> None:
        method_node = self.control(method)
        try:
            parent = await method_node.get_parent()
            if parent is None:
                parent = self.node("control")
            await parent.call_method(method_node.nodeid)
        except ua.UaStatusCodeError as exc:
            raise ScenarioRunError(f"calling {self.prefix}.control.{method}() failed: {exc}") from exc

    async def wait_good(self, tags: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        nodes = [self.node(tag) for tag in tags]
        while True:
            values = await self.read(nodes)
            bad = [f"{tag} ({dv.StatusCode.name})" for tag, dv in zip(tags, values, strict=True)
                   if not dv.StatusCode.is_good()]
            if not bad:
                return
            if time.monotonic() > deadline:
                raise ScenarioRunError(f"tags of {self.prefix} not Good after {timeout_s:g} s: {', '.join(bad)}")
            await asyncio.sleep(0.1)


class _Progress:
    """Batch percentage on stderr: one redrawn line on a terminal (at most every 0.5 s wall), else one line per
    10 % of the batch."""

    def __init__(self, name: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.name, self.enabled = name, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_wall = -math.inf
        self._last_decile = -1

    def update(self, elapsed_s: float, duration_s: float, wall_s: float, force: bool = False) -> None:
        if not self.enabled:
            return
        percent = 100.0 * min(max(elapsed_s, 0.0) / duration_s, 1.0)
        text = f"[hil] {self.name}: {percent:5.1f} % of batch (plant {elapsed_s:7.0f} s, wall {wall_s:6.1f} s)"
        if self.interactive:
            now = time.monotonic()
            if force or now - self._last_wall >= 0.5:
                self._last_wall = now
                self.stream.write("\r" + text)
                self.stream.flush()
        elif int(percent // 10) > self._last_decile:
            self._last_decile = int(percent // 10)
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


async def run_scenario(scenario: Scenario, bench: HilBench, endpoint: str, namespace: str, line_name: str,
                       report_path: Path | None, plot_path: Path | None, progress: bool = True,
                       ready_timeout_s: float = 60.0, credentials: tuple[str, str] | None = None,
                       engineer: tuple[str, str] | None = None) -> ScenarioReport:
    """Operate one batch of ``scenario`` against the running twin at ``endpoint`` (see the module docstring).

    ``credentials``: ``(user, password)`` of an operator on the twin (its writes and StartBatch need that role);
    ``engineer``: of an engineer, who applies :attr:`Scenario.parameter_set` (a full set id) before the batch.

    Raises:
        ScenarioRunError: strategy ``oracle`` (stepped loop only), the plant has no ``truth()`` (needs
            ``plant_model = "physics"``), the parameter set is refused or not deployed at once, the tags never get
            Good, a contract node is missing or refuses a write, or plant time stops advancing.
    """
    if scenario.strategy == "oracle":
        raise ScenarioRunError(f"scenario '{scenario.name}': strategy 'oracle' needs the plant's truth inside the "
                               f"loop; run it on the stepped loop (linetwin hil run --stepped)")
    plc = bench.plc(scenario.unit)
    plant = plc.plant
    truth_of = physics_capability(plant, scenario.unit, "truth", "exposes no truth() for KPIs", ScenarioRunError)
    measured = [t.name for t in plc.tags if t.direction is Direction.MEASURED]
    has_setpoint_tag = any(t.name == JACKET_SETPOINT_TAG for t in plc.tags)
    bar = _Progress(scenario.name, progress)
    wall_start = time.monotonic()
    if scenario.parameter_set is not None:
        await _apply_parameter_set(scenario, endpoint, namespace, line_name, engineer)
    client = _client(endpoint, credentials)
    async with client:
        idx = await client.get_namespace_index(namespace)
        operator = _Operator(client, idx, line_name, scenario.unit)
        await operator.require(REQUIRED_CONTROL_NODES)
        await operator.wait_good(measured, ready_timeout_s)
        await operator.write("target_d43", float(scenario.target_d43_um), ua.VariantType.Double)
        await operator.write("mode", scenario.mode, ua.VariantType.String)
        await operator.call("StartBatch")
        origin = plc.plant_time_s
        batch_parameter_set = await operator.parameter_set()
        dropped_before = plc.dropped_steps
        injector = FaultInjector(plc, scenario.faults, origin_s=origin)
        timeline: list[TimelineSample] = []
        solve_times: list[float] = []
        unsampled_solves = 0
        last_solves: int | None = None
        batch_wall_start = time.monotonic()
        poll_s = max(0.005, min(0.05, scenario.sample_interval_s / scenario.speed / 4.0))
        stall_limit_s = max(30.0, 20.0 * scenario.plant_step_s / scenario.speed)
        next_sample = 0.0
        last_progress_plant, last_progress_wall = origin, time.monotonic()
        try:
            while True:
                now_plant = plc.plant_time_s
                elapsed = now_plant - origin
                await injector.update()
                done = elapsed >= scenario.batch_duration_s
                if elapsed >= next_sample or done:
                    twin = await operator.read_control(SAMPLED_CONTROL_NODES)
                    solves = twin.get("solves")
                    if isinstance(solves, int):
                        new = solves - last_solves if last_solves is not None else solves
                        if new > 0 and isinstance(twin.get("solve_time_ms"), int | float):
                            solve_times.append(float(twin["solve_time_ms"]))
                            unsampled_solves += new - 1
                        last_solves = solves
                    timeline.append(TimelineSample(
                        batch_time_s=elapsed, wall_time_s=time.monotonic() - batch_wall_start, truth=truth_of(),
                        twin=twin,
                        jacket_setpoint_c=plc.read_tag(JACKET_SETPOINT_TAG) if has_setpoint_tag else math.nan,
                        active_faults=tuple(f.describe() for f in injector.active)))
                    next_sample = (math.floor(elapsed / scenario.sample_interval_s) + 1) * scenario.sample_interval_s
                bar.update(elapsed, scenario.batch_duration_s, time.monotonic() - wall_start, force=done)
                if done:
                    break
                if now_plant > last_progress_plant:
                    last_progress_plant, last_progress_wall = now_plant, time.monotonic()
                elif time.monotonic() - last_progress_wall > stall_limit_s:
                    raise ScenarioRunError(f"unit '{scenario.unit}': plant time stuck at {elapsed:.1f} s for "
                                           f"{stall_limit_s:g} s wall (virtual PLC stopped?)")
                await asyncio.sleep(poll_s)
        finally:
            await injector.clear()
            bar.close()
        await operator.call("StopBatch")
        counters = await operator.read_control(COUNTER_NODES)
        every_solve = (await operator.read_control(("solve_times_ms",))).get("solve_times_ms")
        if isinstance(every_solve, list):  # the twin publishes every solve time: exact statistics
            solve_times, unsampled_solves = [float(v) for v in every_solve], 0
        wall_s = time.monotonic() - batch_wall_start
    kpis = compute_kpis(timeline, scenario.target_d43_um, scenario.max_supersaturation, scenario.batch_duration_s,
                        solve_times, counters)
    kpis["solves_unsampled"] = unsampled_solves
    final = truth_of(include_csd=True)
    report = ScenarioReport(
        scenario=scenario_summary(scenario),
        kpis=kpis,
        timeline=timeline,
        counters=counters,
        fault_events=[{"fault": e.fault.describe(), "action": e.action, "plant_time_s": e.plant_time_s}
                      for e in injector.log],
        run={"endpoint": endpoint, "wall_time_s": wall_s, "plant_time_s": plc.plant_time_s - origin,
             "real_time_factor": (plc.plant_time_s - origin) / wall_s if wall_s > 0 else None,
             "dropped_plant_steps": plc.dropped_steps - dropped_before, "parameter_set": batch_parameter_set},
        final_csd=final.get("csd"),
    )
    if report_path is not None:
        write_report(report, report_path)
    if plot_path is not None:
        plot_report(report, plot_path)
    return report


def _client(endpoint: str, credentials: tuple[str, str] | None) -> Client:
    client = Client(endpoint)
    if credentials is not None:
        client.set_user(credentials[0])
        client.set_password(credentials[1])
    return client


async def _apply_parameter_set(scenario: Scenario, endpoint: str, namespace: str, line_name: str,
                               engineer: tuple[str, str] | None) -> None:
    """The engineer's session: ``ApplyParameterSet(scenario.parameter_set)`` before the operator starts the batch."""
    assert scenario.parameter_set is not None
    async with _client(endpoint, engineer) as client:
        idx = await client.get_namespace_index(namespace)
        await _Operator(client, idx, line_name, scenario.unit).apply_parameter_set(scenario.parameter_set)


def scenario_summary(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain JSON-able data for the report."""
    return {
        "name": scenario.name, "description": scenario.description, "path": str(scenario.path),
        "line": str(scenario.line_path), "unit": scenario.unit, "strategy": scenario.strategy, "mode": scenario.mode,
        "batch_duration_s": scenario.batch_duration_s, "target_d43_um": scenario.target_d43_um,
        "speed": scenario.speed, "seed": scenario.seed, "plant_step_s": scenario.plant_step_s,
        "sample_interval_s": scenario.sample_interval_s, "max_supersaturation": scenario.max_supersaturation,
        "plant": dict(scenario.plant), "control": dict(scenario.control),
        "recipe": {"initial_temperature_c": scenario.recipe.initial_temperature_c,
                   "final_temperature_c": scenario.recipe.final_temperature_c},
        "faults": [f.describe() for f in scenario.faults], "parameter_set": scenario.parameter_set,
        "fit": scenario.fit.describe() if scenario.fit is not None else None,
    }
