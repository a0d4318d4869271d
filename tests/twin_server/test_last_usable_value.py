"""What a client sees when a source fails: the last usable value, flagged Uncertain (OPC 10000-8 §7.3.2), never a
null value and never a stale Good; Good again with fresh values after recovery. Checked from two independent OPC
UA stacks (asyncua and node-opcua) against the live demo line."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from pathlib import Path

import pytest
from asyncua import Client, ua

from plc_adapters.quality import Quality
from tests.conftest import wait_until
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line
from twin_server.status_codes import published_status

WATCH = Path(__file__).resolve().parents[2] / "tools" / "node_interop" / "quality_watch.js"
NO_COMMS = ua.StatusCodes.UncertainNoCommunicationLastUsableValue
LAST_USABLE = ua.StatusCodes.UncertainLastUsableValue


class Recorder:
    """asyncua subscription handler: every data change of one node, in order."""

    def __init__(self) -> None:
        self.changes: list[ua.DataValue] = []

    def datachange_notification(self, node, val, data) -> None:
        self.changes.append(data.monitored_item.Value)


def first_not_good(changes: list) -> int | None:
    return next((i for i, c in enumerate(changes) if not _good(c)), None)


def _good(change) -> bool:
    return change["good"] if isinstance(change, dict) else change.StatusCode.is_good()


class NodeWatch:
    """The node-opcua client (tools/node_interop/quality_watch.js), its JSON lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.startswith(b"{"):
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    async def finish(self, timeout_s: float) -> tuple[int, str]:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader
        assert self.proc.stderr is not None
        return self.proc.returncode or 0, (await self.proc.stderr.read()).decode()


@pytest.mark.slow
async def test_comms_loss_shows_last_usable_value_to_asyncua_and_node_opcua_then_recovers():
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    assert (WATCH.parent / "node_modules" / "node-opcua-client").is_dir(), "run tools/test_setup.sh first"
    tag = "pilot_line.crystallizer.temperature"
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line, Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        temperature = client.get_node(ua.NodeId(tag, idx))
        recorder = Recorder()
        subscription = await client.create_subscription(100, recorder)
        await subscription.subscribe_data_change(temperature, queuesize=100)
        proc = await asyncio.create_subprocess_exec(node, str(WATCH), line.url, NAMESPACE, tag,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        watch = NodeWatch(proc)
        try:
            await wait_until(lambda: len([c for c in watch.of("change") if c["good"]]) >= 2
                             and sum(1 for c in recorder.changes if c.StatusCode.is_good()) >= 2,
                             timeout_s=30, what="Good values at both clients before the outage")

            plc = line.bench.plc("crystallizer")
            await plc.stop()
            await wait_until(lambda: first_not_good(recorder.changes) is not None and watch.of("read"),
                             timeout_s=20, what="both clients seeing the outage")
            during = await temperature.read_data_value(raise_on_bad_status=False)
            assert await client.get_node(ua.NodeId("pilot_line.crystallizer.plc_connected", idx)).read_value() is False

            await plc.start()  # same port: a PLC power-cycle
            returncode, stderr = await watch.finish(timeout_s=60)
            assert returncode == 0, f"node-opcua client did not see the recovery: {stderr[-2000:]}"
            await wait_until(lambda: _good(recorder.changes[-1]), timeout_s=20, what="asyncua client Good again")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # asyncua: the first change that is not Good carries the last Good value, flagged "no communication".
    i = first_not_good(recorder.changes)
    assert i is not None and i > 0
    last_good, lost = recorder.changes[i - 1], recorder.changes[i]
    assert lost.StatusCode.value == NO_COMMS, lost.StatusCode.name
    assert lost.Value.VariantType == ua.VariantType.Double and lost.Value.Value is not None
    assert lost.Value.Value == last_good.Value.Value
    assert during.StatusCode.value == NO_COMMS and during.Value.Value == last_good.Value.Value
    # the held value keeps the time it was read: it does not look like fresh data
    assert lost.SourceTimestamp == last_good.SourceTimestamp
    assert during.SourceTimestamp == last_good.SourceTimestamp
    recovered = recorder.changes[-1]
    assert recovered.StatusCode.is_good() and math.isfinite(recovered.Value.Value)
    assert recovered.SourceTimestamp > lost.SourceTimestamp

    # node-opcua: the same, by subscription and by Read.
    changes = watch.of("change")
    j = first_not_good(changes)
    assert j is not None and j > 0
    assert changes[j]["status"] == "UncertainNoCommunicationLastUsableValue"
    assert isinstance(changes[j]["value"], float) and changes[j]["value"] == changes[j - 1]["value"]
    read = watch.of("read")[0]
    assert read["status"] == "UncertainNoCommunicationLastUsableValue" and read["value"] == changes[j - 1]["value"]
    assert changes[-1]["good"] and isinstance(changes[-1]["value"], float)


async def test_instrument_failure_shows_last_usable_value_until_the_instrument_is_back():
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line, Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        temperature = client.get_node(ua.NodeId("pilot_line.feed_tank.temperature", idx))
        recorder = Recorder()
        subscription = await client.create_subscription(100, recorder)
        await subscription.subscribe_data_change(temperature, queuesize=100)
        await wait_until(lambda: sum(1 for c in recorder.changes if c.StatusCode.is_good()) >= 2, timeout_s=30,
                         what="Good feed tank temperature")
        plc = line.bench.plc("feed_tank")
        plc.hold_measurement("temperature")  # the Pt100 channel reads NaN
        await wait_until(lambda: first_not_good(recorder.changes) is not None, what="the instrument failure")
        during = await temperature.read_data_value(raise_on_bad_status=False)
        plc.release_measurement("temperature")
        await wait_until(lambda: _good(recorder.changes[-1]), timeout_s=20, what="Good again")

    i = first_not_good(recorder.changes)
    assert i is not None and i > 0
    lost = recorder.changes[i]
    assert lost.StatusCode.value == LAST_USABLE, lost.StatusCode.name
    assert lost.Value.Value is not None and lost.Value.Value == recorder.changes[i - 1].Value.Value
    assert during.StatusCode.value == LAST_USABLE and during.Value.Value == lost.Value.Value


@pytest.mark.parametrize(("quality", "has_value", "expected"), [
    (Quality.GOOD, True, ua.StatusCodes.Good),
    (Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED, True, ua.StatusCodes.UncertainEngineeringUnitsExceeded),
    (Quality.BAD_COMMUNICATION_ERROR, True, NO_COMMS),
    (Quality.BAD_NOT_CONNECTED, True, NO_COMMS),
    (Quality.BAD_DEVICE_FAILURE, True, LAST_USABLE),
    (Quality.BAD_COMMUNICATION_ERROR, False, ua.StatusCodes.BadCommunicationError),
    (Quality.BAD_DEVICE_FAILURE, False, ua.StatusCodes.BadDeviceFailure),
    (Quality.BAD_WAITING_FOR_INITIAL_DATA, False, ua.StatusCodes.BadWaitingForInitialData),
])
def test_published_status_is_bad_only_without_a_usable_value(quality, has_value, expected):
    assert published_status(quality, has_value).value == expected
