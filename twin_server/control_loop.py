"""A unit's control loop in the twin: estimator and controller at their own periods, from the mirrored
tags, writing setpoint commands through the unit's PLC adapter.

Clock: the loop's time is the wall clock × ``time_scale`` since StartBatch (for a HIL bench running N×
faster than real time, time_scale = N keeps the twin's batch clock in plant time). Each estimator tick
(absolute deadlines, no drift) takes the latest samples — only Good/Uncertain ones are used, a Bad tag
counts as missing and the EKF predicts without it — and steps the EKF. Every controller period the
supervisor decides the setpoint: in MPC mode from an NMPC solve run in a worker thread (the OPC UA
server keeps serving), bounded by the solve deadline; a failed, late or non-finite solve is replaced
by the fallback and said so (``last_event``, log). In MANUAL mode the loop writes nothing and tracks
the PLC's read-back, so switching to AUTO/MPC is bumpless. Refused writes (PLC down, limits) are
logged and counted; the loop keeps running and retries at the next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from datetime import UTC, datetime

import numpy as np
from asyncua import ua

from controllers import ControlMode, NmpcResult, Supervisor
from controllers.commands import SetpointCommand
from controllers.control_plan import ControlPlan
from controllers.surrogate_prediction import prediction_switches
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefused
from plc_adapters.sample import Sample
from process_models.estimator import Estimate, ExtendedKalmanFilter
from twin_server.alarms.loop_alarms import LoopAlarms
from twin_server.control_nodes import ControlNodes, PublishedQuantity, WritableControl
from twin_server.method_calls import MethodRefused
from twin_server.runtime import LineRuntime
from twin_server.surrogate_nodes import SurrogateWatch
from twin_server.write_guard import HandlerResult, WriteHandler

EVENTS_KEPT = 1000
"""Events of a loop kept in memory (``UnitControlLoop.events``, ~100 bytes each): the newest 1000 (issue 21)."""

log = logging.getLogger("linetwin.control")


class UnitControlLoop:
    """Estimator + NMPC + supervisor for one unit, exposed through :class:`ControlNodes`."""

    def __init__(self, unit: str, plan: ControlPlan, runtime: LineRuntime, nodes: ControlNodes) -> None:
        self.unit = unit
        self.plan = plan
        self._binding = {m.input: m for m in plan.manipulated}
        self._runtime = runtime
        self._nodes = nodes
        self._mode = ControlMode(plan.initial_mode)
        self._target_value = plan.target.default
        self._task: asyncio.Task[None] | None = None
        self._batch_start_wall: float | None = None
        self._estimator: ExtendedKalmanFilter | None = None
        self._supervisor: Supervisor | None = None
        self._estimate: Estimate | None = None
        self.counters = {"solves": 0, "failed_solves": 0, "setpoints_written": 0, "fallbacks_used": 0}
        self.solve_times_ms: list[float] = []
        self.events: deque[str] = deque(maxlen=EVENTS_KEPT)  # the newest; all are in the log and the historian
        self._prediction_events_seen = 0
        self.surrogate_watch: SurrogateWatch | None = None
        self._tick = 0
        self._solve_in_flight: asyncio.Future[NmpcResult] | None = None  # may outlive its deadline (IPOPT runs on)
        self.alarms: LoopAlarms | None = None
        """The loop's alarm conditions (NMPC fallback in use, estimator divergence), when the server has alarms."""

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
        await self._nodes.set("mode", self._mode.value, ua.VariantType.String)
        await self._nodes.set(f"target_{p.target.name}", self._target_value)
        await self._nodes.set("strategy", p.strategy, ua.VariantType.String)

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- operator actions (OPC UA writes and methods) ----------------------------------------------
    def setpoint_owner(self, tag: str) -> str | None:
        """Why a client may not write ``tag`` now (this loop writes it: auto/mpc mode during a batch), else None."""
        if self._batch_start_wall is None or self._mode is ControlMode.MANUAL:
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
        if self._supervisor is not None:
            self._supervisor.set_mode(mode, self.batch_time_s(), reason="operator")
        await self._record(f"mode {self._mode.value} -> {mode.value} (operator)")
        self._mode = mode
        await self._nodes.set("mode", mode.value, ua.VariantType.String)
        return ua.StatusCode(ua.StatusCodes.Good)

    async def write_target(self, variant: ua.Variant) -> HandlerResult:
        if variant.VariantType not in (ua.VariantType.Double, ua.VariantType.Float) or isinstance(variant.Value, list):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch), f"expected a Double, got {variant.VariantType.name}"
        value = float(variant.Value)
        t = self.plan.target
        if not (math.isfinite(value) and t.low <= value <= t.high):
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange), f"expected {t.low:g}..{t.high:g} {t.unit.symbol}"
        self._target_value = value
        await self._record(f"target {t.name} = {value:g} {t.unit.symbol} (operator)")
        await self._nodes.set(f"target_{t.name}", value)
        return ua.StatusCode(ua.StatusCodes.Good)

    async def start_batch(self) -> None:
        if self._batch_start_wall is not None:
            raise MethodRefused(ua.StatusCodes.BadInvalidState, "a batch is running; StopBatch first")
        measured = self._measurements()
        if any(v is None for v in measured.values()):
            missing = [k for k, v in measured.items() if v is None]
            await self._record(f"StartBatch refused: no Good measurement of {missing}")
            raise MethodRefused(ua.StatusCodes.BadWaitingForInitialData, f"no Good measurement of {missing}")
        x0, std0 = self.plan.initial_estimate({k: v for k, v in measured.items() if v is not None})
        self._estimator = self.plan.make_estimator()
        self._estimate = self._estimator.initialize(x0, std0)
        self.plan.nmpc.reset()
        self._supervisor = Supervisor(self.plan.supervisor_config, await self._initial_setpoints(), mode=self._mode,
                                      start_time_s=0.0, display_units={m.input: m.unit for m in self.plan.manipulated})
        self.counters = dict.fromkeys(self.counters, 0)
        self.solve_times_ms = []
        await self._nodes.set("solve_times_ms", [])
        await self._nodes.reset_predictions()
        self._tick = 0
        self._batch_start_wall = asyncio.get_running_loop().time()
        await self._record(f"batch started in mode {self._mode.value}, target {self._target_value:g} "
                     f"{self.plan.target.unit.symbol}")
        await self._nodes.set("batch_active", True, ua.VariantType.Boolean)
        await self._publish_estimate()

    async def _initial_setpoints(self) -> dict[str, float]:
        """The PLC's current setpoints (read-back), clipped into the supervisor's limits (said so if clipped)."""
        limits = {lim.name: lim for lim in self.plan.supervisor_config.limits}
        samples = self._runtime.adapters[self.unit].last_samples
        out = {}
        for m in self.plan.manipulated:
            value = _usable(samples.get(m.tag), m.to_model)
            if value is None:
                raise ua.uaerrors.BadWaitingForInitialData()
            lim = limits[m.input]
            clipped = min(max(value, lim.lower), lim.upper)
            if clipped != value:
                await self._record(f"{m.tag} read back as {m.to_tag(value):.4g} {m.unit.symbol}, outside the control "
                                   f"limits; the loop starts from {m.to_tag(clipped):.4g} {m.unit.symbol}")
            out[m.input] = clipped
        return out

    async def stop_batch(self, reason: str = "operator") -> None:
        if self._batch_start_wall is None:
            return
        await self._record(f"batch stopped at t={self.batch_time_s():.0f} s ({reason}); "
                           "mode manual, holding the last setpoint")
        self._batch_start_wall = None
        self._mode = ControlMode.MANUAL
        await self._nodes.set("batch_active", False, ua.VariantType.Boolean)
        await self._nodes.set("mode", self._mode.value, ua.VariantType.String)

    def status_text(self) -> str:
        """One-line state for the CLI status line."""
        if self._batch_start_wall is None:
            return f"{self.unit} control: {self._mode.value}, no batch"
        target = f"target {self.plan.target.name} {self._target_value:g} {self.plan.target.unit.symbol}"
        return f"{self.unit} control: {self._mode.value}, batch t={self.batch_time_s():.0f} s, {target}"

    def batch_time_s(self) -> float:
        if self._batch_start_wall is None:
            return 0.0
        return (asyncio.get_running_loop().time() - self._batch_start_wall) * self.plan.time_scale

    # -- the loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wall_period = self.plan.estimator_period_s / self.plan.time_scale
        per_control = max(1, round(self.plan.controller_period_s / self.plan.estimator_period_s))
        while True:
            if self._batch_start_wall is None:
                await asyncio.sleep(min(wall_period, 0.05))
                continue
            start = self._batch_start_wall
            deadline = start + (self._tick + 1) * wall_period
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if self._batch_start_wall != start:
                continue  # batch stopped or restarted meanwhile
            self._tick = max(self._tick + 1, int((loop.time() - start) / wall_period))
            t = self._tick * self.plan.estimator_period_s
            try:
                await self._estimate_step()
                # at or past batch end the shrinking horizon has no time left: nothing to decide, the batch stops
                if (self._tick % per_control == 0 or self._tick == 1) and t < self.plan.batch_duration_s:
                    await self._control_step(t)
            except Exception as exc:  # keep the loop alive; say what happened
                await self._record(f"t={t:.0f} s: control step failed: {exc}")
                log.exception("unit %s: control step failed", self.unit)
            await self._nodes.set("batch_time_s", t)
            if t >= self.plan.batch_duration_s:
                await self.stop_batch(reason="batch duration reached")

    def _measurements(self) -> dict[str, float | None]:
        samples = self._runtime.adapters[self.unit].last_samples
        return {m.output: _usable(samples.get(m.tag), m.to_model) for m in self.plan.measurements}

    def _applied_input(self, name: str) -> float:
        """The value the plant actually gets: the measured tag if Good, else the setpoint read-back."""
        samples = self._runtime.adapters[self.unit].last_samples
        binding = self._binding[name]
        for tag in (binding.measured_tag, binding.tag):
            value = _usable(samples.get(tag) if tag else None, binding.to_model)
            if value is not None:
                return value
        if self._supervisor is not None:
            return self._supervisor.last_written[name]
        raise ua.uaerrors.BadWaitingForInitialData()

    async def _estimate_step(self) -> None:
        assert self._estimator is not None
        inputs = {m.input: self._applied_input(m.input) for m in self.plan.manipulated}
        previous = self._estimate
        self._estimate = await asyncio.to_thread(self._estimator.step, inputs, self._measurements())
        await self._publish_estimate()
        if self.alarms is not None:
            await self.alarms.estimate(self._estimate)
        if self.surrogate_watch is not None and previous is not None:
            await self.surrogate_watch.update(previous.time_s, dict(previous.states), inputs,
                                              dict(previous.parameters), self.plan.estimator_period_s,
                                              getattr(self.plan.nmpc, "prediction_model", "physics"))

    async def _control_step(self, t: float) -> None:
        assert self._supervisor is not None and self._estimate is not None
        sup = self._supervisor
        if self._mode is ControlMode.MANUAL:
            for m in self.plan.manipulated:  # track the PLC so a switch to auto/mpc is bumpless
                sup.set_manual(m.input, self._applied_setpoint(m.input, sup))
            sup.update(t)
            if self.alarms is not None:
                await self.alarms.fallback([])
            return
        result = await self._solve(t) if self._mode is ControlMode.MPC else None
        n_events = len(sup.events)
        commands = sup.update(t, result)
        for event in sup.events[n_events:]:
            self.counters["fallbacks_used"] += 1
            await self._record(f"t={event.time_s:.0f} s {event.mode.value}: {sup.describe(event)}")
        if self.alarms is not None:
            await self.alarms.supervisor_step(sup, sup.events[n_events:])
        for cmd in commands:
            binding = self._binding[cmd.name]
            value = binding.to_tag(cmd.value)
            try:
                await self._runtime.write_setpoint(self.unit, binding.tag, value, source=_setpoint_source(cmd))
            except (WriteRefused, WriteOutcomeUnknown) as exc:
                what = "outcome unknown" if isinstance(exc, WriteOutcomeUnknown) else "not written"
                await self._record(f"t={t:.0f} s: setpoint {binding.tag} = {value:.4g} {what}: {exc.message}")
                continue
            self.counters["setpoints_written"] += 1
            log.info("unit %s: %s = %.4g %s (%s)", self.unit, binding.tag, value, binding.unit.symbol, cmd.reason)
        await self._publish_counters()

    def _applied_setpoint(self, name: str, sup: Supervisor) -> float:
        binding = self._binding[name]
        samples = self._runtime.adapters[self.unit].last_samples
        value = _usable(samples.get(binding.tag), binding.to_model)
        return value if value is not None else sup.last_written[name]

    async def _solve(self, t: float) -> NmpcResult | None:
        assert self._supervisor is not None and self._estimate is not None
        est = self._estimate
        states = {k: v for k, v in est.states.items()}
        refs = {self.plan.target.output: self.plan.target.unit.to_si(self._target_value)}
        wall_budget = min(self.plan.solve_deadline_s,
                          0.9 * self.plan.controller_period_s / self.plan.time_scale) + 1.0
        if self._solve_in_flight is not None and not self._solve_in_flight.done():
            # a solve past its deadline still runs in its thread: never start another on the same solver
            await self._nodes.set("solve_status", "skipped: previous solve still running", ua.VariantType.String)
            return None
        self.counters["solves"] += 1
        solve = asyncio.ensure_future(asyncio.to_thread(
            self.plan.nmpc.step, t, states, self._supervisor.last_written, refs,
            parameters=est.parameters, batch_end_s=self.plan.batch_duration_s))
        solve.add_done_callback(lambda f: f.cancelled() or f.exception())  # a late failure is not "never retrieved"
        self._solve_in_flight = solve
        try:
            result = await asyncio.wait_for(asyncio.shield(solve), wall_budget)
        except TimeoutError:
            self.counters["failed_solves"] += 1
            await self._nodes.set("solve_status", "timeout", ua.VariantType.String)
            return None
        except Exception as exc:
            self.counters["failed_solves"] += 1
            await self._record(f"t={t:.0f} s: NMPC raised {exc}")
            await self._nodes.set("solve_status", f"error: {exc}"[:200], ua.VariantType.String)
            return None
        if not result.success:
            self.counters["failed_solves"] += 1
        for event in prediction_switches(self.plan.nmpc, self._prediction_events_seen):
            self._prediction_events_seen += 1
            await self._record(f"t={event.time_s:.0f} s: NMPC prediction model -> {event.used}: {event.reason}")
        self.solve_times_ms.append(result.solve_time_s * 1000.0)
        await self._nodes.set("solve_times_ms", list(self.solve_times_ms))
        await self._publish_solve(result, t)
        return result

    # -- publishing -------------------------------------------------------------------------------
    async def _publish_estimate(self) -> None:
        est, model = self._estimate, self.plan.model
        if est is None or self._estimator is None:
            return
        x = model.pack_states(est.states)
        inputs = {m.input: self._supervisor.last_written[m.input] if self._supervisor else 0.0
                  for m in self.plan.manipulated}
        u = model.pack_inputs(inputs)
        params = model.declaration.parameter_values({**est.parameters})
        p = np.array([params[n] for n in model.parameter_names])
        y = np.asarray(model.output(x, u, p, est.time_s), dtype=float).ravel()
        jac = np.asarray(model.output_jacobian(x, u, p, est.time_s), dtype=float)
        cov = self._estimator.covariance[: model.nx, : model.nx]
        for o in self.plan.published:
            i = model.output_slices[o.output].start
            value = o.from_si(float(y[i]))
            std = float(np.sqrt(max(jac[i] @ cov @ jac[i], 0.0)))
            std_eu = abs(o.from_si(float(y[i]) + std) - value)
            await self._nodes.set(f"estimated_{o.name}", value if math.isfinite(value) else None,
                                  status=ua.StatusCodes.Good if math.isfinite(value) else ua.StatusCodes.BadOutOfRange)
            await self._nodes.set(f"estimated_{o.name}_std", std_eu)
        nominal = model.declaration.parameter_values()
        for name, value in est.parameters.items():
            await self._nodes.set(f"estimated_{name}_factor", value / nominal[name])
            await self._nodes.set(f"estimated_{name}_factor_std", est.parameter_std[name] / nominal[name])

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

    async def record_event(self, text: str) -> None:
        """Record an event of a component attached to this loop (e.g. a surrogate drift)."""
        await self._record(text)

    async def _record(self, text: str) -> None:
        """Keep, log and publish (``last_event``) what the loop did or refused."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self.events.append(text)
        log.info("unit %s: %s", self.unit, text)
        if self._runtime.historian is not None:
            self._runtime.historian.record_event(self.unit, text)
        await self._nodes.set("last_event", f"{stamp} {text}"[:500], ua.VariantType.String)


def _setpoint_source(cmd: SetpointCommand) -> str:
    """Who decided a command, for the historian: fallback, mpc, recipe (auto mode) or operator (manual)."""
    if cmd.reason.startswith("fallback"):
        return "fallback"
    return {ControlMode.MPC: "mpc", ControlMode.AUTO: "recipe"}.get(cmd.source_mode, "operator")


def _usable(sample: Sample | None, convert: object) -> float | None:
    """SI value of a sample whose quality is Good or Uncertain; ``None`` when missing or Bad."""
    if sample is None or sample.value is None or sample.quality.is_bad or not math.isfinite(sample.value):
        return None
    return convert(sample.value)  # type: ignore[operator]
