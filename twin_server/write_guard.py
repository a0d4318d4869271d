"""Checked client writes and the lock on the address space.

Every client Write reaches :class:`GuardedAttributeService` through the asyncua seam's write hook
(:func:`plc_adapters.asyncua_seam.install_write_hook`; the server's own writes do not): the only things a client can
ever change are the Value of a commanded tag (handed to the unit's PLC adapter, which checks limits and
rate before anything goes on the wire, and shown in the node only once the PLC accepted it) and the Value
of a control input the twin owns (``mode``, ``target_…``: validated by its handler). Everything else is
refused, for every user and role (asyncua's ``admin`` included), and nothing changes:

* a node id that does not exist → ``BadNodeIdUnknown``; an attribute the node does not have →
  ``BadAttributeIdInvalid``;
* a node or attribute the address space declares read-only (AccessLevel without CurrentWrite, WriteMask
  bit clear: measured tags, ``plc_connected``, estimates, EURange, DisplayName, …) → ``BadNotWritable``;
  one it declares writable but that the twin reserves to itself (asyncua's own server nodes) →
  ``BadUserAccessDenied``;
* a user the ``authorize`` hook (roles, see ``twin_server/security``) turns away → its status, normally
  ``BadUserAccessDenied``;
* an operator write to a setpoint a control loop owns (auto/mpc mode during a batch) → ``BadInvalidState``
  (switch the loop to manual first);
* a commanded-tag write: wrong type → ``BadTypeMismatch``; an index range → ``BadIndexRangeInvalid``;
  NaN/inf, outside ``write_limits``, or a step beyond ``max_rate`` → ``BadOutOfRange``; PLC not reachable
  → ``BadCommunicationError``; Modbus exception answer → ``BadDeviceFailure``; request sent but no answer
  (outcome unknown: the PLC may have applied it) → ``BadTimeout``, reconciled by a read-back.

AddNodes, DeleteNodes, AddReferences and DeleteReferences are refused for every client session
(``BadUserAccessDenied``) by :class:`twin_server.security.sessions.NoNodeManagement`, the permission ruleset
asyncua's UA processor asks before it dispatches a request; the twin builds its own address space through the
internal session, which the ruleset is never asked about.

Before any of these, the request and each value are bounded (:mod:`twin_server.security.request_limits`): more
WriteValues than ``max_nodes_per_write`` → the whole request ``BadTooManyOperations``; a String / ByteString
value beyond ``max_value_bytes`` → ``BadEncodingLimitsExceeded``; a client-supplied non-Good StatusCode →
``BadWriteNotSupported``; a client's SourceTimestamp / ServerTimestamp is ignored (documented: the node gets the
time the PLC accepted the value); a fractional value to an integer register → ``BadOutOfRange`` (never rounded).

A write that changes nothing (a control node written with the value it already has, e.g. ``mode`` manual →
manual) is acknowledged Good without calling the handler, without an audit entry and without a log line.

Every other decision is recorded on the :class:`~twin_server.audit.AuditTrail`: user, node id, old and new
value, outcome, status and the reason of a refusal.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import ua
from asyncua.crypto.permission_rules import User

from plc_adapters.asyncua_seam import AddressSpaceView, ServiceError
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefused
from plc_adapters.modbus_codec import not_representable
from plc_adapters.tag_map import Direction, TagSpec
from twin_server.address_space import TagNode
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail, client_label, node_label, role_label, user_label
from twin_server.security.request_limits import RequestLimits
from twin_server.status_codes import OUTCOME_UNKNOWN_STATUS, status_for_refusal

SetpointWriter = Callable[..., Awaitable[None]]
"""``(unit, tag, value, source=, user=)`` → writes to the PLC, raises :class:`WriteRefused` /
:class:`WriteOutcomeUnknown`."""

HandlerResult = ua.StatusCode | tuple[ua.StatusCode, str]
WriteHandler = Callable[[ua.Variant], Awaitable[HandlerResult]]
"""A writable non-tag node (control mode, targets): validates, applies, updates its node, returns the status
(and, for a refusal, the reason)."""

Verdict = "ua.StatusCode | int | tuple[ua.StatusCode | int, str] | None"
Authorize = Callable[[User, ua.NodeId, int], "Verdict | Awaitable[Verdict]"]
"""``(user, node_id, attribute_id)`` → ``None`` to let the write go on to the twin's own checks, or the Bad
status to refuse it with (e.g. ``BadUserAccessDenied`` for a viewer), optionally with the reason for the audit
trail as ``(status, reason)``. Plugged in by the security module."""

SetpointOwner = Callable[[str, str], str | None]
"""``(unit, tag)`` → ``None`` when a client may write the setpoint now, else why not (a loop owns it)."""

_NUMERIC_VARIANTS = {ua.VariantType.Double, ua.VariantType.Float}
UNCHANGED = "unchanged"
"""The reason a handler gives with a Good status when the write changed nothing (no audit entry, no log)."""

@dataclass(frozen=True)
class _Decision:
    status: int
    reason: str = ""
    outcome: AuditOutcome = AuditOutcome.REFUSED


class GuardedAttributeService:
    """The write service of client sessions: lets clients write only what the twin owns, and routes tag writes
    to the PLCs. Installed with :func:`~plc_adapters.asyncua_seam.install_write_hook` (its :meth:`write`).

    Args:
        nodes: the server's address space (:func:`~plc_adapters.asyncua_seam.address_space`).
        tags_by_node: the tag nodes (commanded tags are writable, measured ones are not).
        write_setpoint: forwards a commanded value to the unit's PLC adapter.
        handlers: writable control nodes (node id → handler); more are added by ``handlers.update``.
        audit: where every decision is recorded (a new :class:`AuditTrail` if not given).
        authorize: optional role check, asked before the twin's own checks (see :data:`Authorize`).
        setpoint_owner: optional; says whether a control loop owns a commanded tag now (see :data:`SetpointOwner`).
    """

    def __init__(self, nodes: AddressSpaceView, tags_by_node: dict[ua.NodeId, TagNode],
                 write_setpoint: SetpointWriter, handlers: dict[ua.NodeId, WriteHandler] | None = None,
                 audit: AuditTrail | None = None, authorize: Authorize | None = None,
                 setpoint_owner: SetpointOwner | None = None) -> None:
        self._nodes = nodes
        self._tags = tags_by_node
        self._write_setpoint = write_setpoint
        self.handlers: dict[ua.NodeId, WriteHandler] = dict(handlers or {})
        self.audit = audit if audit is not None else AuditTrail()
        self.authorize = authorize
        self.setpoint_owner = setpoint_owner
        self.action_names: dict[ua.NodeId, str] = {}
        """The audit action of writes to particular nodes (e.g. ``mode_change`` for a control loop's mode)."""
        self.write_roles: dict[ua.NodeId, str] = {}
        """The role a handled node needs where it is not ``operator`` (e.g. ``engineer`` for a pooling strategy)."""
        self.limits = RequestLimits()
        """Bounds of a Write request (set from ``[security.limits]`` by the security module)."""

    async def write(self, params: ua.WriteParameters, user: User) -> list[ua.StatusCode]:
        """A client session's Write request: one status per WriteValue, each decision audited."""
        too_many = self.limits.too_many("max_nodes_per_write", len(params.NodesToWrite))
        if too_many is not None:
            self.audit.record(AuditEntry(action="write", user=user_label(user), node="(request)",
                                         outcome=AuditOutcome.REFUSED, status="BadTooManyOperations",
                                         reason=too_many, role=role_label(user), client=client_label(user)))
            raise ServiceError(ua.StatusCodes.BadTooManyOperations)
        return [await self._write_one(wv, user) for wv in params.NodesToWrite]

    async def _write_one(self, wv: ua.WriteValue, user: User) -> ua.StatusCode:
        new_value = _variant_value(wv)
        current = self._nodes.read(wv.NodeId, wv.AttributeId)
        old_value = current.Value.Value if current.Value is not None else None
        decision = self._bounded(wv) or await self._decide(wv, user, current)
        if decision is None:  # a tag write: decided (and audited) by _write_tag
            tag_node = self._tags[wv.NodeId]
            decision = await self._write_tag(tag_node, wv, user)
        if decision.reason == UNCHANGED and decision.outcome is AuditOutcome.ACCEPTED:
            return ua.StatusCode(decision.status)  # nothing changed: nothing to audit or log
        self.audit.record(AuditEntry(
            action=(self.action_names.get(wv.NodeId, "write") if wv.AttributeId == ua.AttributeIds.Value
                    else f"write {_attribute_name(wv.AttributeId)}"),
            user=user_label(user), node=node_label(wv.NodeId), outcome=decision.outcome,
            status=ua.StatusCode(decision.status).name, old_value=old_value, new_value=new_value,
            reason=decision.reason, role=role_label(user), client=client_label(user)))
        return ua.StatusCode(decision.status)

    def _bounded(self, wv: ua.WriteValue) -> _Decision | None:
        """Refuse a value beyond ``max_value_bytes`` or a DataValue with a non-Good StatusCode (checked before
        anything else, for every node and user). The client's timestamps are ignored (asyncua's client stamps every
        write with its own SourceTimestamp); the twin stamps a value when the PLC accepted it."""
        too_large = self.limits.value_too_large(_variant_value(wv))
        if too_large is not None:
            return _Decision(ua.StatusCodes.BadEncodingLimitsExceeded, f"value of {too_large}")
        dv = wv.Value
        if dv is not None and dv.StatusCode is not None and not dv.StatusCode.is_good():
            return _Decision(ua.StatusCodes.BadWriteNotSupported,
                             f"the client sent the StatusCode {dv.StatusCode.name}: only a Good value may be written")
        return None

    async def _decide(self, wv: ua.WriteValue, user: User, current: ua.DataValue) -> _Decision | None:
        """Every check that does not need the PLC; ``None`` for a tag write that may go on to the adapter."""
        code = current.StatusCode.value if current.StatusCode is not None else ua.StatusCodes.Good
        if code == ua.StatusCodes.BadNodeIdUnknown:
            return _Decision(code, "no such node")
        if code == ua.StatusCodes.BadAttributeIdInvalid:
            return _Decision(code, f"the node has no {_attribute_name(wv.AttributeId)} attribute")
        if self.authorize is not None:
            verdict = self.authorize(user, wv.NodeId, wv.AttributeId)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            reason = f"user {user_label(user)} may not write this node"
            if isinstance(verdict, tuple):
                verdict, reason = verdict
            if verdict is not None and not ua.StatusCode(int(getattr(verdict, "value", verdict))).is_good():
                status = int(getattr(verdict, "value", verdict))
                return _Decision(status, reason)
        handler = self.handlers.get(wv.NodeId)
        tag_node = self._tags.get(wv.NodeId)
        if handler is None and (tag_node is None or tag_node.tag.direction is Direction.MEASURED):
            return self._not_owned(wv)
        if wv.AttributeId != ua.AttributeIds.Value:
            return _Decision(ua.StatusCodes.BadNotWritable,
                             f"only the Value is writable, not the {_attribute_name(wv.AttributeId)}")
        if wv.IndexRange:
            return _Decision(ua.StatusCodes.BadIndexRangeInvalid, "scalar node: no index range")
        if handler is not None:
            return await self._write_handled(handler, wv, current)
        assert tag_node is not None
        if self.setpoint_owner is not None:
            owner = self.setpoint_owner(tag_node.unit, tag_node.tag.name)
            if owner is not None:
                return _Decision(ua.StatusCodes.BadInvalidState, owner)
        return None

    def _not_owned(self, wv: ua.WriteValue) -> _Decision:
        """A node the twin does not let clients write: BadNotWritable when the node itself says it is read-only,
        BadUserAccessDenied when it is declared writable but reserved to the server."""
        if wv.AttributeId == ua.AttributeIds.Value:
            level = self._nodes.read(wv.NodeId, ua.AttributeIds.AccessLevel)
            declared = level.Value is not None and isinstance(level.Value.Value, int) and bool(
                level.Value.Value & ua.AccessLevel.CurrentWrite.mask)
        else:
            mask = self._nodes.read(wv.NodeId, ua.AttributeIds.WriteMask)
            bit = getattr(ua.WriteMask, _attribute_name(wv.AttributeId), None)
            declared = (bit is not None and mask.Value is not None and isinstance(mask.Value.Value, int)
                        and bool(mask.Value.Value & (1 << int(bit))))
        if declared:
            return _Decision(ua.StatusCodes.BadUserAccessDenied, "reserved to the server: no client may write it")
        what = "Value" if wv.AttributeId == ua.AttributeIds.Value else _attribute_name(wv.AttributeId)
        return _Decision(ua.StatusCodes.BadNotWritable, f"read-only: the {what} of this node is not writable")

    async def _write_tag(self, tn: TagNode, wv: ua.WriteValue, user: User) -> _Decision:
        variant = wv.Value.Value if wv.Value is not None else None
        if variant is None or variant.VariantType not in _NUMERIC_VARIANTS or isinstance(variant.Value, list):
            got = variant.VariantType.name if variant is not None else "null"
            return _Decision(ua.StatusCodes.BadTypeMismatch, f"expected a Double scalar, got {got}")
        value = float(variant.Value)
        if not math.isfinite(value):
            return _Decision(ua.StatusCodes.BadOutOfRange, "value is not finite")
        fractional = not_representable(tn.tag, value) if isinstance(tn.tag, TagSpec) else None
        if fractional is not None:
            return _Decision(ua.StatusCodes.BadOutOfRange, fractional)
        try:
            await self._write_setpoint(tn.unit, tn.tag.name, value, source="operator", user=user_label(user))
        except WriteRefused as exc:
            # an OPC UA PLC's own Bad status passes through to the client
            code = getattr(exc, "status_code", None) or status_for_refusal(exc.reason).value
            return _Decision(code, f"{exc.reason.value}: {exc.message}")
        except WriteOutcomeUnknown as exc:
            return _Decision(OUTCOME_UNKNOWN_STATUS, exc.message, AuditOutcome.UNKNOWN)
        now = datetime.now(UTC)
        accepted = ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
        await self._nodes.write(tn.node_id, ua.AttributeIds.Value, accepted)
        return _Decision(ua.StatusCodes.Good, "accepted by the PLC", AuditOutcome.ACCEPTED)

    @staticmethod
    async def _write_handled(handler: WriteHandler, wv: ua.WriteValue, current: ua.DataValue) -> _Decision:
        variant = wv.Value.Value if wv.Value is not None else None
        if variant is None or variant.Value is None or isinstance(variant.Value, list):
            got = "no value" if variant is None or variant.Value is None else f"an array of {variant.VariantType.name}"
            return _Decision(ua.StatusCodes.BadTypeMismatch, f"expected a scalar, got {got}")
        held = current.Value
        if held is not None and held.VariantType == ua.VariantType.String != variant.VariantType:
            return _Decision(ua.StatusCodes.BadTypeMismatch, f"expected a String, got {variant.VariantType.name}")
        if held is not None and held.VariantType == variant.VariantType and held.Value == variant.Value:
            return _Decision(ua.StatusCodes.Good, UNCHANGED, AuditOutcome.ACCEPTED)
        result = await handler(variant)
        status, reason = result if isinstance(result, tuple) else (result, "")
        if status.is_good():
            return _Decision(status.value, reason, AuditOutcome.ACCEPTED)
        return _Decision(status.value, reason or status.name)


def _variant_value(wv: ua.WriteValue) -> object:
    variant = wv.Value.Value if wv.Value is not None else None
    return variant.Value if variant is not None else None


def _attribute_name(attribute_id: int) -> str:
    try:
        return ua.AttributeIds(attribute_id).name
    except ValueError:
        return f"attribute {attribute_id}"
