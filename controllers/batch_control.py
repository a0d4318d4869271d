"""One unit's batch control without I/O: estimator tick, supervisor/NMPC decision and batch clock.

The core of both closed loops:

* the twin's :class:`twin_server.control_loop.UnitControlLoop` (live: tags from the PLC adapter, ticks on a
  wall-paced plant clock, the NMPC solved in a worker thread under a wall deadline, OPC UA nodes), and
* the stepped lockstep loop :func:`hil.stepped_batch.run_stepped_batch` (plant, PLC image, scan, estimator, NMPC
  and supervisor advance together, the NMPC solved synchronously: deterministic for a seed).

Everything here is synchronous and in plant seconds. Tag values come in as the tags' engineering values of usable
samples (Good or Uncertain, finite); ``None`` marks a missing or Bad tag, which the EKF treats as missing (it
predicts without it). Batch clock: estimator tick k is due at plant time ``k · estimator_period_s`` after
StartBatch; the supervisor decides at tick 1 and every ``controller_period_s`` after, never at or past batch end
(a shrinking horizon with no time left has nothing to decide); the batch is over at ``batch_duration_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from controllers.commands import ControlMode, SetpointCommand
from controllers.control_plan import ControlPlan, ManipulatedBinding
from controllers.nmpc import NmpcResult
from controllers.online_parameters import OnlineParameterState, gate
from controllers.supervisor import Supervisor, SupervisorEvent
from process_models.declaration import DeclarationError
from process_models.estimator import Estimate, ExtendedKalmanFilter

TagValues = Mapping[str, float | None]
"""Tag name → engineering value of its latest usable sample (None: missing or Bad)."""


class MissingMeasurement(RuntimeError):
    """A value the loop needs has no usable sample (``missing``: the tags or model outputs without one)."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"no Good measurement of {missing}")


@dataclass(frozen=True)
class Decision:
    """One supervisor decision: the commands to write and the fallback events it raised (with their texts)."""

    commands: tuple[SetpointCommand, ...]
    events: tuple[SupervisorEvent, ...]
    event_texts: tuple[str, ...]


COUNTERS = ("solves", "failed_solves", "setpoints_written", "fallbacks_used")


class BatchControl:
    """Estimator + supervisor (+ NMPC) state of one unit's batch, stepped by its caller in plant time."""

    def __init__(self, plan: ControlPlan, mode: ControlMode | None = None, target_value: float | None = None,
                 wall_deadline: bool = True) -> None:
        self.plan = plan
        self.wall_deadline = wall_deadline
        """True: the supervisor refuses an NMPC result that took longer than the plan's ``solve_deadline_s`` of wall
        time (the live loop, where the plant moves on while the solver runs). False: the stepped lockstep loop,
        where the plant waits for the solve; a solve is still bounded by IPOPT's ``max_cpu_time`` (CPU seconds,
        so the same on an idle and a loaded machine), and a result is never refused for the wall time a busy
        machine took, which would make a seeded batch's KPIs depend on the load."""
        self.mode = ControlMode(plan.initial_mode) if mode is None else mode
        self.target_value = plan.target.default if target_value is None else target_value
        """Batch-end target in the target's engineering unit (e.g. µm)."""
        self._binding = {m.input: m for m in plan.manipulated}
        self.estimator: ExtendedKalmanFilter | None = None
        self.supervisor: Supervisor | None = None
        self.estimate: Estimate | None = None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.solve_times_ms: list[float] = []
        self.last_result: NmpcResult | None = None
        """The last successful NMPC solve of this batch (its plan is what a forecast without a profile follows)."""
        self.per_control = max(1, round(plan.controller_period_s / plan.estimator_period_s))
        self.parameter_set_id = ""
        """Id of the parameter set the estimator and NMPC use ("" until the caller names one: the declaration's)."""
        self.parameter_values: dict[str, float] = {}
        """The deployed set's values (model units) over the declaration's; the estimator's online estimates go over
        these in the NMPC, the published estimate and every other prediction (:meth:`model_parameters`)."""

    # -- parameter set ------------------------------------------------------------------------------
    def use_parameter_set(self, set_id: str, values: Mapping[str, float]) -> None:
        """Run on parameter set ``set_id`` (values in model units; unknown names: KeyError naming them) from the next
        :meth:`start` on: the estimator is made with these values and every NMPC solve uses them. The caller picks
        the moment (the twin: at a batch start, or at once when no batch runs)."""
        unknown = sorted(set(values) - set(self.plan.model.parameter_names))
        if unknown:
            raise KeyError(f"parameter set {set_id}: {unknown} are not parameters of model "
                           f"'{self.plan.model.declaration.name}'")
        self.parameter_set_id = set_id
        self.parameter_values = {name: float(v) for name, v in values.items()}

    def parameter_set_problems(self, values: Mapping[str, float]) -> list[str]:
        """Why the estimator could not start from a set with ``values`` (a value outside its declared bounds, an
        online parameter outside the bounds the plan keeps its estimate in); empty when it can."""
        try:
            full = self.plan.model.declaration.parameter_values(
                {k: v for k, v in values.items() if k in self.plan.model.parameter_names})
        except DeclarationError as exc:
            return [str(exc)]
        return [f"{p.name} = {full[p.name]:g} {p.unit} is outside its online bounds [{p.lower:g}, {p.upper:g}]"
                for p in self.plan.online_parameters if not p.lower <= full[p.name] <= p.upper]

    def deployed_parameters(self) -> dict[str, float]:
        """Every model parameter's deployed value (model units): the declaration's, the deployed set's over them —
        what the NMPC predicts with unless an online value passes the gate (:mod:`controllers.online_parameters`),
        and what forecasts start from."""
        return self.plan.model.declaration.parameter_values(self.parameter_values)

    def model_parameters(self) -> dict[str, float]:
        """Every model parameter a prediction made now uses: the deployed values (:meth:`deployed_parameters`) with
        the estimator's online estimates over them."""
        online = self.estimate.parameters if self.estimate is not None else {}
        return {**self.deployed_parameters(), **online}

    # -- batch clock ------------------------------------------------------------------------------
    def tick_time_s(self, tick: int) -> float:
        """Plant seconds after StartBatch at which estimator tick ``tick`` is due."""
        return tick * self.plan.estimator_period_s

    def decides_at(self, tick: int) -> bool:
        """True when the supervisor decides at ``tick`` (tick 1, then every controller period, before batch end)."""
        return (tick % self.per_control == 0 or tick == 1) and self.tick_time_s(tick) < self.plan.batch_duration_s

    def batch_over(self, batch_time_s: float) -> bool:
        return batch_time_s >= self.plan.batch_duration_s

    # -- tag values → model values ------------------------------------------------------------------
    def measurements(self, tags: TagValues) -> dict[str, float | None]:
        """Model outputs (SI) of the measured tags; None where the tag has no usable value."""
        out: dict[str, float | None] = {}
        for m in self.plan.measurements:
            value = tags.get(m.tag)
            out[m.output] = None if value is None else m.to_model(value)
        return out

    def applied_input(self, name: str, tags: TagValues) -> float:
        """What the plant actually gets (SI): the measured tag if usable, else the setpoint read-back, else the last
        value the supervisor wrote (MissingMeasurement before the first)."""
        binding = self._binding[name]
        for tag in (binding.measured_tag, binding.tag):
            value = tags.get(tag) if tag else None
            if value is not None:
                return binding.to_model(value)
        if self.supervisor is not None:
            return self.supervisor.last_written[name]
        raise MissingMeasurement([binding.tag])

    def applied_inputs(self, tags: TagValues) -> dict[str, float]:
        return {m.input: self.applied_input(m.input, tags) for m in self.plan.manipulated}

    # -- batch --------------------------------------------------------------------------------------
    def start(self, tags: TagValues, initial_setpoints: Mapping[str, float]) -> Estimate:
        """StartBatch: a fresh estimator from the measured tags, a cold NMPC, a supervisor starting from
        ``initial_setpoints`` (SI, inside the limits), counters reset. MissingMeasurement if a measured tag has
        no usable value (nothing changed then)."""
        measured = self.measurements(tags)
        missing = [k for k, v in measured.items() if v is None]
        if missing:
            raise MissingMeasurement(missing)
        x0, std0 = self.plan.initial_estimate({k: v for k, v in measured.items() if v is not None})
        self.estimator = self.plan.make_estimator(parameters=self.parameter_values)
        self.estimate = self.estimator.initialize(x0, std0)
        self.plan.nmpc.reset()
        config = self.plan.supervisor_config
        if not self.wall_deadline:
            config = replace(config, solve_deadline_s=math.inf)
        self.supervisor = Supervisor(config, initial_setpoints, mode=self.mode, start_time_s=0.0,
                                     display_units={m.input: m.unit for m in self.plan.manipulated})
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.solve_times_ms = []
        self.last_result = None
        return self.estimate

    def clip_setpoints(self, tags: TagValues) -> tuple[dict[str, float], list[str]]:
        """The PLC's current setpoints (SI) clipped into the supervisor's limits, and a text per clipped one.
        MissingMeasurement if a setpoint has no read-back."""
        limits = {lim.name: lim for lim in self.plan.supervisor_config.limits}
        out: dict[str, float] = {}
        notes: list[str] = []
        for m in self.plan.manipulated:
            raw = tags.get(m.tag)
            if raw is None:
                raise MissingMeasurement([m.tag])
            value = m.to_model(raw)
            lim = limits[m.input]
            clipped = min(max(value, lim.lower), lim.upper)
            if clipped != value:
                notes.append(f"{m.tag} read back as {m.to_tag(value):.4g} {m.unit.symbol}, outside the control "
                             f"limits; the loop starts from {m.to_tag(clipped):.4g} {m.unit.symbol}")
            out[m.input] = clipped
        return out, notes

    def set_mode(self, mode: ControlMode, batch_time_s: float, reason: str = "operator") -> None:
        if self.supervisor is not None:
            self.supervisor.set_mode(mode, batch_time_s, reason=reason)
        self.mode = mode

    def step_estimator(self, inputs: Mapping[str, float], measurements: Mapping[str, float | None]) -> Estimate:
        """One EKF step with the applied ``inputs`` and the ``measurements`` (SI; None = missing)."""
        assert self.estimator is not None, "start() first"
        self.estimate = self.estimator.step(inputs, measurements)
        return self.estimate

    def published_estimate(self) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
        """The published outputs of the current estimate, ``name → (value, 1σ)`` in their engineering units (σ
        through the output Jacobian and the state covariance), and each estimated parameter relative to its
        nominal value, ``parameter → (estimate / nominal, σ / nominal)``. Both empty before StartBatch."""
        est, model, estimator = self.estimate, self.plan.model, self.estimator
        if est is None or estimator is None:
            return {}, {}
        x = model.pack_states(est.states)
        inputs = {m.input: self.supervisor.last_written[m.input] if self.supervisor else 0.0
                  for m in self.plan.manipulated}
        u = model.pack_inputs(inputs)
        params = self.model_parameters()
        p = np.array([params[n] for n in model.parameter_names])
        y = np.asarray(model.output(x, u, p, est.time_s), dtype=float).ravel()
        jac = np.asarray(model.output_jacobian(x, u, p, est.time_s), dtype=float)
        cov = estimator.covariance[: model.nx, : model.nx]
        out: dict[str, tuple[float, float]] = {}
        factors: dict[str, tuple[float, float]] = {}
        for o in self.plan.published:
            i = model.output_slices[o.output].start
            value = o.from_si(float(y[i]))
            std = float(np.sqrt(max(jac[i] @ cov @ jac[i], 0.0)))
            out[o.name] = (value, abs(o.from_si(float(y[i]) + std) - value))
        nominal = model.declaration.parameter_values()
        for name, value in est.parameters.items():
            factors[name] = (value / nominal[name], est.parameter_std[name] / nominal[name])
        return out, factors

    # -- online parameters ----------------------------------------------------------------------------
    def online_parameter_states(self) -> dict[str, OnlineParameterState]:
        """Each online parameter now: estimate, 1 σ, relative 95 % half-width and whether the NMPC uses it (empty
        before StartBatch)."""
        if self.estimate is None:
            return {}
        return gate(self.estimate.parameters, self.estimate.parameter_std, self.deployed_parameters(),
                    self.plan.online_halfwidth_limit)

    def nmpc_parameters(self) -> dict[str, float]:
        """The online values the NMPC predicts with now (those that pass the gate; the others keep their deployed
        values inside the NMPC)."""
        return {name: s.value for name, s in self.online_parameter_states().items() if s.in_use}

    # -- NMPC -------------------------------------------------------------------------------------
    def solve_call(self, batch_time_s: float, states: Mapping[str, float] | None = None) -> Callable[[], NmpcResult]:
        """The NMPC step for the current estimate as a call (run it in a thread or inline); counts the solve. The
        NMPC gets the online parameters that pass the gate (:meth:`online_parameter_states`); the others keep their
        deployed values. ``states`` (SI, the model's state names): start from these instead of the estimate's
        states (the stepped loop's oracle passes the plant's true state)."""
        assert self.supervisor is not None and self.estimate is not None, "start() first"
        est = self.estimate
        states = dict(est.states) if states is None else dict(states)
        parameters = {**self.deployed_parameters(), **self.nmpc_parameters()}
        previous = dict(self.supervisor.last_written)
        refs = {self.plan.target.output: self.plan.target.unit.to_si(self.target_value)}
        self.counters["solves"] += 1
        nmpc, end = self.plan.nmpc, self.plan.batch_duration_s

        def call() -> NmpcResult:
            return nmpc.step(batch_time_s, states, previous, refs, parameters=parameters, batch_end_s=end)

        return call

    def solve_failed(self) -> None:
        """A solve that raised or missed its deadline."""
        self.counters["failed_solves"] += 1

    def solve_finished(self, result: NmpcResult) -> None:
        if not result.success:
            self.counters["failed_solves"] += 1
        else:
            self.last_result = result
        self.solve_times_ms.append(result.solve_time_s * 1000.0)

    def solve(self, batch_time_s: float, states: Mapping[str, float] | None = None) -> NmpcResult | None:
        """Synchronous NMPC solve (the stepped loop): the result, or None if the solver raised. ``states``: as
        :meth:`solve_call`."""
        call = self.solve_call(batch_time_s, states)
        try:
            result = call()
        except Exception:
            self.solve_failed()
            return None
        self.solve_finished(result)
        return result

    # -- supervisor ---------------------------------------------------------------------------------
    def decide(self, batch_time_s: float, tags: TagValues, result: NmpcResult | None) -> Decision:
        """The supervisor's decision at ``batch_time_s``. MANUAL: track the PLC's setpoints (bumpless switch),
        no command. AUTO/MPC: the justified setpoints (``result``: the NMPC's, None in AUTO or after a failed
        solve)."""
        sup = self.supervisor
        assert sup is not None, "start() first"
        if self.mode is ControlMode.MANUAL:
            for m in self.plan.manipulated:
                raw = tags.get(m.tag)
                sup.set_manual(m.input, m.to_model(raw) if raw is not None else sup.last_written[m.input])
            sup.update(batch_time_s)
            return Decision((), (), ())
        n_events = len(sup.events)
        commands = sup.update(batch_time_s, result)
        events = tuple(sup.events[n_events:])
        self.counters["fallbacks_used"] += len(events)
        texts = tuple(f"t={e.time_s:.0f} s {e.mode.value}: {sup.describe(e)}" for e in events)
        return Decision(tuple(commands), events, texts)

    def binding(self, name: str) -> ManipulatedBinding:
        """The tag binding of manipulated input ``name``."""
        return self._binding[name]

    def tag_value(self, command: SetpointCommand) -> tuple[str, float]:
        """(tag, engineering value) a command is written as."""
        binding = self._binding[command.name]
        return binding.tag, binding.to_tag(command.value)

    def written(self) -> None:
        """A setpoint reached the PLC."""
        self.counters["setpoints_written"] += 1


def setpoint_source(cmd: SetpointCommand) -> str:
    """Who decided a command, for the historian: fallback, mpc, recipe (auto mode) or operator (manual)."""
    if cmd.reason.startswith("fallback"):
        return "fallback"
    return {ControlMode.MPC: "mpc", ControlMode.AUTO: "recipe"}.get(cmd.source_mode, "operator")

