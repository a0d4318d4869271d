"""Switching a unit's parameter set in the running twin: the ApplyParameterSet / RollbackParameterSet actions, the
switch at a batch start, and the NIS nodes.

Everything that predicts with the unit's model reads the deployed set from one place, the control core
(:meth:`controllers.batch_control.BatchControl.use_parameter_set` / ``model_parameters``): the estimator is made
with it at StartBatch, the NMPC solves with it (under the estimator's online estimates), the surrogate watch
compares with it, forecasts start from it. So they switch together, and only at a batch start — a switch asked for
while a batch runs is *pending* (``model.pending_parameter_set``) until the next StartBatch; with no batch running
it happens at once. Every switch is an event of the unit (log, ``control.last_event``, the historian's events)
naming the old and new set (historian origin ``parameter_set``: the ``parameter_set`` node's history, read with
HistoryRead events on the unit); the method calls are audited with both ids.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import NoReturn

from asyncua import ua

from controllers.batch_control import BatchControl
from process_models.estimator import Estimate
from process_models.innovation_consistency import NisBand
from twin_server.alarms.innovation_alarm import InnovationAlarm
from twin_server.method_calls import CALLER, MethodRefused, record_change
from twin_server.model_nodes import ModelNodes
from twin_server.parameter_deployment import ParameterDeployment, SwitchRequest

EVENT_SOURCE = "parameter_set"
"""Origin of the unit's historian events of parameter-set switches (HistoryRead events: SourceName
``<unit> parameter_set``)."""
VALUE_EVENT_SOURCE = "parameter_set_value"
"""Origin of the historian rows that hold the ``parameter_set`` node's values (one per change of the deployed set,
the set id as the message), answered as that node's raw history
(:meth:`twin_server.historian.service.Historian.historize_text`)."""


class ParameterSetSwitch:
    """One unit's deployed parameter set, joined to its control core and ``model`` nodes."""

    def __init__(self, unit: str, deployment: ParameterDeployment, nodes: ModelNodes, core: BatchControl,
                 batch_running: Callable[[], bool], record: Callable[[str, str], Awaitable[None]],
                 band: NisBand | None = None) -> None:
        self.unit = unit
        self.deployment = deployment
        self.nodes = nodes
        self.core = core
        self._batch_running = batch_running
        self._record = record
        self.band = band or NisBand()
        self.innovation_alarm: InnovationAlarm | None = None
        """The unit's ``parameter_set_mismatch`` condition (set by the server when the line has alarms)."""
        self.record_value: Callable[[str], None] | None = None
        """Keeps each new value of the ``parameter_set`` node in the historian (:meth:`keep_history`)."""
        self._recorded_id: str | None = None

    async def build(self) -> None:
        """The ``model`` nodes and methods, the deployed set in the core and on the nodes."""
        await self.nodes.build(self.deployment.declaration_hash, self.apply, self.rollback)
        await self._record_notes()
        await self._use_deployed()
        last = self.deployment.history[-1]
        await self._record(f"twin start: parameter set {last.set_id} (deployed {last.at} by {last.by})", EVENT_SOURCE)

    def keep_history(self, record_value: Callable[[str], None]) -> None:
        """From now on keep every new value of the ``parameter_set`` node with ``record_value`` (the historian),
        starting with the set deployed now."""
        self.record_value = record_value
        self._recorded_id = self.deployment.deployed.id
        record_value(self._recorded_id)

    async def _record_notes(self) -> None:
        """What the deployment found and did on its own (a set dropped from the history), as events."""
        notes, self.deployment.notes = self.deployment.notes, []
        for note in notes:
            await self._record(note, EVENT_SOURCE)

    async def _use_deployed(self) -> None:
        deployed = self.deployment.deployed
        self.core.use_parameter_set(deployed.id, deployed.values)
        if self.innovation_alarm is not None:
            self.innovation_alarm.parameter_set = deployed.id
        await self.nodes.set("parameter_set", deployed.id, ua.VariantType.String)
        if self.record_value is not None and deployed.id != self._recorded_id:
            self.record_value(deployed.id)
            self._recorded_id = deployed.id
        await self.nodes.set("pending_parameter_set", self.deployment.pending_id, ua.VariantType.String)

    # -- method actions (engineer role: twin_server/security) ---------------------------------------------
    async def apply(self, set_id: str) -> None:
        """ApplyParameterSet: refuse (MethodRefused) or switch now / at the next batch start."""
        try:
            problems = self.core.parameter_set_problems(self.deployment.verified(set_id).values)
            if problems:
                raise MethodRefused(ua.StatusCodes.BadOutOfRange, f"parameter set {set_id}: {'; '.join(problems)} "
                                    "([units.<unit>.control] online_parameters / estimate_parameters)")
            request = self.deployment.request_apply(set_id, CALLER.get().name, self._batch_running())
        except MethodRefused as exc:
            await self._refused("ApplyParameterSet", exc)
        await self._answer("ApplyParameterSet", request)

    async def rollback(self) -> None:
        """RollbackParameterSet: back to the previous set (now / at the next batch start) or cancel a pending one."""
        try:
            request = self.deployment.request_rollback(CALLER.get().name, self._batch_running())
        except MethodRefused as exc:
            await self._refused("RollbackParameterSet", exc)
        await self._answer("RollbackParameterSet", request)

    async def _refused(self, method: str, exc: MethodRefused) -> NoReturn:
        """A client sees only the status code: the reason goes to the unit's events (``control/last_event``, the
        historian) as well as to the audit entry."""
        await self._record(f"{method} refused ({ua.StatusCode(exc.code).name}) for {CALLER.get().name}: "
                           f"{exc.reason}", EVENT_SOURCE)
        raise exc

    async def _answer(self, method: str, request: SwitchRequest) -> None:
        if request.deferred:
            note = f"{method}: parameter set {request.old_id} -> {request.new_id} at the next batch start"
        elif request.old_id == request.new_id and method == "ApplyParameterSet":
            note = f"{method}: parameter set {request.old_id} stays (already deployed; any pending switch cancelled)"
        elif request.old_id == request.new_id:
            note = f"{method}: pending switch cancelled; parameter set {request.old_id} stays"
        else:
            note = f"{method}: parameter set {request.old_id} -> {request.new_id} (no batch running: at once)"
        await self._record(note, EVENT_SOURCE)
        await self._use_deployed()
        record_change(request.old_id, request.new_id, note)

    # -- hooks of the control loop ------------------------------------------------------------------------
    async def at_batch_start(self) -> None:
        """Before StartBatch builds the estimator: carry out a pending switch; the NIS count starts again."""
        request = self.deployment.switch_pending()
        await self._record_notes()
        if request is not None:
            await self._record(f"batch start: parameter set {request.old_id} -> {request.new_id} (pending switch)",
                               EVENT_SOURCE)
            await self._use_deployed()
        if self.innovation_alarm is not None:
            self.innovation_alarm.restart()

    async def estimated(self, estimate: Estimate) -> None:
        """After an estimator step: the NIS and its band on the nodes, the ``parameter_set_mismatch`` alarm."""
        if estimate.nis is None or estimate.nis_dof < 1:
            return
        low, high = self.band.limits(estimate.nis_dof)
        finite = math.isfinite(estimate.nis)
        await self.nodes.set("innovation_nis", estimate.nis if finite else None,
                             status=ua.StatusCodes.Good if finite else ua.StatusCodes.BadOutOfRange)
        await self.nodes.set("innovation_nis_low", low)
        await self.nodes.set("innovation_nis_high", high)
        await self.nodes.set("innovation_dof", estimate.nis_dof, ua.VariantType.UInt32)
        if self.innovation_alarm is not None:
            await self.innovation_alarm.update(estimate)
