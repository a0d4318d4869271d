"""A unit's control loop in the twin: estimator and controller at their own periods, from the mirrored
tags, writing setpoint commands through the unit's PLC adapter.

The estimator tick, the supervisor/NMPC decision and the batch clock are :class:`controllers.batch_control.
BatchControl` (the same core the stepped lockstep loop :mod:`hil.stepped_batch` runs); this module adds what is
live: the tags from the adapter's last samples, the plant clock, the NMPC in a worker thread under a wall
deadline, the OPC UA nodes, writes and events.

Clock: the loop's time is plant time from a :class:`process_models.plant_clock.PlantClock` since StartBatch
(default: a wall-paced clock at the plan's ``time_scale``: for a HIL bench running N× faster than real time,
time_scale = N keeps the twin's batch clock in plant time). Each estimator tick (absolute plant-time deadlines, no
drift) takes the latest samples — only Good/Uncertain ones are used, a Bad tag counts as missing and the EKF
predicts without it — and steps the EKF. Every controller period the supervisor decides the setpoint: in MPC mode
from an NMPC solve run in a worker thread (the OPC UA server keeps serving), bounded by the solve deadline; a
failed, late or non-finite solve is replaced by the fallback and said so (``last_event``, log). In MANUAL mode the
loop writes nothing and tracks the PLC's read-back, so switching to AUTO/MPC is bumpless. Refused writes (PLC
down, limits) are logged and counted; the loop keeps running and retries at the next period.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from datetime import UTC, datetime

from asyncua import ua

from controllers import ControlMode, NmpcResult
from controllers.batch_control import BatchControl, MissingMeasurement, TagValues, setpoint_source
from controllers.control_plan import ControlPlan
from controllers.supervisor import Supervisor
from controllers.surrogate_prediction import prediction_switches
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefused
from plc_adapters.sample import Sample
from process_models.estimator import Estimate
from process_models.plant_clock import PlantClock, WallPacedClock
from twin_server.alarms.loop_alarms import LoopAlarms
from twin_server.background_task import cancel_and_wait
from twin_server.control_nodes import ControlNodes, PublishedQuantity, WritableControl
from twin_server.estimator_nodes import EstimatorNodes
from twin_server.method_calls import MethodRefused
from twin_server.parameter_switch import ParameterSetSwitch
from twin_server.runtime import LineRuntime
from twin_server.surrogate_nodes import SurrogateWatch
from twin_server.write_guard import HandlerResult, WriteHandler

EVENTS_KEPT = 1000
"""Events of a loop kept in memory (``UnitControlLoop.events``, ~100 bytes each): the newest 1000 (issue 21)."""

log = logging.getLogger("linetwin.control")


class UnitControlLoop:
    """Estimator + NMPC + supervisor for one unit, exposed through :class:`ControlNodes`."""

    def __init__(self, unit: str, plan: ControlPlan, runtime: LineRuntime, nodes: ControlNodes,
                 clock: PlantClock | None = None) -> None:
        self.unit = unit
        self.plan = plan
        self.core = BatchControl(plan)
        """Estimator, supervisor/NMPC decision and batch clock (shared with the stepped loop)."""
        self.clock: PlantClock = clock if clock is not None else WallPacedClock(plan.time_scale)
        self._runtime = runtime
        self._nodes = nodes
        self._task: asyncio.Task[None] | None = None
        self._batch_start: float | None = None
        """Plant time (on ``clock``) of StartBatch; None while no batch runs."""
        self.events: deque[str] = deque(maxlen=EVENTS_KEPT)  # the newest; all are in the log and the historian
        self._prediction_events_seen = 0
        self.surrogate_watch: SurrogateWatch | None = None
        self._tick = 0
        self._solve_in_flight: asyncio.Future[NmpcResult] | None = None  # may outlive its deadline (IPOPT runs on)
        self.alarms: LoopAlarms | None = None
        """The loop's alarm conditions (NMPC fallback in use, estimator divergence), when the server has alarms."""
        self.estimator_nodes: EstimatorNodes | None = None
        """The unit's ``estimator`` object (states, online parameters, innovations), published after every step."""
        self.parameter_sets: ParameterSetSwitch | None = None
        """The unit's deployed parameter set and its ``model`` nodes (set by the server)."""

    @property
    def batch_running(self) -> bool:
        """True between StartBatch and batch end or StopBatch."""
        return self._batch_start is not None

    @property
    def _mode(self) -> ControlMode:
        return self.core.mode

    @property
    def _supervisor(self) -> Supervisor | None:
        return self.core.supervisor

    @property
    def _estimate(self) -> Estimate | None:
        return self.core.estimate

    @property
    def counters(self) -> dict[str, int]:
        return self.core.counters

    @property
    def solve_times_ms(self) -> list[float]:
        return self.core.solve_times_ms

    # -- set-up ---------------------------------------------------------------------------------
    async def build_nodes(self) -> None:
        p = self.plan
        estimates = [PublishedQuantity(o.name, o.unit_code, o.description, eu_range=o.eu_range) for o in p.published]
        estimates += [PublishedQuantity(f"{name}_factor", "C62", f"{name} relative to its nominal value")
                      for name in p.estimated_parameters]
        writable = [
            WritableControl("mode", ua.VariantType.String, "Control mode: manual | auto | mpc"),
            WritableControl(f"target_{p.target.name}", ua.VariantType.Double, f"Batch-end target of {p.target.output}",
                            p.target.unit.code, p.target.low, p.target.high),
        ]
        target_range = next((o.eu_range for o in p.published if o.output == p.target.output), None)
        limits = {lim.name: lim for lim in p.supervisor_config.limits}
        trajectory = [PublishedQuantity(p.target.name, p.target.unit.code, p.target.output, False, target_range)]
        trajectory += [PublishedQuantity(m.input, m.unit.code, f"{m.input} setpoint", False,
                                         (m.to_tag(limits[m.input].lower), m.to_tag(limits[m.input].upper)))
                       for m in p.manipulated]
        await self._nodes.build(estimates, writable, trajectory, self.start_batch, self.stop_batch)
        await self._publish_mode()
        await self._nodes.set(f"target_{p.target.name}", self.core.target_value)

    @property
    def writable_handlers(self) -> dict[ua.NodeId, WriteHandler]:
        return {self._nodes.node_id("mode"): self.write_mode,
                self._nodes.node_id(f"target_{self.plan.target.name}"): self.write_target}

    @property
    def audit_actions(self) -> dict[ua.NodeId, str]:
        """Writable node → the action its writes are audited as (a mode write is a ``mode_change``)."""
        return {self._nodes.node_id("mode"): "mode_change"}

    @property
    def method_roles(self) -> dict[ua.NodeId, str]:
        """StartBatch / StopBatch node → the role that may call them (for the security layer)."""
        return dict(self._nodes.method_roles)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"control-{self.unit}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    # -- operator actions (OPC UA writes and methods) ----------------------------------------------
    def setpoint_owner(self, tag: str) -> str | None:
        """Why a client may not write ``tag`` now (this loop writes it: auto/mpc mode during a batch), else None."""
        if self._batch_start is None or self._mode is ControlMode.MANUAL:
            return None
        if all(m.tag != tag for m in self.plan.manipulated):
            return None
        return (f"the {self.unit} control loop owns {tag} in {self._mode.value} mode during the batch; "
                "write mode = manual first")

    async def write_mode(self, variant: ua.Variant) -> HandlerResult:
        if variant.VariantType != ua.VariantType.String:
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch), f"expected a String, got {variant.VariantType.name}"
        try:
            mode = ControlMode(str(variant.Value).lower())
        except ValueError:
            modes = " | ".join(m.value for m in ControlMode)
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange), f"expected one of {modes}"
        previous = self._mode
        self.core.set_mode(mode, self.batch_time_s(), reason="operator")
        await self._record(f"mode {previous.value} -> {mode.value} (operator)")
        await self._publish_mode()
        return ua.StatusCode(ua.StatusCodes.Good)

    async def write_target(self, variant: ua.Variant) -> HandlerResult:
        if variant.VariantType not in (ua.VariantType.Double, ua.VariantType.Float) or isinstance(variant.Value, list):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch), f"expected a Double, got {variant.VariantType.name}"
        value = float(variant.Value)
        t = self.plan.target
        if not (math.isfinite(value) and t.low <= value <= t.high):
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange), f"expected {t.low:g}..{t.high:g} {t.unit.symbol}"
        self.core.target_value = value
        await self._record(f"target {t.name} = {value:g} {t.unit.symbol} (operator)")
        await self._nodes.set(f"target_{t.name}", value)
        return ua.StatusCode(ua.StatusCodes.Good)

    async def start_batch(self) -> None:
        if self._batch_start is not None:
            raise MethodRefused(ua.StatusCodes.BadInvalidState, "a batch is running; StopBatch first")
        tags = self._tag_values()
        missing = [k for k, v in self.core.measurements(tags).items() if v is None]
        if missing:
            await self._record(f"StartBatch refused: no Good measurement of {missing}")
            raise MethodRefused(ua.StatusCodes.BadWaitingForInitialData, f"no Good measurement of {missing}")
        try:
            setpoints, notes = self.core.clip_setpoints(tags)
        except MissingMeasurement:
            raise ua.uaerrors.BadWaitingForInitialData() from None
        for note in notes:
            await self._record(note)
        if self.parameter_sets is not None:
            await self.parameter_sets.at_batch_start()
        self.core.start(tags, setpoints)
        if self.estimator_nodes is not None:
            self.estimator_nodes.batch_started()
        await self._nodes.set("solve_times_ms", [])
        await self._nodes.reset_predictions()
        self._tick = 0
        self._batch_start = self.clock.now()
        await self._record(f"batch started in mode {self._mode.value}, target {self.core.target_value:g} "
                           f"{self.plan.target.unit.symbol}")
        await self._nodes.set("batch_active", True, ua.VariantType.Boolean)
        await self._publish_estimate()

    async def stop_batch(self, reason: str = "operator") -> None:
        if self._batch_start is None:
            return
        await self._record(f"batch stopped at t={self.batch_time_s():.0f} s ({reason}); "
                           "mode manual, holding the last setpoint")
        self._batch_start = None
        self.core.mode = ControlMode.MANUAL
        await self._nodes.set("batch_active", False, ua.VariantType.Boolean)
        await self._publish_mode()

    @property
    def strategy(self) -> str:
        """Who decides the setpoints now: the recipe's name (e.g. ``linear_cooling``) in auto mode, ``mpc`` in MPC
        mode (the recipe stays its fallback), ``manual`` in manual mode."""
        return self.plan.strategy if self._mode is ControlMode.AUTO else self._mode.value

    async def _publish_mode(self) -> None:
        """The ``mode`` node and the ``strategy`` node that follows it."""
        await self._nodes.set("mode", self._mode.value, ua.VariantType.String)
        await self._nodes.set("strategy", self.strategy, ua.VariantType.String)

    def status_text(self) -> str:
        """One-line state for the CLI status line."""
        if self._batch_start is None:
            return f"{self.unit} control: {self._mode.value}, no batch"
        target = f"target {self.plan.target.name} {self.core.target_value:g} {self.plan.target.unit.symbol}"
        return f"{self.unit} control: {self._mode.value}, batch t={self.batch_time_s():.0f} s, {target}"

    def batch_time_s(self) -> float:
        """Plant seconds since StartBatch (0 while no batch runs)."""
        if self._batch_start is None:
            return 0.0
        return self.clock.now() - self._batch_start

    # -- the loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        period = self.plan.estimator_period_s
        idle_wait_s = min(self.clock.wall_seconds(period), 0.05)
        while True:
            if self._batch_start is None:
                await asyncio.sleep(idle_wait_s)
                continue
            start = self._batch_start
            await self.clock.sleep_until(start + self.core.tick_time_s(self._tick + 1))
            if self._batch_start != start:
                continue  # batch stopped or restarted meanwhile
            self._tick = max(self._tick + 1, int((self.clock.now() - start) / period))
            t = self.core.tick_time_s(self._tick)
            try:
                await self._estimate_step()
                # at or past batch end the shrinking horizon has no time left: nothing to decide, the batch stops
                if self.core.decides_at(self._tick):
                    await self._control_step(t)
            except Exception as exc:  # keep the loop alive; say what happened
                await self._record(f"t={t:.0f} s: control step failed: {exc}")
                log.exception("unit %s: control step failed", self.unit)
            await self._nodes.set("batch_time_s", t)
            if self.core.batch_over(t):
                await self.stop_batch(reason="batch duration reached")

    def _tag_values(self) -> TagValues:
        """Each tag's latest usable value (engineering units); None where missing or Bad."""
        return {tag: usable_value(sample) for tag, sample in self._runtime.adapters[self.unit].last_samples.items()}

    async def _estimate_step(self) -> None:
        tags = self._tag_values()
        try:
            inputs = self.core.applied_inputs(tags)
        except MissingMeasurement:
            raise ua.uaerrors.BadWaitingForInitialData() from None
        previous = self._estimate
        estimate = await asyncio.to_thread(self.core.step_estimator, inputs, self.core.measurements(tags))
        await self._publish_estimate()
        if self.alarms is not None:
            await self.alarms.estimate(estimate)
        if self.parameter_sets is not None:
            await self.parameter_sets.estimated(estimate)
        if self.surrogate_watch is not None and previous is not None:
            await self.surrogate_watch.update(previous.time_s, dict(previous.states), inputs,
                                              {**self.core.parameter_values, **previous.parameters},
                                              self.plan.estimator_period_s,
                                              getattr(self.plan.nmpc, "prediction_model", "physics"))

    async def _control_step(self, t: float) -> None:
        tags = self._tag_values()
        result = await self._solve(t) if self._mode is ControlMode.MPC else None
        decision = self.core.decide(t, tags, result)
        if self._mode is ControlMode.MANUAL:
            if self.alarms is not None:
                await self.alarms.fallback([])
            return
        for text in decision.event_texts:
            await self._record(text)
        if self.alarms is not None:
            assert self._supervisor is not None
            await self.alarms.supervisor_step(self._supervisor, list(decision.events))
        for cmd in decision.commands:
            tag, value = self.core.tag_value(cmd)
            unit = self.core.binding(cmd.name).unit
            try:
                await self._runtime.write_setpoint(self.unit, tag, value, source=setpoint_source(cmd))
            except (WriteRefused, WriteOutcomeUnknown) as exc:
                what = "outcome unknown" if isinstance(exc, WriteOutcomeUnknown) else "not written"
                await self._record(f"t={t:.0f} s: setpoint {tag} = {value:.4g} {what}: {exc.message}")
                continue
            self.core.written()
            log.info("unit %s: %s = %.4g %s (%s)", self.unit, tag, value, unit.symbol, cmd.reason)
        await self._publish_counters()

    async def _solve(self, t: float) -> NmpcResult | None:
        wall_budget = min(self.plan.solve_deadline_s,
                          0.9 * self.clock.wall_seconds(self.plan.controller_period_s)) + 1.0
        if self._solve_in_flight is not None and not self._solve_in_flight.done():
            # a solve past its deadline still runs in its thread: never start another on the same solver
            await self._nodes.set("solve_status", "skipped: previous solve still running", ua.VariantType.String)
            return None
        solve = asyncio.ensure_future(asyncio.to_thread(self.core.solve_call(t)))
        solve.add_done_callback(lambda f: f.cancelled() or f.exception())  # a late failure is not "never retrieved"
        self._solve_in_flight = solve
        try:
            result = await asyncio.wait_for(asyncio.shield(solve), wall_budget)
        except TimeoutError:
            self.core.solve_failed()
            await self._nodes.set("solve_status", "timeout", ua.VariantType.String)
            return None
        except Exception as exc:
            self.core.solve_failed()
            await self._record(f"t={t:.0f} s: NMPC raised {exc}")
            await self._nodes.set("solve_status", f"error: {exc}"[:200], ua.VariantType.String)
            return None
        self.core.solve_finished(result)
        switches, self._prediction_events_seen = prediction_switches(self.plan.nmpc, self._prediction_events_seen)
        for event in switches:
            await self._record(f"t={event.time_s:.0f} s: NMPC prediction model -> {event.used}: {event.reason}")
        await self._nodes.set("solve_times_ms", list(self.solve_times_ms))
        await self._publish_solve(result, t)
        return result

    # -- publishing -------------------------------------------------------------------------------
    async def _publish_estimate(self) -> None:
        outputs, factors = self.core.published_estimate()
        for name, (value, std) in outputs.items():
            await self._nodes.set(f"estimated_{name}", value if math.isfinite(value) else None,
                                  status=ua.StatusCodes.Good if math.isfinite(value) else ua.StatusCodes.BadOutOfRange)
            await self._nodes.set(f"estimated_{name}_std", std)
        for name, (factor, std) in factors.items():
            await self._nodes.set(f"estimated_{name}_factor", factor)
            await self._nodes.set(f"estimated_{name}_factor_std", std)
        if self.estimator_nodes is not None:
            for text in await self.estimator_nodes.publish(self.core):
                await self._record(text)

    async def _publish_solve(self, result: NmpcResult, t: float) -> None:
        n = self._nodes
        await n.set("solve_time_ms", result.solve_time_s * 1000.0)
        await n.set("solve_status", result.status, ua.VariantType.String)
        traj = result.trajectory
        await n.set("predicted_time_s", [float(v - t) for v in traj.times_s])
        target = self.plan.target
        await n.set(f"predicted_{target.name}", [target.unit.from_si(float(v)) for v in traj.outputs[target.output]])
        for m in self.plan.manipulated:
            await n.set(f"predicted_{m.input}", [m.to_tag(float(v)) for v in traj.inputs[m.input]])

    async def _publish_counters(self) -> None:
        for name, value in self.counters.items():
            await self._nodes.set(name, value, ua.VariantType.UInt32)

    async def record_event(self, text: str, source: str = "control") -> None:
        """Record an event of a component attached to this loop (e.g. a surrogate drift; ``source``: what the
        historian's event row names as its origin, e.g. ``parameter_set``)."""
        await self._record(text, source)

    async def _record(self, text: str, source: str = "control") -> None:
        """Keep, log and publish (``last_event``) what the loop did or refused; an event of the unit in the
        historian (origin ``source``)."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self.events.append(text)
        log.info("unit %s: %s", self.unit, text)
        if self._runtime.historian is not None:
            self._runtime.historian.record_event(self.unit, text, source=source)
        await self._nodes.set("last_event", f"{stamp} {text}"[:500], ua.VariantType.String)


def usable_value(sample: Sample | None) -> float | None:
    """Engineering value of a sample whose quality is Good or Uncertain; ``None`` when missing or Bad."""
    if sample is None or sample.value is None or sample.quality.is_bad or not math.isfinite(sample.value):
        return None
    return sample.value
