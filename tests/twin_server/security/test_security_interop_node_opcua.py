"""Interop: node-opcua (an independent stack) connects on a SignAndEncrypt channel with its own trusted
application certificate, logs in with a user name, writes a setpoint as operator and receives the
AuditWriteUpdateEvent the twin publishes on the Server object."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from asyncua import ua

from linetwin_cli.main import main
from tests.conftest import REPO_ROOT, wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as, line_root, make_certificate
from tests.twin_server.line_fixture import NAMESPACE
from tests.twin_server.security.test_security_roles import SETPOINT, audit_rows, twin_line

SCRIPT = REPO_ROOT / "tools" / "node_interop" / "secure_client.js"


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes256_Sha256_RsaPss"])
async def test_node_opcua_sign_and_encrypt_with_user_name_writes_and_sees_audit_event(tmp_path: Path, policy: str):
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop test (apt-get install -y nodejs npm)"
    app = make_certificate(tmp_path / "client", "node-opcua-scada")
    add_operator()
    assert main(["pki", "trust", str(app.pem_certificate), "--data-dir", str(line_root())]) == 0
    # the operator both writes and watches: let the operator see audit events (default: engineer and up)
    async with twin_line(audit_events_role="operator") as twin:
        async with client_as(twin.endpoint, OPERATOR) as probe:
            idx = await probe.get_namespace_index(NAMESPACE)
            setpoint = probe.get_node(ua.NodeId(SETPOINT, idx))
            await wait_until(lambda: _good(setpoint), what="setpoint read back")
            target = await setpoint.read_value() + 1.0
        env = {**os.environ, "LINETWIN_POLICY": policy, "LINETWIN_MODE": "SignAndEncrypt",
               "LINETWIN_CERT": str(app.pem_certificate), "LINETWIN_KEY": str(app.private_key),
               "LINETWIN_APP_URI": app.application_uri, "LINETWIN_PKI": str(tmp_path / "node_pki"),
               "LINETWIN_USER": OPERATOR.user, "LINETWIN_PASSWORD": OPERATOR.password}
        proc = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), twin.endpoint, f"ns={idx};s={SETPOINT}", str(target), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=90)
        except TimeoutError:
            proc.kill()
            pytest.fail("node-opcua client did not finish within 90 s")
    assert proc.returncode == 0, stderr.decode()[-3000:]
    result = json.loads([ln for ln in stdout.decode().splitlines() if ln.startswith("{")][-1])
    assert result["writeStatus"] == "Good"
    assert result["readBack"] == pytest.approx(target)
    audit_events = [e for e in result["events"] if e["EventType"] == "ns=0;i=2100"]
    assert audit_events and audit_events[-1]["SourceName"] == SETPOINT
    assert audit_events[-1]["ClientUserId"] == "operator"
    writes = [r for r in audit_rows("write") if r["node"] == SETPOINT]
    assert writes[-1]["user"] == "operator" and app.application_uri in writes[-1]["client"]
    assert writes[-1]["new_value"] == pytest.approx(target)
    logins = [r for r in audit_rows("login") if r["user"] == "operator"]
    assert any(app.application_uri in r["client"] for r in logins)


async def _good(node) -> bool:
    return (await node.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()
