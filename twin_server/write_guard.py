"""Checked client writes.

asyncua's AttributeService is replaced by :class:`GuardedAttributeService`. A client write to a
commanded tag is type-checked, handed to the unit's PLC adapter (which checks limits and rate
before anything goes on the wire) and only reflected in the node once the PLC accepted it. A
refused write returns the matching Bad status and changes nothing. Writes to measured tags are
refused with ``BadNotWritable``. Every decision is logged (audit trail: user, node, value, result).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService

from plc_adapters.errors import WriteRefused
from plc_adapters.tag_map import Direction
from twin_server.address_space import TagNode
from twin_server.status_codes import status_for_refusal

log = logging.getLogger("linetwin.audit")

SetpointWriter = Callable[..., Awaitable[None]]
"""``(unit, tag, value, source=, user=)`` → writes to the PLC, raises :class:`WriteRefused`."""

WriteHandler = Callable[[ua.Variant], Awaitable[ua.StatusCode]]
"""A writable non-tag node (control mode, targets): validates, applies, updates its node, returns the status."""

_INTERNAL_ADMIN = User(role=UserRole.Admin)
_NUMERIC_VARIANTS = {ua.VariantType.Double, ua.VariantType.Float}


class GuardedAttributeService(AttributeService):
    """AttributeService that routes writes of tag nodes through the PLC adapters."""

    def __init__(self, aspace: AddressSpace, tags_by_node: dict[ua.NodeId, TagNode],
                 write_setpoint: SetpointWriter, handlers: dict[ua.NodeId, WriteHandler] | None = None) -> None:
        super().__init__(aspace)
        self._tags = tags_by_node
        self._write_setpoint = write_setpoint
        self.handlers: dict[ua.NodeId, WriteHandler] = dict(handlers or {})

    async def write(self, params: ua.WriteParameters, user: User = _INTERNAL_ADMIN) -> list[ua.StatusCode]:
        results: list[ua.StatusCode] = []
        for wv in params.NodesToWrite:
            handler = self.handlers.get(wv.NodeId)
            if handler is not None:
                results.append(await self._write_handled(handler, wv, user))
                continue
            tag_node = self._tags.get(wv.NodeId)
            if tag_node is None:
                results.extend(await super().write(ua.WriteParameters(NodesToWrite=[wv]), user))
                continue
            results.append(await self._write_tag(tag_node, wv, user))
        return results

    async def _write_tag(self, tn: TagNode, wv: ua.WriteValue, user: User) -> ua.StatusCode:
        who = getattr(user, "name", None) or user.role.name
        where = f"{tn.unit}.{tn.tag.name}"
        if wv.AttributeId != ua.AttributeIds.Value:
            return self._refuse(who, where, None, ua.StatusCodes.BadNotWritable, "only the Value attribute is writable")
        if tn.tag.direction is Direction.MEASURED:
            return self._refuse(who, where, None, ua.StatusCodes.BadNotWritable, "measured tag (read-only)")
        if wv.IndexRange:
            return self._refuse(who, where, None, ua.StatusCodes.BadIndexRangeInvalid, "scalar tag")
        variant = wv.Value.Value if wv.Value is not None else None
        if variant is None or variant.VariantType not in _NUMERIC_VARIANTS or isinstance(variant.Value, list):
            got = variant.VariantType.name if variant is not None else "null"
            return self._refuse(who, where, None, ua.StatusCodes.BadTypeMismatch, f"expected Double, got {got}")
        value = float(variant.Value)
        if not math.isfinite(value):
            return self._refuse(who, where, value, ua.StatusCodes.BadOutOfRange, "value is not finite")
        try:
            await self._write_setpoint(tn.unit, tn.tag.name, value, source="operator", user=who)
        except WriteRefused as exc:
            return self._refuse(who, where, value, status_for_refusal(exc.reason).value, exc.message)
        now = datetime.now(UTC)
        accepted = ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
        await self._aspace.write_attribute_value(tn.node_id, ua.AttributeIds.Value, accepted)
        log.info("write %s = %g by %s: accepted by the PLC", where, value, who)
        return ua.StatusCode(ua.StatusCodes.Good)

    async def _write_handled(self, handler: WriteHandler, wv: ua.WriteValue, user: User) -> ua.StatusCode:
        who = getattr(user, "name", None) or user.role.name
        where = str(wv.NodeId.Identifier)
        if wv.AttributeId != ua.AttributeIds.Value or wv.Value is None or wv.Value.Value is None:
            return self._refuse(who, where, None, ua.StatusCodes.BadNotWritable, "only a Value can be written")
        status = await handler(wv.Value.Value)
        if status.is_good():
            log.info("write %s = %r by %s: accepted", where, wv.Value.Value.Value, who)
        else:
            log.warning("write %s = %r by %s refused with %s", where, wv.Value.Value.Value, who, status.name)
        return status

    @staticmethod
    def _refuse(who: str, where: str, value: float | None, code: int, why: str) -> ua.StatusCode:
        status = ua.StatusCode(code)
        log.warning("write %s = %s by %s refused with %s: %s", where, value, who, status.name, why)
        return status
