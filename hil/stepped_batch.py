"""A HIL scenario's batch in lockstep on a stepped plant clock: no socket, no sleeping, deterministic for a seed.

Plant, PLC image, adapter scan, estimator, NMPC and supervisor advance together, step by step, as fast as the CPU
allows (:class:`~process_models.plant_clock.SteppedClock`):

1. the line's unit (kind, the twin's ``[model]``, tag map: :mod:`hil.line_unit`) and the scenario's true plant
   behind a :class:`~hil.stepped_plc.SteppedPlc` (the virtual PLC's register image, the adapter's decoding);
2. the control plan built from the scenario's control options exactly as the twin builds it
   (:meth:`hil.scenario.Scenario.control_options`, :mod:`controllers.plan_registry`), run by the same core as the
   twin's control loop (:class:`controllers.batch_control.BatchControl`): target and mode written, StartBatch;
3. per plant step: the scheduled faults (:class:`hil.faults.FaultInjector`, in plant seconds after StartBatch),
   at each estimator tick a scan and an EKF step, at each controller period an NMPC solve — synchronously, no
   deadline race (the supervisor judges no result late by the wall time a loaded machine took: IPOPT's CPU-time
   limit still bounds each solve; :attr:`~controllers.batch_control.BatchControl.wall_deadline`) — and the
   supervisor's decision written through the guarded write; every ``sample_interval_s`` a timeline sample
   (plant truth, what the twin would publish, the setpoint register);
4. at batch end the KPIs (:mod:`hil.scenario_kpis`), as the socket runner computes them.

With a ``recorder`` (:class:`hil.batch_recording.BatchRecorder`) the batch is also recorded as the twin's historian
would keep it: every ``record_period_s`` plant seconds a scan of the unit's tags, every setpoint written, and the
``batch started`` / ``batch stopped`` events (``linetwin fit`` reads batches back from such a history).

Why here: the loop needs the HIL plant and PLC image (``hil``) and the control core (``controllers``, below
``hil``); ``hil`` never imports ``twin_server`` (docs/architecture.md), and nothing here needs OPC UA.

Solve times in the KPIs are the IPOPT calls' wall times (the only non-deterministic figures of a stepped run).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from controllers.batch_control import BatchControl, Decision, setpoint_source
from controllers.commands import ControlMode
from controllers.control_plan import ControlPlan
from controllers.nmpc import NmpcResult, deferred_nlp_build
from controllers.plan_registry import control_plan_for_kind
from hil.batch_recording import BatchRecorder
from hil.faults import FaultInjector
from hil.line_unit import LineUnit, read_line_unit
from hil.oracle import oracle_knowledge
from hil.plant import make_plant, physics_capability
from hil.scenario import Scenario
from hil.scenario_kpis import TimelineSample, compute_kpis
from hil.scenario_report import ScenarioReport, plot_report, write_report
from hil.scenario_runner import JACKET_SETPOINT_TAG, ScenarioRunError, scenario_summary
from hil.stepped_plc import SteppedPlc, SteppedWriteRefused
from process_models.plant_clock import SteppedClock

_EPS_S = 1e-9


TickObserver = Callable[[float, BatchControl], None]
"""Called after every estimator tick with the batch time (s) and the control core (its estimator, plan, plan's
NMPC): a forecast calibration reads the estimate here. It must not change the core."""


def run_stepped_batch(scenario: Scenario, *, seed: int | None = None, strategy: str | None = None,
                      report_path: Path | None = None, plot_path: Path | None = None,
                      recorder: BatchRecorder | None = None, record_period_s: float = 1.0,
                      on_tick: TickObserver | None = None,
                      parameter_set: tuple[str, Mapping[str, float]] | None = None) -> ScenarioReport:
    """Run one batch of ``scenario`` in lockstep (see the module docstring) and return its report.

    ``seed`` (plant sensor noise) and ``strategy`` (natural_cooling | linear_cooling | mpc | oracle) override the
    scenario's. ``recorder``: receives the batch as the twin's historian would (a scan every ``record_period_s``
    plant seconds, setpoints, events; see the module docstring). ``oracle``: the MPC's plan built on the plant's
    true parameters and seed, each solve from the true state (:mod:`hil.oracle`). Usable from synchronous code (a
    campaign worker); inside an event loop use :func:`run_stepped_batch_async`. ``on_tick``: see
    :data:`TickObserver`. ``parameter_set``: (id, values in model units) of the set deployed for this batch, as the
    twin deploys one at StartBatch (:meth:`controllers.batch_control.BatchControl.use_parameter_set`: the EKF starts
    from its values and every NMPC solve uses them); None: the declaration's nominal values.

    Raises:
        ScenarioRunError: the plant exposes no ``truth()`` (needs ``plant_model = "physics"``), offers no oracle
            (strategy ``oracle``) or the unit has no usable measurement at StartBatch.
        ScenarioError: an invalid ``seed`` or ``strategy``.
        ValueError: the unit's control plan refuses the scenario's control options (every problem listed).
    """
    return asyncio.run(run_stepped_batch_async(scenario, seed=seed, strategy=strategy, report_path=report_path,
                                               plot_path=plot_path, recorder=recorder,
                                               record_period_s=record_period_s, on_tick=on_tick,
                                               parameter_set=parameter_set))


async def run_stepped_batch_async(scenario: Scenario, *, seed: int | None = None, strategy: str | None = None,
                                  report_path: Path | None = None, plot_path: Path | None = None,
                                  recorder: BatchRecorder | None = None, record_period_s: float = 1.0,
                                  on_tick: TickObserver | None = None,
                                  parameter_set: tuple[str, Mapping[str, float]] | None = None) -> ScenarioReport:
    """:func:`run_stepped_batch` for callers already in an event loop (it never awaits anything that waits)."""
    if seed is not None:
        scenario = scenario.with_seed(seed)
    if strategy is not None:
        scenario = scenario.with_strategy(strategy)
    wall_start = time.perf_counter()
    unit = read_line_unit(scenario.line_path, scenario.unit)
    plant = make_plant(unit.kind, {**unit.model, **scenario.plant}, seed=scenario.seed)
    truth_of = physics_capability(plant, scenario.unit, "truth", "exposes no truth() for KPIs", ScenarioRunError)
    true_state: Callable[[], dict[str, float]] | None = None
    if scenario.strategy == "oracle":
        oracle = oracle_knowledge(plant, unit.name, unit.model, scenario.control_options())
        plan = _plan(scenario.line_path, replace(unit, model=oracle.model_options), oracle.control_options)
        true_state = oracle.true_state
    else:
        plan = _plan(scenario.line_path, unit, scenario.control_options())
    if ControlMode(scenario.mode) is ControlMode.MPC:
        plan.nmpc.build()  # built deferred (_plan): a build failure raises here, not as a failed solve in the loop
    clock = SteppedClock()
    plc = SteppedPlc(unit.name, unit.tags, plant, scenario.plant_step_s, clock)
    has_setpoint_tag = any(t.name == JACKET_SETPOINT_TAG for t in unit.tags)
    core = BatchControl(plan, ControlMode(scenario.mode), scenario.target_d43_um, wall_deadline=False)
    if parameter_set is not None:
        core.use_parameter_set(*parameter_set)
    if not (math.isfinite(record_period_s) and record_period_s > 0):
        raise ValueError(f"record_period_s: got {record_period_s!r}; expected a number of plant seconds > 0")
    batch = _Batch(core, plc, true_state, on_tick, recorder)
    if recorder is not None:
        recorder.scan(0.0, plc.scan())
    batch.start()
    origin = clock.now()
    next_record = record_period_s
    injector = FaultInjector(plc, scenario.faults, origin_s=origin)
    timeline: list[TimelineSample] = []
    next_sample = 0.0
    try:
        while True:
            elapsed = clock.now() - origin
            await injector.update()
            batch.tick_if_due(elapsed)
            done = elapsed >= scenario.batch_duration_s - _EPS_S
            if elapsed >= next_sample - _EPS_S or done:
                timeline.append(TimelineSample(
                    batch_time_s=elapsed, wall_time_s=time.perf_counter() - wall_start, truth=truth_of(),
                    twin=batch.published(elapsed),
                    jacket_setpoint_c=plc.read_tag(JACKET_SETPOINT_TAG) if has_setpoint_tag else math.nan,
                    active_faults=tuple(f.describe() for f in injector.active)))
                next_sample = (math.floor(elapsed / scenario.sample_interval_s + _EPS_S) + 1) \
                    * scenario.sample_interval_s
            if done:
                break
            plc.step()
            if recorder is not None and clock.now() - origin >= next_record - _EPS_S:
                recorder.scan(clock.now() - origin, plc.scan())
                next_record += record_period_s
    finally:
        await injector.clear()
    counters: dict[str, Any] = {**core.counters, "last_event": batch.events[-1] if batch.events else None,
                                "solve_status": batch.solve_status}
    kpis = compute_kpis(timeline, scenario.target_d43_um, scenario.max_supersaturation, scenario.batch_duration_s,
                        core.solve_times_ms, counters)
    kpis["solves_unsampled"] = 0
    wall_s = time.perf_counter() - wall_start
    plant_s = clock.now() - origin
    report = ScenarioReport(
        scenario=scenario_summary(scenario), kpis=kpis, timeline=timeline, counters=counters,
        fault_events=[{"fault": e.fault.describe(), "action": e.action, "plant_time_s": e.plant_time_s}
                      for e in injector.log],
        run={"clock": "stepped", "wall_time_s": wall_s, "plant_time_s": plant_s,
             "real_time_factor": plant_s / wall_s if wall_s > 0 else None, "dropped_plant_steps": 0,
             "events": list(batch.events), "parameter_set": core.parameter_set_id or None},
        final_csd=truth_of(include_csd=True).get("csd"),
    )
    if report_path is not None:
        write_report(report, report_path)
    if plot_path is not None:
        plot_report(report, plot_path)
    return report


_PLANS: dict[str, ControlPlan] = {}
_PLAN_CACHE_SIZE = 8


def _plan(line_path: Path, unit: LineUnit, options: Mapping[str, Any]) -> ControlPlan:
    """The unit's control plan for ``options``, built once per process and options (as the twin builds it once per
    ``serve`` and runs batch after batch on it: StartBatch makes a fresh EKF and resets the NMPC's warm start). Its
    NMPC is built at first use (:func:`controllers.nmpc.deferred_nlp_build`): a recipe batch never solves it."""
    key = json.dumps([str(line_path), unit.name, unit.model, options], sort_keys=True, default=str)
    if key not in _PLANS:
        if len(_PLANS) >= _PLAN_CACHE_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        with deferred_nlp_build():
            _PLANS[key] = control_plan_for_kind(unit.kind).build_plan(unit.model, options,
                                                                      f"units.{unit.name}.control",
                                                                      {t.name for t in unit.tags})
    return _PLANS[key]


class _Batch:
    """The twin's side of the batch on the control core: StartBatch, estimator ticks, decisions, writes."""

    def __init__(self, core: BatchControl, plc: SteppedPlc,
                 true_state: Callable[[], dict[str, float]] | None = None,
                 on_tick: TickObserver | None = None,
                 recorder: BatchRecorder | None = None) -> None:
        self.core = core
        self.on_tick = on_tick
        self.plc = plc
        self.recorder = recorder
        self.true_state = true_state
        """The oracle's source of the state each NMPC solve starts from (None: the EKF's estimate)."""
        self.tick = 0
        self.active = False
        self.events: list[str] = []
        self.solve_status: str | None = None
        self.solve_time_ms: float | None = None

    def start(self) -> None:
        tags = self.plc.scan()
        missing = [k for k, v in self.core.measurements(tags).items() if v is None]
        if missing:
            raise ScenarioRunError(f"unit '{self.plc.unit}': StartBatch refused: no Good measurement of {missing}")
        setpoints, notes = self.core.clip_setpoints(tags)
        self.events.extend(notes)
        self.core.start(tags, setpoints)
        self.active = True
        self._event(0.0, f"batch started in mode {self.core.mode.value}, target {self.core.target_value:g} "
                         f"{self.core.plan.target.unit.symbol}")

    def _event(self, batch_time_s: float, text: str) -> None:
        self.events.append(text)
        if self.recorder is not None:
            self.recorder.event(batch_time_s, text)

    def tick_if_due(self, batch_time_s: float) -> None:
        """Run the estimator tick (and decision) due at ``batch_time_s``, if any; stop the batch at its end."""
        if not self.active or batch_time_s < self.core.tick_time_s(self.tick + 1) - _EPS_S:
            return
        self.tick += 1
        t = self.core.tick_time_s(self.tick)
        try:
            tags = self.plc.scan()
            self.core.step_estimator(self.core.applied_inputs(tags), self.core.measurements(tags))
            if self.on_tick is not None:
                self.on_tick(t, self.core)
            if self.core.decides_at(self.tick):
                self._decide(t, tags)
        except Exception as exc:  # as the twin: keep the batch going, say what happened
            self.events.append(f"t={t:.0f} s: control step failed: {exc}")
        if self.core.batch_over(t):
            self.active = False
            self._event(t, f"batch stopped at t={t:.0f} s (batch duration reached)")
            self.core.mode = ControlMode.MANUAL

    def _decide(self, t: float, tags: dict[str, float | None]) -> None:
        result: NmpcResult | None = None
        if self.core.mode is ControlMode.MPC:
            result = self.core.solve(t, self.true_state() if self.true_state is not None else None)
            self.solve_status = result.status if result is not None else "error"
            self.solve_time_ms = result.solve_time_s * 1000.0 if result is not None else None
        decision: Decision = self.core.decide(t, tags, result)
        self.events.extend(decision.event_texts)
        for cmd in decision.commands:
            tag, value = self.core.tag_value(cmd)
            try:
                self.plc.write(tag, value)
            except SteppedWriteRefused as exc:
                self.events.append(f"t={t:.0f} s: setpoint {tag} = {value:.4g} not written: {exc}")
                continue
            self.core.written()
            if self.recorder is not None:
                self.recorder.setpoint(t, tag, value, setpoint_source(cmd))

    def published(self, batch_time_s: float) -> dict[str, Any]:
        """What the twin's control nodes would show now (the names the socket runner samples)."""
        outputs, _factors = self.core.published_estimate()
        twin: dict[str, Any] = {"mode": self.core.mode.value, "batch_active": self.active,
                                "batch_time_s": self.core.tick_time_s(self.tick),
                                "solve_time_ms": self.solve_time_ms, "solve_status": self.solve_status,
                                "last_event": self.events[-1] if self.events else None, **self.core.counters}
        for name, (value, std) in outputs.items():
            twin[f"estimated_{name}"] = value if math.isfinite(value) else None
            twin[f"estimated_{name}_std"] = std
        return twin
