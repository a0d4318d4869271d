"""Interop: node-opcua (an independent stack) sees the limit alarm raised by the HIL feed tank, acknowledges it
with a comment, sees it clear, reconnects and gets the retained condition through ConditionRefresh."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.security_helpers import OPERATOR
from tests.twin_server.alarms.alarm_line import CONDITION, drive_jacket, live_alarm_line
from twin_server.audit import AuditEntry

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "node_interop" / "alarm_watch.js"


async def test_node_opcua_sees_acknowledges_and_refreshes_a_limit_alarm():
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    assert (SCRIPT.parent / "node_modules" / "node-opcua-client").is_dir(), "run tools/test_setup.sh first"
    async with live_alarm_line() as line:
        audit: list[AuditEntry] = []
        line.twin.audit.sinks.append(audit.append)
        assert line.twin.space is not None and line.twin.runtime is not None
        condition_id = f"ns={line.twin.space.namespace_index};s={CONDITION}"
        env = {**os.environ, "LINETWIN_USER": OPERATOR.user, "LINETWIN_PASSWORD": OPERATOR.password}
        proc = await asyncio.create_subprocess_exec(node, str(SCRIPT), line.url, condition_id, "seen by node-opcua",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    env=env)
        steps: list[dict] = []
        try:
            async with asyncio.timeout(170):
                assert proc.stdout is not None
                while line_bytes := await proc.stdout.readline():
                    if not line_bytes.startswith(b'{"step"'):
                        continue  # node-opcua's own log lines
                    step = json.loads(line_bytes)
                    steps.append(step)
                    if step["step"] == "ready":  # drive the jacket past its 30 °C high limit
                        await drive_jacket(line.twin, 40.0)
                    elif step["step"] == "acknowledge":  # and back to normal
                        await drive_jacket(line.twin, 20.0)
                await proc.wait()
        except TimeoutError:
            proc.kill()
            pytest.fail(f"node-opcua client did not finish; steps: {steps[-5:]}")
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert proc.returncode == 0, f"{steps[-3:]} {stderr[-2000:]}"
    names = [s["step"] for s in steps]
    assert names.index("ready") < names.index("acknowledge") < names.index("reconnect") < names.index("refresh")
    assert names[-1] == "done"
    assert next(s for s in steps if s["step"] == "acknowledge")["status"] == "Good"
    mine = [s for s in steps if s["step"] == "event" and s["ConditionId"] == condition_id]
    assert mine[0]["ActiveState.Id"] is True and mine[0]["AckedState.Id"] is False
    assert mine[0]["EventType"] in ("ns=0;i=9341", "i=9341") and mine[0]["ConditionName"] == "jacket_temperature_limit"
    assert any(s["AckedState.Id"] is True and s["Comment"] == "seen by node-opcua" for s in mine)
    refresh_at = names.index("reconnect")
    refreshed = [s for s in steps[refresh_at:] if s["step"] == "event" and s.get("ConditionId") == condition_id]
    assert refreshed and refreshed[-1]["Retain"] is True and refreshed[-1]["ActiveState.Id"] is False
    assert any(a.action == "acknowledge" and a.reason == "seen by node-opcua" for a in audit)
