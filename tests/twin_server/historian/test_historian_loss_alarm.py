"""The historian's data-loss alarm: InfluxDB unreachable (a closed loopback port) with a tiny store-and-forward
buffer (shrunk to 100 samples once the event subscribers listen), so the buffer fills within seconds and drops its
oldest batches; the line's ``historian_data_loss`` condition goes active (seen by an asyncua event subscriber on the
line object and on the Server object), and clears once no sample was lost for ``loss_alarm_clear_s``."""

from __future__ import annotations

from asyncua import ua

from tests.conftest import free_tcp_port, wait_until
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.alarms.alarm_line import EventRecorder, live_alarm_line, subscribe_events

CONDITION = "pilot_line.alarms.historian_data_loss"


async def test_a_full_forward_buffer_raises_the_data_loss_alarm_which_clears_when_losses_stop():
    historian = {"backend": "influxdb", "url": f"http://127.0.0.1:{free_tcp_port()}", "database": "linetwin",
                 "timeout_s": 1, "flush_interval_s": 0.1, "forward_buffer_samples": 10_000_000,
                 "loss_alarm_clear_s": 1.0}
    async with live_alarm_line(historian=historian) as line:
        twin = line.twin
        assert twin.historian is not None
        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index("urn:linetwin:pilot_line")
            on_line, on_server = EventRecorder(), EventRecorder()
            await subscribe_events(client, client.get_node(ua.NodeId("pilot_line", ns)), on_line)
            await subscribe_events(client, client.nodes.server, on_server)
            # the buffer shrinks to 100 samples only now, so it overflows after the subscriber listens (on a loaded
            # machine the connect can take longer than a 100-sample buffer takes to fill: the event would be missed)
            twin.historian.backend.buffer.max_samples = 100  # type: ignore[attr-defined]

            await wait_until(lambda: any(e["ActiveState/Id"] for e in on_line.of(CONDITION)), 60,
                             what="the data-loss condition's active event at the line object")
            raised = next(e for e in on_line.of(CONDITION) if e["ActiveState/Id"])
            assert raised["EventType"] == ua.NodeId(ua.ObjectIds.AlarmConditionType)
            assert raised["SourceNode"] == ua.NodeId("pilot_line", ns) and raised["SourceName"] == "pilot_line"
            assert raised["ConditionName"] == "historian_data_loss" and raised["Severity"] == 800
            assert "historian lost" in raised["Message"].Text
            assert twin.historian.backend.buffer.dropped > 0  # type: ignore[attr-defined]
            await wait_until(lambda: any(e["ActiveState/Id"] for e in on_server.of(CONDITION)), 10,
                             what="the same event at the Server object")
            active_id = client.get_node(ua.NodeId(f"{CONDITION}.ActiveState.Id", ns))
            assert await active_id.read_value() is True
            assert "pilot_line.historian_data_loss" in twin.alarms.status_text()  # type: ignore[union-attr]

            # still down, but the buffer now has room: no more losses, so the condition clears after 1 s
            twin.historian.backend.buffer.max_samples = 10_000_000  # type: ignore[attr-defined]
            await wait_until(lambda: any(not e["ActiveState/Id"] for e in on_line.of(CONDITION)), 60,
                             what="the data-loss condition's return to normal")
            cleared = [e for e in on_line.of(CONDITION) if not e["ActiveState/Id"]][-1]
            assert "no samples lost for 1 s" in cleared["Message"].Text
            assert await active_id.read_value() is False
