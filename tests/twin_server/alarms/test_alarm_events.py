"""End to end: a limit alarm raised by driving the HIL feed tank past its limit, seen by an asyncua event
subscriber, acknowledged with a comment (audited), confirmed, cleared, and refreshed after a client reconnects."""

from __future__ import annotations

import pytest
from asyncua import Client, ua

from tests.conftest import wait_until, write_accepted
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.alarms.alarm_line import (
    CONDITION,
    EventRecorder,
    condition_refresh,
    live_alarm_line,
    subscribe_events,
)
from twin_server.audit import AuditEntry

SETPOINT = "pilot_line.feed_tank.jacket_temperature_setpoint"
ACK = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
CONFIRM = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm)


async def _write_setpoint(client: Client, ns: int, value: float) -> None:
    """A client write of the jacket setpoint, repeated while the rate limit refuses it (BadOutOfRange)."""
    setpoint = client.get_node(ua.NodeId(SETPOINT, ns))
    await wait_until(lambda: write_accepted(setpoint, value), 30, poll_s=0.2,
                     what=f"jacket setpoint {value} accepted")


async def _call(client: Client, ns: int, method: ua.NodeId, event_id: bytes, comment: str) -> None:
    await client.get_node(ua.NodeId(CONDITION, ns)).call_method(
        method, ua.Variant(event_id, ua.VariantType.ByteString),
        ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText))


@pytest.mark.slow
async def test_limit_alarm_raised_acknowledged_confirmed_cleared_and_refreshed():
    async with live_alarm_line() as line:
        audit: list[AuditEntry] = []
        line.twin.audit.sinks.append(audit.append)
        historized: list[tuple[str, bool]] = []  # the alarm-event sink hook (for a historian)
        assert line.twin.alarms is not None
        line.twin.alarms.sinks.append(lambda cond, event: historized.append((cond.name, event.Retain)))
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index("urn:linetwin:pilot_line")
            on_server, on_unit = EventRecorder(), EventRecorder()
            await subscribe_events(client, client.nodes.server, on_server)
            await subscribe_events(client, client.get_node(ua.NodeId("pilot_line.feed_tank", ns)), on_unit)
            await wait_until(lambda: line.twin.runtime.health["feed_tank"].connected, 30, what="PLC link up")

            await _write_setpoint(client, ns, 40.0)  # jacket 20 → 40 °C: past the 30 °C high limit
            await wait_until(lambda: any(e["ActiveState/Id"] for e in on_server.of(CONDITION)), 60,
                             what="the limit alarm's active event at the Server object")
            raised = next(e for e in on_server.of(CONDITION) if e["ActiveState/Id"])
            assert raised["EventType"] == ua.NodeId(ua.ObjectIds.ExclusiveLimitAlarmType)
            assert raised["SourceName"] == "feed_tank"
            assert raised["SourceNode"] == ua.NodeId("pilot_line.feed_tank", ns)
            assert raised["AckedState/Id"] is False and raised["ConfirmedState/Id"] is False
            assert raised["Retain"] is True and raised["Severity"] == 700
            assert raised["LimitState/CurrentState/Id"] == ua.NodeId(ua.ObjectIds.ExclusiveLimitStateMachineType_High)
            assert raised["HighLimit"] == 30.0 and raised["HighHighLimit"] == 60.0
            assert "above high limit" in raised["Message"].Text
            assert ("jacket_temperature_limit", True) in historized
            await wait_until(lambda: any(e["ActiveState/Id"] for e in on_unit.of(CONDITION)), 10,
                             what="the same event at the unit's notifier")

            await _call(client, ns, ACK, raised["EventId"], "jacket test, operator aware")
            await wait_until(lambda: any(e["AckedState/Id"] for e in on_server.of(CONDITION)), 10,
                             what="the acknowledged event")
            acked = [e for e in on_server.of(CONDITION) if e["AckedState/Id"]][-1]
            assert acked["Comment"].Text == "jacket test, operator aware" and acked["ActiveState/Id"] is True
            entry = next(a for a in audit if a.action == "acknowledge")
            assert entry.node == CONDITION and entry.reason == "jacket test, operator aware"
            assert entry.outcome.value == "accepted" and entry.status == "Good"
            assert entry.client.startswith("urn:") and "127.0.0.1:" in entry.client  # who acknowledged, from where
            assert entry.old_value.startswith("active, unacknowledged")
            condition = client.get_node(ua.NodeId(CONDITION, ns))  # the state as variables of the condition object
            acked_id = await condition.get_child(["0:AckedState", "0:Id"])
            assert await acked_id.read_value() is True
            assert await (await condition.get_child("0:ActiveState")).read_value() == ua.LocalizedText("Active")
            assert await (await condition.get_child("0:Retain")).read_value() is True

            try:  # a second acknowledgement is refused, and audited as refused
                await _call(client, ns, ACK, acked["EventId"], "again")
                raise AssertionError("second Acknowledge accepted")
            except ua.uaerrors.BadConditionBranchAlreadyAcked:
                pass
            assert any(a.action == "acknowledge" and a.outcome.value == "refused" for a in audit)

            await _write_setpoint(client, ns, 20.0)  # back below 30 - 0.5 °C: returns to normal
            await wait_until(lambda: any(not e["ActiveState/Id"] for e in on_server.of(CONDITION)), 60,
                             what="the return-to-normal event")
            cleared = [e for e in on_server.of(CONDITION) if not e["ActiveState/Id"]][-1]
            assert cleared["Retain"] is True, "acknowledged but not confirmed: still retained"
            assert "back within limits" in cleared["Message"].Text

        # a new client (a reconnect) learns of the retained condition through ConditionRefresh
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            again = EventRecorder()
            sub = await subscribe_events(client, client.nodes.server, again)
            await condition_refresh(client, sub.subscription_id)
            await wait_until(lambda: ua.ObjectIds.RefreshEndEventType in again.types(), 10, what="RefreshEnd")
            types = again.types()
            start, end = types.index(ua.ObjectIds.RefreshStartEventType), types.index(ua.ObjectIds.RefreshEndEventType)
            refreshed = [e for e in again.events[start + 1:end] if e["NodeId"].Identifier == CONDITION]
            assert len(refreshed) == 1 and refreshed[0]["Retain"] is True
            assert refreshed[0]["ActiveState/Id"] is False and refreshed[0]["AckedState/Id"] is True

            await _call(client, ns, CONFIRM, refreshed[0]["EventId"], "cause understood")
            await wait_until(lambda: any(e.get("ConfirmedState/Id") for e in again.of(CONDITION)), 10,
                             what="the confirmed event")
            confirmed = [e for e in again.of(CONDITION) if e["ConfirmedState/Id"]][-1]
            assert confirmed["Retain"] is False, "inactive, acknowledged and confirmed: no longer retained"
            assert any(a.action == "confirm" and a.reason == "cause understood" for a in audit)

            n = len(again.events)  # nothing retained now: a refresh brings only RefreshStart and RefreshEnd
            await condition_refresh(client, sub.subscription_id)
            await wait_until(lambda: again.types()[n:].count(ua.ObjectIds.RefreshEndEventType) == 1, 10,
                             what="the second RefreshEnd")
            assert [e for e in again.events[n:] if e.get("NodeId") is not None and
                    getattr(e["NodeId"], "Identifier", None) == CONDITION] == []
