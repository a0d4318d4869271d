"""The twin's OPC UA conditions (OPC 10000-9): communication loss per unit and limit alarms per tag.

- Communication loss: each unit gets ``<line>.<unit>.comms_loss_alarm`` (OffNormalAlarmType, §5.8.23), Active
  while the unit's PLC is not connected (``plc_connected`` False), severity 700.
- Limits: each ``[alarms.<unit>.<tag>]`` of the line config gets ``<line>.<unit>.<tag>_limit_alarm``
  (ExclusiveLimitAlarmType, §5.8.18) with ``LimitState`` HighHigh / High / Low / LowLow (:mod:`.limits`).

Both are HasComponent of the unit, which is their SourceNode. Events (ActiveState, AckedState, Retain,
Severity, Message) are published on the Server object, where SCADA clients subscribe. Operators (and up)
acknowledge them with the standard ``Acknowledge(EventId, Comment)`` method (i=9111), audited with the comment;
``ConditionRefresh`` (i=3875) re-sends every retained condition to the caller's subscription between
RefreshStart/RefreshEnd events.
A condition is retained while it is active or not yet acknowledged.

Who may do what: subscribing to alarm events — viewer; Acknowledge — operator; ConditionRefresh — viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua

from twin_server.address_space import object_item
from twin_server.alarms.limits import LEVELS, STATE_NAMES, LimitAlarmSpec, LimitMonitor
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.security.sessions import CURRENT_CALLER, client_label, role_label, user_label

log = logging.getLogger("linetwin.alarms")

Evaluation = tuple[bool, str, int, dict[str, tuple[object, ua.VariantType]], str]
"""``(active, state, severity, extra event fields, message)`` of a condition now."""
Evaluator = Callable[[], "Evaluation | None"]

SEVERITY = 700
ACKNOWLEDGE = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
CONDITION_REFRESH = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)


@dataclass
class _Condition:
    unit: str
    node_id: ua.NodeId
    source: ua.NodeId
    generator: Any
    active: bool = False
    acked: bool = True
    comment: str = ""
    acked_by: str = ""
    last_event_id: bytes = b""
    changed: datetime = field(default_factory=lambda: datetime.now(UTC))
    name: str = ""
    evaluate: Evaluator | None = None
    state: str = ""
    severity: int = SEVERITY
    extra: dict[str, tuple[object, ua.VariantType]] = field(default_factory=dict)
    message: str = ""

    @property
    def retain(self) -> bool:
        return self.active or not self.acked


class TwinAlarms:
    """Builds the condition nodes, evaluates them, answers Acknowledge / ConditionRefresh."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit_nodes: dict[str, ua.NodeId],
                 connected: Any, audit: AuditTrail, poll_s: float = 0.1,
                 limits: tuple[LimitAlarmSpec, ...] = ()) -> None:
        self._server = server
        self._idx = namespace_index
        self._line = line
        self._unit_nodes = unit_nodes
        self._connected = connected
        """``unit → bool``: whether the unit's PLC is connected now."""
        self._limits = limits
        self._audit = audit
        self._poll_s = poll_s
        self.conditions: dict[ua.NodeId, _Condition] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh: tuple[Any, Any] | None = None

    async def build(self) -> None:
        """Create the condition nodes and bind Acknowledge / ConditionRefresh (before ``server.start``)."""
        items = []
        for unit, unit_node in self._unit_nodes.items():
            nid = ua.NodeId(f"{self._line}.{unit}.comms_loss_alarm", self._idx)
            item = object_item(nid, self._idx, "comms_loss_alarm", unit_node,
                               ua.NodeId(ua.ObjectIds.OffNormalAlarmType),
                               f"PLC communication loss of unit {unit} (OffNormalAlarm)")
            items.append((unit, unit_node, nid, item, ua.ObjectIds.OffNormalAlarmType, "CommunicationLoss",
                          self._comms_evaluator(unit)))
        for spec in self._limits:
            unit_node = self._unit_nodes[spec.unit]
            nid = ua.NodeId(f"{self._line}.{spec.unit}.{spec.tag}_limit_alarm", self._idx)
            item = object_item(nid, self._idx, f"{spec.tag}_limit_alarm", unit_node,
                               ua.NodeId(ua.ObjectIds.ExclusiveLimitAlarmType),
                               f"Limit alarm of {spec.unit}.{spec.tag} (ExclusiveLimitAlarm)")
            items.append((spec.unit, unit_node, nid, item, ua.ObjectIds.ExclusiveLimitAlarmType,
                          f"{spec.tag}Limit", self._limit_evaluator(spec)))
        results = await self._server.iserver.isession.add_nodes([i[3] for i in items])
        for (unit, unit_node, nid, _, type_id, name, evaluate), res in zip(items, results, strict=True):
            res.StatusCode.check()
            gen = await self._server.get_event_generator(ua.NodeId(type_id),
                                                         emitting_node=ua.NodeId(ua.ObjectIds.Server))
            gen.event.SourceNode = unit_node
            gen.event.SourceName = unit
            self.conditions[nid] = _Condition(unit, nid, unit_node, gen, name=name, evaluate=evaluate)
        self._server.iserver.aspace.add_method_callback(ACKNOWLEDGE, self._acknowledge)
        self._server.iserver.aspace.add_method_callback(CONDITION_REFRESH, self._condition_refresh)
        start = await self._server.get_event_generator(ua.NodeId(ua.ObjectIds.RefreshStartEventType))
        end = await self._server.get_event_generator(ua.NodeId(ua.ObjectIds.RefreshEndEventType))
        self._refresh = (start, end)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="linetwin-comms-loss-alarms")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _comms_evaluator(self, unit: str) -> Evaluator:
        def evaluate() -> Evaluation:
            active = not self._connected(unit)
            return active, "lost" if active else "", SEVERITY, {}, f"unit {unit}: PLC communication " + (
                "lost" if active else "restored")
        return evaluate

    def _limit_evaluator(self, spec: LimitAlarmSpec) -> Evaluator:
        monitor = LimitMonitor(spec)
        node = ua.NodeId(f"{self._line}.{spec.unit}.{spec.tag}", self._idx)
        aspace = self._server.iserver.aspace
        fields: dict[str, tuple[object, ua.VariantType]] = {
            f"{STATE_NAMES[lvl]}Limit": (spec.limit(lvl), ua.VariantType.Double)
            for lvl in LEVELS if spec.limit(lvl) is not None}

        def evaluate() -> Evaluation | None:
            dv = aspace.read_attribute_value(node, ua.AttributeIds.Value)
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            value = dv.Value.Value if good and dv.Value is not None else None
            monitor.update(float(value) if isinstance(value, int | float) else None)
            state = monitor.state
            extra = dict(fields)
            if state is not None:
                extra["LimitState/CurrentState"] = (ua.LocalizedText(STATE_NAMES[state]), ua.VariantType.LocalizedText)
            text = (f"{spec.unit}.{spec.tag} {STATE_NAMES[state]} limit {spec.limit(state):g} exceeded (value "
                    f"{value:g})" if state is not None and isinstance(value, int | float)
                    else f"{spec.unit}.{spec.tag} back within limits")
            return state is not None, state or "", monitor.severity(), extra, text
        return evaluate

    async def _watch(self) -> None:
        while True:
            for cond in self.conditions.values():
                result = cond.evaluate() if cond.evaluate is not None else None
                if result is None:
                    continue
                active, state, severity, extra, message = result
                if (active, state) != (cond.active, cond.state):
                    if active and not cond.active:
                        cond.acked, cond.comment, cond.acked_by = False, "", ""
                    cond.active, cond.state, cond.severity, cond.extra, cond.message = (active, state, severity,
                                                                                         extra, message)
                    cond.changed = datetime.now(UTC)
                    log.warning("%s: %s", cond.node_id.Identifier, message)
                    await self._publish(cond)
            await asyncio.sleep(self._poll_s)

    async def _publish(self, cond: _Condition, subscription_id: int | None = None) -> None:
        ev = cond.generator.event
        values: dict[str, tuple[object, ua.VariantType]] = {
            "NodeId": (cond.node_id, ua.VariantType.NodeId),
            "ConditionName": (cond.name, ua.VariantType.String),
            "EnabledState": (ua.LocalizedText("Enabled"), ua.VariantType.LocalizedText),
            "EnabledState/Id": (True, ua.VariantType.Boolean),
            "ActiveState": (ua.LocalizedText("Active" if cond.active else "Inactive"), ua.VariantType.LocalizedText),
            "ActiveState/Id": (cond.active, ua.VariantType.Boolean),
            "ActiveState/TransitionTime": (cond.changed, ua.VariantType.DateTime),
            "AckedState": (ua.LocalizedText("Acknowledged" if cond.acked else "Unacknowledged"),
                           ua.VariantType.LocalizedText),
            "AckedState/Id": (cond.acked, ua.VariantType.Boolean),
            "Retain": (cond.retain, ua.VariantType.Boolean),
            "Comment": (ua.LocalizedText(cond.comment), ua.VariantType.LocalizedText),
            "ClientUserId": (cond.acked_by, ua.VariantType.String),
            "Severity": (cond.severity, ua.VariantType.UInt16),
            "Message": (ua.LocalizedText(cond.message), ua.VariantType.LocalizedText),
            **cond.extra,
        }
        for name, (value, vtype) in values.items():
            setattr(ev, name, value)
            ev.data_types[name] = vtype
        await cond.generator.trigger(subscription_id=subscription_id)
        cond.last_event_id = ev.EventId.Value if isinstance(ev.EventId, ua.Variant) else ev.EventId

    async def _acknowledge(self, parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        user = CURRENT_CALLER.get()
        cond = self.conditions.get(parent)
        if cond is None:
            return ua.StatusCode(ua.StatusCodes.BadMethodInvalid)
        if len(args) < 2:
            return ua.StatusCode(ua.StatusCodes.BadArgumentsMissing)
        if len(args) > 2:
            return ua.StatusCode(ua.StatusCodes.BadTooManyArguments)
        event_id, comment = (a.Value if isinstance(a, ua.Variant) else a for a in args)
        text = comment.Text if isinstance(comment, ua.LocalizedText) else (comment or "")
        if not isinstance(event_id, bytes):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        status = ua.StatusCodes.Good
        if event_id != cond.last_event_id:
            status = ua.StatusCodes.BadEventIdUnknown
        elif cond.acked:
            status = ua.StatusCodes.BadConditionBranchAlreadyAcked
        code = ua.StatusCode(status)
        self._audit.record(AuditEntry(
            action="acknowledge", user=user_label(user), role=role_label(user), client=client_label(user),
            node=str(cond.node_id.Identifier),
            outcome=AuditOutcome.ACCEPTED if code.is_good() else AuditOutcome.REFUSED, status=code.name,
            old_value="Acknowledged" if cond.acked else "Unacknowledged",
            new_value="Acknowledged", reason=str(text)))
        if not code.is_good():
            return code
        cond.acked, cond.comment, cond.acked_by = True, str(text), user_label(user)
        await self._publish(cond)
        return []

    async def _condition_refresh(self, parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        if len(args) != 1:
            return ua.StatusCode(ua.StatusCodes.BadArgumentsMissing if not args else ua.StatusCodes.BadTooManyArguments)
        sub_id = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if not isinstance(sub_id, int):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        assert self._refresh is not None
        start, end = self._refresh
        await start.trigger(subscription_id=sub_id)
        for cond in self.conditions.values():
            if cond.retain:
                await self._publish(cond, subscription_id=sub_id)
        await end.trigger(subscription_id=sub_id)
        return []
