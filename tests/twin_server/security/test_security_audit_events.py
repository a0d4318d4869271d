"""OPC UA AuditEvents from the Server object, seen by an asyncua event subscriber: a write
(AuditWriteUpdateEventType, old and new value), a method call (AuditUpdateMethodEventType) and a login
(AuditActivateSessionEventType), each naming the user."""

from __future__ import annotations

import pytest
from asyncua import ua

from tests.conftest import wait_until, write_accepted
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE
from tests.twin_server.security.test_security_roles import SETPOINT, twin_line


class Events:
    def __init__(self) -> None:
        self.received: list[object] = []

    def event_notification(self, event: object) -> None:
        self.received.append(event)

    def of_type(self, type_id: int) -> list[object]:
        return [e for e in self.received if getattr(e, "EventType", None) == ua.NodeId(type_id)]


async def test_write_call_and_login_are_published_as_audit_events():
    add_operator()
    # the operator both writes and watches: let the operator see audit events (default: engineer and up)
    async with twin_line(audit_events_role="operator") as twin, client_as(twin.endpoint, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        events = Events()
        sub = await client.create_subscription(50, events)
        types = [client.get_node(ua.NodeId(t)) for t in (ua.ObjectIds.AuditWriteUpdateEventType,
                                                          ua.ObjectIds.AuditUpdateMethodEventType,
                                                          ua.ObjectIds.AuditActivateSessionEventType)]
        await sub.subscribe_events(client.nodes.server, types)

        setpoint = client.get_node(ua.NodeId(SETPOINT, idx))
        await wait_until(lambda: _good(setpoint), what="setpoint read back")
        before = await setpoint.read_value()
        # the rate rule (max_rate × time since the PLC's value was first seen) may refuse the step if the write
        # arrives within ~0.1 s of the first scan: write until accepted (each refusal is audited too)
        await wait_until(lambda: write_accepted(setpoint, before + 2.0), what="+2 °C write accepted")
        await wait_until(lambda: [e for e in events.of_type(ua.ObjectIds.AuditWriteUpdateEventType) if e.Status],
                         what=f"AuditWriteUpdateEvent (got {events.received})")
        write = [e for e in events.of_type(ua.ObjectIds.AuditWriteUpdateEventType) if e.Status][-1]
        assert write.SourceName == SETPOINT and write.ClientUserId == "operator" and write.Status is True
        assert write.OldValue == pytest.approx(before) and write.NewValue == pytest.approx(before + 2.0)

        control = client.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
        try:
            await control.call_method(ua.NodeId("pilot_line.crystallizer.control.StopBatch", idx))
        except ua.UaStatusCodeError:
            pass  # no batch running: the call is still audited (with its status)
        await wait_until(lambda: events.of_type(ua.ObjectIds.AuditUpdateMethodEventType),
                         what="AuditUpdateMethodEvent")
        assert events.of_type(ua.ObjectIds.AuditUpdateMethodEventType)[-1].SourceName.endswith("StopBatch")

        async with client_as(twin.endpoint, None):
            await wait_until(lambda: events.of_type(ua.ObjectIds.AuditActivateSessionEventType),
                             what="AuditActivateSessionEvent")
        login = events.of_type(ua.ObjectIds.AuditActivateSessionEventType)[-1]
        assert login.ClientUserId == "anonymous" and login.Status is True
        await sub.delete()


async def _good(node) -> bool:
    return (await node.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()


