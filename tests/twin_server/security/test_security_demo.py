"""The two-command quick start still works with security on: `linetwin demo` says that SecurityPolicy None is
enabled, prints an operator login created on first start, and that login may write a setpoint."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest
from asyncua import ua

from tests.conftest import REPO_ROOT, free_tcp_port, wait_until, write_accepted
from tests.security_helpers import Credentials, client_as

SETPOINT = "pilot_line.feed_tank.jacket_temperature_setpoint"


async def test_demo_prints_operator_login_that_may_write_a_setpoint(tmp_path):
    port = free_tcp_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linetwin_cli", "demo", "--port", str(port), "--duration", "120", "--speed", "10",
        "--data-dir", str(tmp_path / "history"),  # not examples/pilot_line.history: tests never write into the repo
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=REPO_ROOT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        credentials = None
        while credentials is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
            assert line, f"demo ended early: {lines}"
            lines.append(line)
            found = re.search(r"operator login .*user '(\w+)' password '([^']+)'", line)
            if found:
                credentials = Credentials(found.group(1), found.group(2))
        text = "".join(lines)
        assert "WARNING: SecurityPolicy None is enabled" in text
        assert "Basic256Sha256_SignAndEncrypt" in text and "Aes256Sha256RsaPss_SignAndEncrypt" in text
        async with client_as(f"opc.tcp://127.0.0.1:{port}/linetwin/", credentials) as client:
            idx = await client.get_namespace_index("urn:linetwin:pilot_line")
            setpoint = client.get_node(ua.NodeId(SETPOINT, idx))

            async def good() -> bool:
                return (await setpoint.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()

            await wait_until(good, timeout_s=30, what="setpoint read back")
            target = await setpoint.read_value() + 1.0
            # 20 °C/s: a 1 °C step within 50 ms of the first read-back is refused; a moment later it is not
            await wait_until(lambda: write_accepted(setpoint, target), timeout_s=10,
                             what=f"the write of {target} accepted")

            async def written() -> bool:  # a scan that read the PLC before the write may still mirror the old value
                return await setpoint.read_value() == pytest.approx(target)

            await wait_until(written, timeout_s=10, what=f"the setpoint reading back {target}")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), timeout=30)
