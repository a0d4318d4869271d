"""OPC UA AuditEvents (OPC 10000-5 §6.4.3): every audit entry is also published to event subscribers of the
Server object — writes as AuditWriteUpdateEventType, method calls as AuditUpdateMethodEventType, logins as
AuditActivateSessionEventType, anything else as AuditEventType.

The audit trail is synchronous; events go through a queue to one task that fills the event and triggers it.
"""

from __future__ import annotations

import asyncio
import logging

from asyncua import Server, ua

from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.background_task import cancel_and_wait

log = logging.getLogger("linetwin.security.events")

EVENT_TYPES = {
    "write": ua.ObjectIds.AuditWriteUpdateEventType,
    "mode_change": ua.ObjectIds.AuditWriteUpdateEventType,
    "call": ua.ObjectIds.AuditUpdateMethodEventType,
    "login": ua.ObjectIds.AuditActivateSessionEventType,
}
OTHER = ua.ObjectIds.AuditEventType


def _variant(value: object) -> ua.Variant:
    if value is None:
        return ua.Variant()
    if isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Boolean)
    if isinstance(value, int | float):
        return ua.Variant(float(value), ua.VariantType.Double)
    return ua.Variant(str(value), ua.VariantType.String)


def _set_any(event: object, name: str, value: object) -> None:
    """Set a BaseDataType field (OldValue, NewValue, InputArguments): asyncua encodes event fields with the
    declared data type, which for BaseDataType is not a concrete VariantType, so the value's own type is used."""
    variant = _variant(value)
    setattr(event, name, variant.Value)
    event.data_types[name] = variant.VariantType  # type: ignore[attr-defined]


class AuditEventPublisher:
    """An audit sink publishing AuditEvents from the Server object."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._generators: dict[int, object] = {}
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(maxsize=10_000)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    async def start(self) -> None:
        for type_id in {*EVENT_TYPES.values(), OTHER}:
            self._generators[type_id] = await self._server.get_event_generator(ua.NodeId(type_id))
        self._task = asyncio.create_task(self._run(), name="linetwin-audit-events")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def __call__(self, entry: AuditEntry) -> None:
        if self._task is None:
            return
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            entry = await self._queue.get()
            try:
                await self._publish(entry)
            except Exception:  # noqa: BLE001 - an event that cannot be built must not stop the others
                log.exception("could not publish the AuditEvent for %s %s", entry.action, entry.node)

    async def _publish(self, entry: AuditEntry) -> None:
        type_id = EVENT_TYPES.get(entry.action, OTHER)
        gen = self._generators[type_id]
        event = gen.event  # type: ignore[attr-defined]
        ok = entry.outcome is AuditOutcome.ACCEPTED
        event.ActionTimeStamp = entry.time
        event.data_types["ActionTimeStamp"] = ua.VariantType.DateTime  # declared UtcTime: asyncua needs the base
        event.Status = ok
        event.ServerId = "linetwin"
        event.ClientAuditEntryId = entry.client
        event.ClientUserId = entry.user
        event.Severity = 100 if ok else 500
        event.Message = ua.LocalizedText(
            f"{entry.action} {entry.node} by {entry.user}: {entry.outcome.value} ({entry.status})"
            + (f": {entry.reason[:200]}" if entry.reason else ""))
        event.SourceName = entry.node
        if type_id == ua.ObjectIds.AuditWriteUpdateEventType:
            event.AttributeId = ua.AttributeIds.Value
            _set_any(event, "OldValue", entry.old_value)
            _set_any(event, "NewValue", entry.new_value)
        elif type_id == ua.ObjectIds.AuditUpdateMethodEventType:
            _set_any(event, "InputArguments", None if entry.new_value is None else str(entry.new_value))
        await gen.trigger(time_attr=entry.time)  # type: ignore[attr-defined]
