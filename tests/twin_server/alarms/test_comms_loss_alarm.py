"""Communication loss: the unit's OffNormalAlarm goes active when its virtual PLC stops and clears when it is back;
Acknowledge is refused by the role check (audited), and with an EventId the condition never had; ConditionRefresh
is refused for another session's subscription."""

from __future__ import annotations

import pytest
from asyncua import ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.alarms.alarm_line import (
    COMMS,
    EventRecorder,
    condition_refresh,
    live_alarm_line,
    subscribe_events,
)
from twin_server.audit import AuditEntry

ACK = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)


async def test_comms_loss_alarm_when_the_virtual_plc_stops_and_clears_when_it_is_back():
    async with live_alarm_line() as line:
        audit: list[AuditEntry] = []
        line.twin.audit.sinks.append(audit.append)
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index("urn:linetwin:pilot_line")
            events = EventRecorder()
            sub = await subscribe_events(client, client.get_node(ua.NodeId("pilot_line", ns)), events)
            await wait_until(lambda: line.twin.runtime.health["feed_tank"].connected, 30, what="PLC link up")
            assert events.of(COMMS) == [], "no comms alarm while the PLC answers"

            plc = line.bench.plc("feed_tank")
            await plc.stop()
            await wait_until(lambda: any(e["ActiveState/Id"] for e in events.of(COMMS)), 60,
                             what="the comms-loss alarm at the line's notifier")
            down = events.of(COMMS)[-1]
            assert "alarms: 1 active (feed_tank.comms_loss), 1 unacknowledged" in line.twin.status_line()
            assert down["EventType"] == ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
            assert down["SourceName"] == "feed_tank" and down["Severity"] == 800
            assert "PLC link down" in down["Message"].Text
            assert down["InputNode"] == ua.NodeId("pilot_line.feed_tank.plc_connected", ns)

            condition = client.get_node(ua.NodeId(COMMS, ns))
            with pytest.raises(ua.uaerrors.BadEventIdUnknown):
                await condition.call_method(ACK, ua.Variant(b"not an event", ua.VariantType.ByteString),
                                            ua.Variant(ua.LocalizedText("x"), ua.VariantType.LocalizedText))
            with pytest.raises(ua.uaerrors.BadInvalidArgument):
                await condition.call_method(ACK, ua.Variant(down["EventId"], ua.VariantType.ByteString),
                                            ua.Variant(42, ua.VariantType.Int32))
            assert line.twin.alarms is not None
            line.twin.alarms.authorize = lambda user: ua.StatusCodes.BadUserAccessDenied  # e.g. a viewer
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await condition.call_method(ACK, ua.Variant(down["EventId"], ua.VariantType.ByteString),
                                            ua.Variant(ua.LocalizedText("viewer tries"), ua.VariantType.LocalizedText))
            refused = [a for a in audit if a.action == "acknowledge"]
            assert [a.status for a in refused] == ["BadEventIdUnknown", "BadInvalidArgument", "BadUserAccessDenied"]
            assert all(a.outcome.value == "refused" and a.node == COMMS for a in refused)
            assert not line.twin.alarms.conditions[ua.NodeId(COMMS, ns)].state.acked

            # ConditionRefresh of another session's subscription
            async with client_as(line.url, OPERATOR, timeout=30) as other:
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await condition_refresh(other, sub.subscription_id)
                with pytest.raises(ua.uaerrors.BadSubscriptionIdInvalid):
                    await condition_refresh(other, 999_999)

            await plc.start()
            await wait_until(lambda: not events.of(COMMS)[-1]["ActiveState/Id"], 60,
                             what="the comms-loss alarm clearing")
            assert "PLC link back up" in events.of(COMMS)[-1]["Message"].Text
            assert events.of(COMMS)[-1]["Retain"] is True, "not acknowledged: retained"
