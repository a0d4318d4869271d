"""Interop: node-opcua (an independent OPC UA stack) reads the twin's raw history and 1-min Averages."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from tests.conftest import wait_until
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line

CLIENT = Path(__file__).resolve().parents[3] / "tools" / "node_interop" / "history_client.js"
T0 = datetime(2022, 5, 1, tzinfo=UTC)
KEY = "pilot_line.feed_tank.temperature"


def _value(i: int) -> float:
    return 20.0 + (i % 37) * 0.25


@pytest.mark.slow
async def test_node_opcua_reads_raw_history_and_averages():
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    assert (CLIENT.parent / "node_modules" / "node-opcua-client").is_dir(), "run tools/test_setup.sh first"
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line:
        await line.twin.runtime.mirror_samples("feed_tank", [
            Sample("temperature", _value(i), Quality.GOOD, T0 + timedelta(seconds=i)) for i in range(300)])
        backend = line.twin.historian.backend
        end_us = int((T0 + timedelta(seconds=300)).timestamp() * 1e6)
        await wait_until(lambda: len(backend.read_raw(KEY, 0, end_us)) == 300, timeout_s=30.0,
                         what="300 samples in the historian")
        proc = await asyncio.create_subprocess_exec(
            node, str(CLIENT), line.url, NAMESPACE, KEY, T0.isoformat(), (T0 + timedelta(seconds=300)).isoformat(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        except TimeoutError:
            proc.kill()
            pytest.fail("node-opcua history client did not finish within 60 s")
    assert proc.returncode == 0, stderr.decode()
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
    assert lines, f"no result line from the node-opcua client; stdout: {stdout.decode()[-2000:]}"
    result = json.loads(lines[-1])
    assert result["historizing"] is True and result["accessLevel"] & 0x04
    assert result["rawStatus"] == "Good"
    raw = [r for r in result["raw"] if r["status"] == "Good"]
    assert [r["value"] for r in raw][:300] == pytest.approx([_value(i) for i in range(300)])
    assert result["averageStatus"] == "Good"
    averages = [a["value"] for a in result["averages"]]
    assert averages == pytest.approx([sum(_value(i) for i in range(60 * m, 60 * m + 60)) / 60 for m in range(5)])
