"""The condition methods of OPC 10000-9, bound to the standard method nodes (namespace 0):

- ``Acknowledge(EventId, Comment)`` (AcknowledgeableConditionType, i=9111) and ``Confirm(EventId, Comment)``
  (i=9113), called with the condition as ObjectId. Role: **operator** and up (:attr:`AlarmManager.authorize`,
  allow-all until the security layer plugs in its roles; a refusal is ``BadUserAccessDenied``). Every call,
  accepted or refused, is audited (actions ``acknowledge`` / ``confirm``, the comment as reason).
  ``BadNodeIdInvalid``: the object is not one of the twin's conditions; ``BadEventIdUnknown``: the EventId is not
  one of the condition's latest events; ``BadConditionBranchAlreadyAcked`` / ``…AlreadyConfirmed``;
  ``BadInvalidState``: Confirm before Acknowledge; ``BadInvalidArgument`` (``BadTypeMismatch`` per argument):
  EventId not a ByteString or Comment not a LocalizedText/String.
- ``ConditionRefresh(SubscriptionId)`` (ConditionType, i=3875) and ``ConditionRefresh2(SubscriptionId,
  MonitoredItemId)`` (i=12912), role: **viewer** (anyone who may subscribe). For each event monitored item of the
  subscription (or the one named): a RefreshStartEvent, the current state of every retained condition whose
  notifier chain includes the item's node, then a RefreshEndEvent (§5.5.7). Not audited (it changes nothing).
  ``BadSubscriptionIdInvalid`` / ``BadMonitoredItemIdInvalid`` for unknown ids, ``BadUserAccessDenied`` for a
  subscription of another session.

asyncua binds its own ConditionRefresh, which only replays a condition to the one notifier it was last emitted
from; the callbacks here replace it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncua import Server, ua
from asyncua.common import event_objects

from plc_adapters.asyncua_seam import event_subscription
from twin_server.alarms.condition_state import ConditionRefused
from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.method_calls import CALLER, CALLER_SESSION

if TYPE_CHECKING:
    from twin_server.alarms.condition import AlarmCondition
    from twin_server.alarms.manager import AlarmManager


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(code)


def _comment_text(value: ua.Variant) -> str | None:
    if value.VariantType == ua.VariantType.LocalizedText and not isinstance(value.Value, list):
        return value.Value.Text or "" if value.Value is not None else ""
    if value.VariantType == ua.VariantType.String and not isinstance(value.Value, list):
        return value.Value or ""
    return None


def install_condition_methods(server: Server, manager: AlarmManager) -> None:
    """Bind Acknowledge, Confirm, ConditionRefresh and ConditionRefresh2 to ``manager``'s conditions."""

    async def acknowledge(object_id: ua.NodeId, *args: ua.Variant) -> Any:
        return await _state_method(manager, "acknowledge", object_id, args)

    async def confirm(object_id: ua.NodeId, *args: ua.Variant) -> Any:
        return await _state_method(manager, "confirm", object_id, args)

    async def refresh(object_id: ua.NodeId, *args: ua.Variant) -> Any:
        return await _refresh(server, manager, args, with_item=False)

    async def refresh2(object_id: ua.NodeId, *args: ua.Variant) -> Any:
        return await _refresh(server, manager, args, with_item=True)

    server.link_method(server.get_node(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), acknowledge)
    server.link_method(server.get_node(ua.ObjectIds.AcknowledgeableConditionType_Confirm), confirm)
    server.link_method(server.get_node(ua.ObjectIds.ConditionType_ConditionRefresh), refresh)
    server.link_method(server.get_node(ua.ObjectIds.ConditionType_ConditionRefresh2), refresh2)


async def _state_method(manager: AlarmManager, action: str, object_id: ua.NodeId,
                        args: tuple[ua.Variant, ...]) -> ua.CallMethodResult | list[ua.Variant]:
    caller = CALLER.get()
    cond = manager.conditions.get(object_id)
    comment = _comment_text(args[1]) if len(args) == 2 else None
    node = str(cond.label) if cond is not None else object_id.to_string()

    def audit(outcome: AuditOutcome, code: int, reason: str, old: object = None, new: object = None) -> None:
        manager.audit.record(AuditEntry(action=action, user=caller.name, role=caller.role, node=node,
                                        outcome=outcome, status=ua.StatusCode(code).name, old_value=old,
                                        new_value=new, reason=reason, client=caller.client))

    def refuse(code: int, reason: str, results: list[ua.StatusCode] | None = None) -> ua.CallMethodResult:
        audit(AuditOutcome.REFUSED, code, f"{reason}; comment: {comment}" if comment else reason)
        return ua.CallMethodResult(StatusCode=_status(code), InputArgumentResults=results or [])

    if len(args) < 2:
        return refuse(ua.StatusCodes.BadArgumentsMissing, f"{len(args)} argument(s), EventId and Comment expected")
    if len(args) > 2:
        return refuse(ua.StatusCodes.BadTooManyArguments, f"{len(args)} arguments, EventId and Comment expected")
    event_ok = args[0].VariantType == ua.VariantType.ByteString and isinstance(args[0].Value, bytes)
    if not event_ok or comment is None:
        results = [_status(ua.StatusCodes.Good if ok else ua.StatusCodes.BadTypeMismatch)
                   for ok in (event_ok, comment is not None)]
        return refuse(ua.StatusCodes.BadInvalidArgument, "EventId must be a ByteString, Comment a LocalizedText",
                      results)
    if cond is None:
        return refuse(ua.StatusCodes.BadNodeIdInvalid, "not one of the twin's alarm conditions")
    session = CALLER_SESSION.get()
    denied = manager.authorize(getattr(session, "user", None))
    if denied is not None:
        return refuse(denied, f"{action} needs the operator role or higher")
    if args[0].Value not in cond.recent_event_ids:
        return refuse(ua.StatusCodes.BadEventIdUnknown, "EventId is not one of this condition's latest events")
    old = _state_text(cond)
    try:
        if action == "acknowledge":
            cond.state.acknowledge(comment, caller.name)
        else:
            cond.state.confirm(comment, caller.name)
    except ConditionRefused as exc:
        return refuse(exc.code, exc.reason)
    audit(AuditOutcome.ACCEPTED, ua.StatusCodes.Good, comment, old, _state_text(cond))
    await manager.emit(cond)
    return []


def _state_text(cond: AlarmCondition) -> str:
    s = cond.state
    return ("active" if s.active else "inactive") + (", acknowledged" if s.acked else ", unacknowledged") + \
        (", confirmed" if s.confirmed else ", unconfirmed")


def _refresh_event(kind: type, emitting_node: ua.NodeId) -> Any:
    event = kind()
    event.emitting_node = emitting_node
    now = datetime.now(UTC)
    event.add_property("EventId", uuid.uuid4().bytes, ua.VariantType.ByteString)
    event.add_property("SourceNode", ua.NodeId(ua.ObjectIds.Server), ua.VariantType.NodeId)
    event.add_property("SourceName", "Server", ua.VariantType.String)
    event.add_property("Time", now, ua.VariantType.DateTime)
    event.add_property("ReceiveTime", now, ua.VariantType.DateTime)
    event.add_property("Message", ua.LocalizedText(kind.__name__), ua.VariantType.LocalizedText)
    event.add_property("Severity", 1, ua.VariantType.UInt16)
    return event


async def _refresh(server: Server, manager: AlarmManager, args: tuple[ua.Variant, ...],
                   with_item: bool) -> ua.StatusCode | list[ua.Variant]:
    wanted = 2 if with_item else 1
    if len(args) < wanted:
        return _status(ua.StatusCodes.BadArgumentsMissing)
    if len(args) > wanted:
        return _status(ua.StatusCodes.BadTooManyArguments)
    if any(not isinstance(a.Value, int) or isinstance(a.Value, bool) for a in args):
        return _status(ua.StatusCodes.BadInvalidArgument)
    subscription = event_subscription(server, args[0].Value)
    if subscription is None:
        return _status(ua.StatusCodes.BadSubscriptionIdInvalid)
    session = CALLER_SESSION.get()
    if session is not None and subscription.session_id != session.session_id:
        return _status(ua.StatusCodes.BadUserAccessDenied)  # §5.5.7: only the session that owns the subscription
    targets = subscription.items
    if with_item:
        targets = [(node, mid) for node, mid in targets if mid == args[1].Value]
        if not targets:
            return _status(ua.StatusCodes.BadMonitoredItemIdInvalid)
    retained = manager.retained()
    for node, mid in targets:
        await subscription.trigger(_refresh_event(event_objects.RefreshStartEvent, node), mid)
        for cond in retained:
            if node in cond.notifiers:
                await subscription.trigger(cond.build_event(node), mid)
        await subscription.trigger(_refresh_event(event_objects.RefreshEndEvent, node), mid)
    return []
