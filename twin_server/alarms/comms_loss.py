"""Communication-loss alarm per unit, as an OPC UA OffNormalAlarmType condition (OPC 10000-9 §5.8.23).

Each unit gets a condition object ``<line>.<unit>.comms_loss_alarm`` (HasComponent of the unit, type
OffNormalAlarmType). The alarm is Active while the unit's PLC is not connected (``plc_connected`` False).
Its events (ActiveState, AckedState, Retain, Severity 700, the unit as SourceNode) are published on the Server
object, where SCADA clients subscribe. Operators (and up) acknowledge it with the standard
``Acknowledge(EventId, Comment)`` method (i=9111), which is audited with the comment; ``ConditionRefresh``
(i=3875) re-sends every retained condition to the caller's subscription between RefreshStart/RefreshEnd events.
A condition is retained while it is active or not yet acknowledged.

Who may do what: subscribing to alarm events — viewer; Acknowledge — operator; ConditionRefresh — viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua

from twin_server.address_space import object_item
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
from twin_server.security.sessions import CURRENT_CALLER, client_label, role_label, user_label

log = logging.getLogger("linetwin.alarms")

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

    @property
    def retain(self) -> bool:
        return self.active or not self.acked


class CommsLossAlarms:
    """Builds the condition nodes, watches each unit's connection and answers Acknowledge / ConditionRefresh."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit_nodes: dict[str, ua.NodeId],
                 connected: Any, audit: AuditTrail, poll_s: float = 0.1) -> None:
        self._server = server
        self._idx = namespace_index
        self._line = line
        self._unit_nodes = unit_nodes
        self._connected = connected
        """``unit → bool``: whether the unit's PLC is connected now."""
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
            items.append((unit, unit_node, nid, item))
        results = await self._server.iserver.isession.add_nodes([i[3] for i in items])
        for (unit, unit_node, nid, _), res in zip(items, results, strict=True):
            res.StatusCode.check()
            gen = await self._server.get_event_generator(ua.NodeId(ua.ObjectIds.OffNormalAlarmType),
                                                         emitting_node=ua.NodeId(ua.ObjectIds.Server))
            gen.event.SourceNode = unit_node
            gen.event.SourceName = unit
            self.conditions[nid] = _Condition(unit, nid, unit_node, gen)
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

    async def _watch(self) -> None:
        while True:
            for cond in self.conditions.values():
                active = not self._connected(cond.unit)
                if active != cond.active:
                    cond.active = active
                    if active:
                        cond.acked, cond.comment, cond.acked_by = False, "", ""
                    cond.changed = datetime.now(UTC)
                    log.warning("unit %s: communication-loss alarm %s", cond.unit, "ACTIVE" if active else "cleared")
                    await self._publish(cond)
            await asyncio.sleep(self._poll_s)

    async def _publish(self, cond: _Condition, subscription_id: int | None = None) -> None:
        ev = cond.generator.event
        values: dict[str, tuple[object, ua.VariantType]] = {
            "NodeId": (cond.node_id, ua.VariantType.NodeId),
            "ConditionName": ("CommunicationLoss", ua.VariantType.String),
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
            "Severity": (SEVERITY, ua.VariantType.UInt16),
            "Message": (ua.LocalizedText(f"unit {cond.unit}: PLC communication "
                                         f"{'lost' if cond.active else 'restored'}"), ua.VariantType.LocalizedText),
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
