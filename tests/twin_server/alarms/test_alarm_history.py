"""Alarm events in the historian: a limit alarm driven on the live feed tank (HIL virtual PLC, asyncua server and
client on loopback) is raised, acknowledged with a comment by the operator, cleared and confirmed; every one of
those state changes is read back with HistoryRead (ReadEventDetails on the unit object) and by
``linetwin history export --kind events``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from asyncua import ua

from tests.conftest import wait_until, write_accepted
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.alarms.alarm_line import CONDITION, EventRecorder, live_alarm_line, subscribe_events
from twin_server.historian.export import export_history

ACK = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
CONFIRM = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm)
SETPOINT = "pilot_line.feed_tank.jacket_temperature_setpoint"


async def test_every_alarm_state_change_is_historized_and_read_back():
    since = datetime.now(UTC) - timedelta(seconds=5)
    async with live_alarm_line() as line:
        twin = line.twin
        assert twin.historian is not None
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index("urn:linetwin:pilot_line")
            live = EventRecorder()
            await subscribe_events(client, client.nodes.server, live)
            await wait_until(lambda: twin.runtime.health["feed_tank"].connected, 30, what="PLC link up")
            setpoint = client.get_node(ua.NodeId(SETPOINT, ns))

            async def write(value: float) -> None:
                await wait_until(lambda: write_accepted(setpoint, value), 30, poll_s=0.2,
                                 what=f"jacket setpoint {value} accepted")

            async def call(method: ua.NodeId, comment: str) -> None:
                await client.get_node(ua.NodeId(CONDITION, ns)).call_method(
                    method, ua.Variant(live.of(CONDITION)[-1]["EventId"], ua.VariantType.ByteString),
                    ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText))

            await write(40.0)  # past the 30 °C high limit
            await wait_until(lambda: any(e["ActiveState/Id"] for e in live.of(CONDITION)), 60, what="raised")
            await call(ACK, "seen, lowering the jacket")
            await wait_until(lambda: any(e["AckedState/Id"] for e in live.of(CONDITION)), 10, what="acknowledged")
            await write(20.0)
            await wait_until(lambda: any(not e["ActiveState/Id"] for e in live.of(CONDITION)), 60, what="cleared")
            await call(CONFIRM, "cause understood")
            await wait_until(lambda: any(e["ConfirmedState/Id"] for e in live.of(CONDITION)), 10, what="confirmed")

            unit = client.get_node(ua.NodeId("pilot_line.feed_tank", ns))
            history: list = []

            async def four_alarm_events() -> bool:
                events = await unit.read_event_history(since, datetime.now(UTC) + timedelta(seconds=5),
                                                       evtypes=[ua.ObjectIds.AlarmConditionType])
                fields = [{k: v.Value for k, v in e.get_event_props_as_fields_dict().items()} for e in events]
                history[:] = [f for f in fields if f["EventType"] != ua.NodeId(ua.ObjectIds.BaseEventType)]
                return len(history) >= 4

            await wait_until(four_alarm_events, 30, poll_s=0.5, what="four alarm events in event history")
            raised, acked, cleared, confirmed = history[:4]
            assert all(e["EventType"] == ua.NodeId(ua.ObjectIds.ExclusiveLimitAlarmType) for e in history)
            assert all(e["SourceNode"] == unit.nodeid and e["SourceName"] == "feed_tank" for e in history)
            assert all(e["ConditionName"] == "jacket_temperature_limit" and e["Severity"] == 700 for e in history)
            assert all(e["NodeId"] == ua.NodeId(CONDITION, ns) for e in history)  # the ConditionId
            assert raised["ActiveState/Id"] is True and raised["AckedState/Id"] is False
            assert "above high limit" in raised["Message"].Text
            assert acked["AckedState/Id"] is True and acked["ActiveState/Id"] is True
            assert acked["Comment"].Text == "seen, lowering the jacket" and acked["ClientUserId"] == OPERATOR.user
            assert cleared["ActiveState/Id"] is False and "back within limits" in cleared["Message"].Text
            assert confirmed["ConfirmedState/Id"] is True and confirmed["Retain"] is False
            assert confirmed["Comment"].Text == "cause understood"
            assert raised["Time"] <= acked["Time"] <= cleared["Time"] <= confirmed["Time"]

        out = io.StringIO()
        n = export_history(twin.config, twin.historian.data_dir, "feed_tank", since,
                           datetime.now(UTC) + timedelta(seconds=5), out, "csv", "events")
        rows = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["source"] == "alarm"]
        assert n >= 4
        assert [r["transition"] for r in rows] == ["raise", "acknowledge", "clear", "confirm"]
        assert all(r["condition"] == CONDITION and r["severity"] == "700" for r in rows)
        assert rows[1]["user"] == OPERATOR.user and rows[1]["comment"] == "seen, lowering the jacket"
        assert rows[0]["active"] == "true" and rows[2]["active"] == "false" and rows[3]["confirmed"] == "true"
        assert "above high limit" in rows[0]["message"]
