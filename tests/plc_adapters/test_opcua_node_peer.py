"""The OPC UA adapter against an independent stack: a node-opcua server (tools/node_interop/plc_server.js) as PLC."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from asyncua import ua

from plc_adapters.errors import WriteRefusal, WriteRefused
from plc_adapters.opcua_adapter import OpcUaAdapter
from plc_adapters.opcua_errors import PlcRefusedWrite
from plc_adapters.opcua_spec import NodeAddress, OpcUaConnection, OpcUaTagSpec
from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from plc_adapters.tag_map import Direction, Range
from tests.conftest import REPO_ROOT, free_tcp_port, wait_until

SERVER = REPO_ROOT / "tools" / "node_interop" / "plc_server.js"
URI = "http://linetwin.test/node-opcua-plc"
PERIOD_S = 0.3


def _tag(name: str, direction: Direction, unit: str, eu: tuple[float, float], member: str) -> OpcUaTagSpec:
    return OpcUaTagSpec(name, direction, unit, Range(*eu), NodeAddress(URI, f's="DB_Crystallizer"."{member}"'))


TAGS = [
    _tag("temperature", Direction.MEASURED, "CEL", (-10.0, 100.0), "Temperature"),
    _tag("solute_concentration", Direction.MEASURED, "KMQ", (0.0, 500.0), "Concentration"),
    _tag("jacket_temperature_setpoint", Direction.COMMANDED, "CEL", (-20.0, 120.0), "JacketSetpoint"),
    _tag("agitator_speed_setpoint", Direction.COMMANDED, "RPM", (0.0, 800.0), "AgitatorSpeed"),
]


@pytest.fixture
async def node_plc() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    assert (SERVER.parent / "node_modules" / "node-opcua-server").is_dir(), "run tools/test_setup.sh first"
    port = free_tcp_port()
    proc = await asyncio.create_subprocess_exec(node, str(SERVER), str(port), URI, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
            assert line, "node-opcua PLC exited before it was ready"
            if line.startswith("READY "):
                break
        yield proc, port
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_adapter_mirrors_and_writes_a_node_opcua_plc(node_plc: tuple[asyncio.subprocess.Process, int]) -> None:
    proc, port = node_plc
    batches: list[tuple[float, list[Sample]]] = []
    connection = OpcUaConnection("127.0.0.1", port, publishing_interval_s=PERIOD_S, timeout_s=2.0)
    adapter = OpcUaAdapter("crystallizer", connection, TAGS, PERIOD_S, backoff_initial_s=0.05, backoff_max_s=0.3,
                           on_samples=lambda s: batches.append((asyncio.get_running_loop().time(), s)))
    await adapter.start()
    try:
        await wait_until(lambda: adapter.connected and adapter.last_samples["temperature"].quality is Quality.GOOD,
                         timeout_s=30, what="temperature Good from node-opcua")
        first = adapter.last_samples["temperature"].value
        await wait_until(lambda: adapter.last_samples["temperature"].value != first, what="live temperature")
        assert adapter.namespace_indices[URI] >= 2  # resolved by URI (a placeholder namespace sits before it)
        concentration = adapter.last_samples["solute_concentration"]
        assert concentration.quality is Quality.UNCERTAIN_SENSOR_NOT_ACCURATE  # the PLC's own status code
        assert concentration.value == 151.5
        assert concentration.source_timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert not adapter.eu_mismatches, dict(adapter.eu_mismatches)

        await adapter.write("jacket_temperature_setpoint", 33.5)
        await adapter.write("agitator_speed_setpoint", 420.2)  # UInt16 on the PLC: 420
        await wait_until(lambda: adapter.last_samples["agitator_speed_setpoint"].value == 420.0, what="read-back")
        await wait_until(lambda: adapter.last_samples["jacket_temperature_setpoint"].value == 33.5, what="read-back")
        with pytest.raises(PlcRefusedWrite) as refused:
            await adapter.write("agitator_speed_setpoint", 700.0)  # the PLC's own limit is 600
        assert refused.value.status_code == ua.StatusCodes.BadOutOfRange

        killed = asyncio.get_running_loop().time()
        proc.kill()
        await wait_until(lambda: adapter.last_samples["temperature"].quality is Quality.BAD_COMMUNICATION_ERROR,
                         timeout_s=10, what="Bad_CommunicationError after the PLC died")
        bad_at = next(t for t, batch in batches if t >= killed and
                      any(s.quality is Quality.BAD_COMMUNICATION_ERROR for s in batch))
        assert bad_at - killed <= 2 * PERIOD_S + 0.5  # slack for event-loop latency on a loaded machine
        with pytest.raises(WriteRefused) as down:
            await adapter.write("jacket_temperature_setpoint", 34.0)
        assert down.value.reason is WriteRefusal.COMMUNICATION_ERROR
    finally:
        await adapter.stop()
