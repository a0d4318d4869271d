"""Interop: an independent OPC UA stack (node-opcua, installed by tools/test_setup.sh) browses, reads and
subscribes to the twin."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line

CLIENT = Path(__file__).resolve().parents[2] / "tools" / "node_interop" / "interop_client.js"


@pytest.mark.slow
async def test_node_opcua_client_browses_reads_and_subscribes():
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    assert (CLIENT.parent / "node_modules" / "node-opcua-client").is_dir(), "run tools/test_setup.sh first"
    async with live_pilot_line(scan_period_s=0.1, speed=20.0) as line:
        proc = await asyncio.create_subprocess_exec(
            node, str(CLIENT), line.url, NAMESPACE, "pilot_line", "feed_tank", "level",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        except TimeoutError:
            proc.kill()
            pytest.fail("node-opcua client did not finish within 60 s")
    assert proc.returncode == 0, stderr.decode()
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith('{"endpoint"')]
    assert lines, f"no result line from the node-opcua client; stdout: {stdout.decode()[-2000:]}"
    result = json.loads(lines[-1])
    assert "pilot_line" in result["objects"]
    units = {u["name"]: u["type"] for u in result["units"]}
    assert set(units) >= {"feed_tank", "crystallizer", "capture_column"}
    ns = result["namespaceIndex"]
    assert units["crystallizer"] == f"ns={ns};s=CrystallizerType"
    assert result["status"] == "Good"
    assert 0.0 <= result["value"] <= 2.0
    assert result["engineeringUnits"] == {"unitId": 0x4D5452, "displayName": "m"}
    assert result["euRange"] == {"low": 0.0, "high": 2.0}
    assert len(result["notifications"]) >= 3
    assert all(n["status"] == "Good" for n in result["notifications"])
