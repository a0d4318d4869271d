"""Communication-loss alarm (OffNormalAlarmType) end to end: a PLC outage raises it, an event subscriber on
the Server object sees it, a viewer may not acknowledge, an operator acknowledges with a comment (audited),
ConditionRefresh re-sends it while retained, and the PLC coming back clears it."""

from __future__ import annotations

import pytest
from asyncua import ua

from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE
from tests.twin_server.security.test_security_roles import audit_rows, twin_line


class Alarms:
    def __init__(self) -> None:
        self.events: list[object] = []

    def event_notification(self, event: object) -> None:
        self.events.append(event)

    def of(self, unit: str) -> list[object]:
        return [e for e in self.events if getattr(e, "SourceName", None) == unit]


def _field(event: object, name: str) -> object:
    return getattr(event, name, None)


async def test_comms_loss_alarm_raised_acknowledged_refreshed_and_cleared():
    add_operator()
    async with twin_line() as twin, client_as(twin.endpoint, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        alarms = Alarms()
        sub = await client.create_subscription(50, alarms)
        alarm_type = client.get_node(ua.NodeId(ua.ObjectIds.OffNormalAlarmType))
        await sub.subscribe_events(client.nodes.server, alarm_type)
        await wait_until(lambda: twin.runtime.health["crystallizer"].connected, what="crystallizer connected")
        assert not alarms.of("crystallizer")

        await twin.bench.plc("crystallizer").stop()
        await wait_until(lambda: alarms.of("crystallizer"), timeout_s=15, what="alarm event")
        raised = alarms.of("crystallizer")[-1]
        assert _field(raised, "ActiveState/Id") is True and _field(raised, "AckedState/Id") is False
        assert _field(raised, "Retain") is True and _field(raised, "Severity") == 700
        condition_id = ua.NodeId("pilot_line.crystallizer.comms_loss_alarm", idx)
        condition = client.get_node(condition_id)
        ack = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
        event_id = _field(raised, "EventId")

        async with client_as(twin.endpoint, None) as viewer:
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await viewer.get_node(condition_id).call_method(ack, ua.Variant(event_id, ua.VariantType.ByteString),
                                                                ua.LocalizedText("viewer tries"))
        await condition.call_method(ack, ua.Variant(event_id, ua.VariantType.ByteString),
                                    ua.LocalizedText("PLC cabinet checked"))
        await wait_until(lambda: _field(alarms.of("crystallizer")[-1], "AckedState/Id") is True, what="acked event")
        acked = alarms.of("crystallizer")[-1]
        assert _field(acked, "Comment").Text == "PLC cabinet checked" and _field(acked, "ClientUserId") == "operator"
        with pytest.raises(ua.uaerrors.BadConditionBranchAlreadyAcked):
            await condition.call_method(ack, ua.Variant(_field(acked, "EventId"), ua.VariantType.ByteString),
                                        ua.LocalizedText("again"))

        before = len(alarms.of("crystallizer"))
        refresh = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)
        await client.get_node(ua.NodeId(ua.ObjectIds.ConditionType)).call_method(
            refresh, ua.Variant(sub.subscription_id, ua.VariantType.UInt32))
        await wait_until(lambda: len(alarms.of("crystallizer")) > before, what="refreshed retained alarm")

        await twin.bench.plc("crystallizer").start()
        await wait_until(lambda: _field(alarms.of("crystallizer")[-1], "ActiveState/Id") is False, timeout_s=20,
                         what="alarm cleared")
        assert _field(alarms.of("crystallizer")[-1], "Retain") is False
        assert not alarms.of("feed_tank")
        await sub.delete()
    acks = audit_rows("acknowledge")
    assert [(r["user"], r["outcome"], r["reason"]) for r in acks] == [
        ("operator", "accepted", "PLC cabinet checked"), ("operator", "refused", "again")]
    refused_calls = [r for r in audit_rows("call") if r["outcome"] == "refused" and r["user"] == "anonymous"]
    assert refused_calls and refused_calls[0]["status"] == "BadUserAccessDenied"


async def test_node_opcua_sees_and_acknowledges_the_alarm_and_a_reconnected_client_gets_it_by_refresh(tmp_path):
    import asyncio
    import json
    import os
    import shutil

    from tests.conftest import REPO_ROOT

    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    add_operator()
    async with twin_line() as twin:
        await wait_until(lambda: twin.runtime.health["crystallizer"].connected, what="crystallizer connected")
        async with client_as(twin.endpoint, OPERATOR) as probe:
            idx = await probe.get_namespace_index(NAMESPACE)
        env = {**os.environ, "LINETWIN_USER": OPERATOR.user, "LINETWIN_PASSWORD": OPERATOR.password}
        proc = await asyncio.create_subprocess_exec(
            node, str(REPO_ROOT / "tools" / "node_interop" / "alarm_client.js"), twin.endpoint, "crystallizer",
            f"ns={idx};s=pilot_line.crystallizer.comms_loss_alarm", "seen from node-opcua", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert ready.strip() == b"READY", (ready, await proc.stderr.read())
            await twin.bench.plc("crystallizer").stop()
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        except TimeoutError:
            proc.kill()
            pytest.fail("node-opcua alarm client did not finish within 60 s")
        assert proc.returncode == 0, stderr.decode()[-3000:]
        result = json.loads([ln for ln in stdout.decode().splitlines() if ln.startswith("{")][-1])
        assert result["acknowledgeStatus"] == "Good"
        assert result["active"] == {"severity": 700, "retain": True, "acked": False}
        assert result["acked"] == {"comment": "seen from node-opcua", "user": "operator", "retain": True}

        # a client that (re)connects later gets the still-active, retained alarm through ConditionRefresh
        async with client_as(twin.endpoint, None) as late:
            alarms = Alarms()
            sub = await late.create_subscription(50, alarms)
            await sub.subscribe_events(late.nodes.server, late.get_node(ua.NodeId(ua.ObjectIds.OffNormalAlarmType)))
            await late.get_node(ua.NodeId(ua.ObjectIds.ConditionType)).call_method(
                ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                ua.Variant(sub.subscription_id, ua.VariantType.UInt32))
            await wait_until(lambda: alarms.of("crystallizer"), what="retained alarm after refresh")
            refreshed = alarms.of("crystallizer")[-1]
            assert _field(refreshed, "ActiveState/Id") is True and _field(refreshed, "AckedState/Id") is True
            await sub.delete()
    acks = audit_rows("acknowledge")
    assert acks[0]["user"] == "operator" and acks[0]["reason"] == "seen from node-opcua"
