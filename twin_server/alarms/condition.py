"""One alarm condition as OPC UA sees it: its node, its source, and the event that reports its state.

The event fields are the standard ones of the condition's type (namespace 0): BaseEventType (EventId, EventType,
SourceNode, SourceName, Time, ReceiveTime, Message, Severity), ConditionType (ConditionId — the select clause with
the NodeId attribute —, ConditionName, Retain, EnabledState/Id, Quality, LastSeverity, Comment, ClientUserId),
AcknowledgeableConditionType (AckedState/Id, ConfirmedState/Id), AlarmConditionType (ActiveState/Id, InputNode,
OnDelay), LimitAlarmType (HighHighLimit, HighLimit, LowLimit, LowLowLimit, …Deadband) and ExclusiveLimitAlarmType
(LimitState/CurrentState and its Id).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asyncua import ua
from asyncua.common import event_objects

from twin_server.alarms.condition_state import ConditionState
from twin_server.alarms.limits import LimitAlarmConfig, LimitState


class ConditionKind(StrEnum):
    LIMIT = "limit"
    """ExclusiveLimitAlarmType: a tag beyond HH/H/L/LL."""
    OFF_NORMAL = "off_normal"
    """OffNormalAlarmType: a state that is not the normal one (PLC link down)."""
    ALARM = "alarm"
    """AlarmConditionType: anything else (NMPC fallback in use, estimator divergence)."""


_TYPE_OF = {ConditionKind.LIMIT: ua.ObjectIds.ExclusiveLimitAlarmType,
            ConditionKind.OFF_NORMAL: ua.ObjectIds.OffNormalAlarmType,
            ConditionKind.ALARM: ua.ObjectIds.AlarmConditionType}

_STATE_NAMES = {"Active": ("Active", "Inactive"), "Acked": ("Acknowledged", "Unacknowledged"),
                "Confirmed": ("Confirmed", "Unconfirmed"), "Enabled": ("Enabled", "Disabled")}

_LIMIT_STATE_IDS = {LimitState.HIGH_HIGH: ua.ObjectIds.ExclusiveLimitStateMachineType_HighHigh,
                    LimitState.HIGH: ua.ObjectIds.ExclusiveLimitStateMachineType_High,
                    LimitState.LOW: ua.ObjectIds.ExclusiveLimitStateMachineType_Low,
                    LimitState.LOW_LOW: ua.ObjectIds.ExclusiveLimitStateMachineType_LowLow}

RECENT_EVENT_IDS = 32
"""How many of a condition's latest EventIds Acknowledge/Confirm accept."""


@dataclass
class AlarmCondition:
    """A configured condition: identity, source, notifier chain, static fields and its changing state."""

    name: str
    """ConditionName, e.g. ``temperature_limit``, ``comms_loss``."""
    kind: ConditionKind
    node_id: ua.NodeId
    """ConditionId: the condition's object in the address space."""
    unit: str
    source_node: ua.NodeId
    source_name: str
    notifiers: tuple[ua.NodeId, ...]
    """Every notifier whose event subscribers see this condition: unit, line, Server."""
    severity: int
    input_node: ua.NodeId | None = None
    limits: LimitAlarmConfig | None = None
    state: ConditionState = field(default_factory=ConditionState)
    last_event_id: bytes = b""
    recent_event_ids: deque[bytes] = field(default_factory=lambda: deque(maxlen=RECENT_EVENT_IDS))

    @property
    def type_id(self) -> ua.NodeId:
        return ua.NodeId(_TYPE_OF[self.kind])

    @property
    def label(self) -> str:
        """The condition as the audit trail names it (its string node id)."""
        return str(self.node_id.Identifier)

    def new_event_id(self) -> bytes:
        self.last_event_id = uuid.uuid4().bytes
        self.recent_event_ids.append(self.last_event_id)
        return self.last_event_id

    def build_event(self, emitting_node: ua.NodeId, time: datetime | None = None) -> Any:
        """The event reporting the current state (EventId = :attr:`last_event_id`), for ``emitting_node``."""
        s = self.state
        event = _EVENT_CLASS[self.kind]()
        event.emitting_node = emitting_node
        now = datetime.now(UTC)
        severity = self.severity
        put = event.add_property
        put("EventId", self.last_event_id, ua.VariantType.ByteString)
        put("SourceNode", self.source_node, ua.VariantType.NodeId)
        put("SourceName", self.source_name, ua.VariantType.String)
        put("Time", time or s.changed, ua.VariantType.DateTime)
        put("ReceiveTime", now, ua.VariantType.DateTime)
        put("Message", ua.LocalizedText(s.message or self.name), ua.VariantType.LocalizedText)
        put("Severity", severity, ua.VariantType.UInt16)
        put("LastSeverity", severity, ua.VariantType.UInt16)
        put("NodeId", self.node_id, ua.VariantType.NodeId)
        put("ConditionName", self.name, ua.VariantType.String)
        put("ConditionClassId", ua.NodeId(ua.ObjectIds.ProcessConditionClassType), ua.VariantType.NodeId)
        put("ConditionClassName", ua.LocalizedText("ProcessConditionClassType"), ua.VariantType.LocalizedText)
        put("BranchId", ua.NodeId(), ua.VariantType.NodeId)
        put("Retain", s.retain, ua.VariantType.Boolean)
        put("Quality", ua.StatusCode(ua.StatusCodes.Good), ua.VariantType.StatusCode)
        put("Comment", ua.LocalizedText(s.comment), ua.VariantType.LocalizedText)
        put("ClientUserId", s.comment_user, ua.VariantType.String)
        _two_state(event, "Enabled", True, None)
        _two_state(event, "Active", s.active, s.active_since)
        _two_state(event, "Acked", s.acked, s.acked_time)
        _two_state(event, "Confirmed", s.confirmed, s.confirmed_time)
        put("SuppressedOrShelved", False, ua.VariantType.Boolean)
        if self.input_node is not None:
            put("InputNode", self.input_node, ua.VariantType.NodeId)
        if self.kind is ConditionKind.OFF_NORMAL:
            put("NormalState", ua.NodeId(), ua.VariantType.NodeId)
        if self.limits is not None:
            self._limit_fields(event)
        return event

    def variable_values(self) -> dict[str, ua.Variant]:
        """The condition object's state variables (``ActiveState``, ``ActiveState.Id``, ``Retain``, …; the key is
        the node id suffix after the condition's id), as a client reads them between events."""
        s = self.state
        values = {
            "Retain": ua.Variant(s.retain, ua.VariantType.Boolean),
            "Severity": ua.Variant(self.severity, ua.VariantType.UInt16),
            "Message": ua.Variant(ua.LocalizedText(s.message or self.name), ua.VariantType.LocalizedText),
            "Comment": ua.Variant(ua.LocalizedText(s.comment), ua.VariantType.LocalizedText),
            "ClientUserId": ua.Variant(s.comment_user, ua.VariantType.String),
        }
        for name, value in (("Enabled", True), ("Active", s.active), ("Acked", s.acked), ("Confirmed", s.confirmed)):
            true_text, false_text = _STATE_NAMES[name]
            values[f"{name}State"] = ua.Variant(ua.LocalizedText(true_text if value else false_text),
                                                ua.VariantType.LocalizedText)
            values[f"{name}State.Id"] = ua.Variant(value, ua.VariantType.Boolean)
        return values

    def _limit_fields(self, event: Any) -> None:
        cfg, s = self.limits, self.state
        assert cfg is not None
        put = event.add_property
        for name, value in (("HighHighLimit", cfg.high_high), ("HighLimit", cfg.high), ("LowLimit", cfg.low),
                            ("LowLowLimit", cfg.low_low)):
            if value is not None:
                put(name, value, ua.VariantType.Double)
                put(name.replace("Limit", "Deadband"), cfg.deadband, ua.VariantType.Double)
        put("OnDelay", cfg.on_delay_s * 1000.0, ua.VariantType.Double)
        if s.limit_state is not None:
            put("LimitState/CurrentState", ua.LocalizedText(s.limit_state), ua.VariantType.LocalizedText)
            put("LimitState/CurrentState/Id", ua.NodeId(_LIMIT_STATE_IDS[LimitState(s.limit_state)]),
                ua.VariantType.NodeId)
        else:
            put("LimitState/CurrentState", ua.LocalizedText(""), ua.VariantType.LocalizedText)
            put("LimitState/CurrentState/Id", ua.NodeId(), ua.VariantType.NodeId)


_EVENT_CLASS = {ConditionKind.LIMIT: event_objects.ExclusiveLimitAlarm,
                ConditionKind.OFF_NORMAL: event_objects.OffNormalAlarm,
                ConditionKind.ALARM: event_objects.AlarmCondition}


def _two_state(event: Any, name: str, value: bool, since: datetime | None) -> None:
    """A TwoStateVariableType field: the text (``ActiveState``) and its ``Id`` (and TransitionTime when known)."""
    true_text, false_text = _STATE_NAMES[name]
    event.add_variable(f"{name}State", ua.LocalizedText(true_text if value else false_text),
                       ua.VariantType.LocalizedText)
    event.add_property(f"{name}State/Id", value, ua.VariantType.Boolean)
    event.add_property(f"{name}State/TrueState", ua.LocalizedText(true_text), ua.VariantType.LocalizedText)
    event.add_property(f"{name}State/FalseState", ua.LocalizedText(false_text), ua.VariantType.LocalizedText)
    if since is not None:
        event.add_property(f"{name}State/TransitionTime", since, ua.VariantType.DateTime)
