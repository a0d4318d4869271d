"""Users and roles over real OPC UA sessions (asyncua client ↔ twin on loopback): the admin hole is closed,
writes, calls and node management are checked per node and role, refusals get BadUserAccessDenied, failed
logins lock out, and every decision lands in the hash-chained audit store with old and new value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asyncua import ua

from tests.conftest import wait_until
from tests.security_helpers import add_operator, add_user, client_as, data_dir
from tests.twin_server.line_fixture import NAMESPACE, live_line, pilot_config
from twin_server.security.audit_store import export_entries, verify_chain
from twin_server.security.node_access import WELL_KNOWN_ROLE_IDS
from twin_server.security.roles import Role
from twin_server.server import TwinServer

SETPOINT = "pilot_line.feed_tank.jacket_temperature_setpoint"


@asynccontextmanager
async def twin_line(**security: object) -> AsyncIterator[TwinServer]:
    config = pilot_config(0.1, ("capture_column",), **security)
    async with live_line(config, 20.0) as line:
        line.twin.bench = line.bench  # type: ignore[attr-defined]  # for tests that stop a PLC
        yield line.twin


def audit_rows(action: str | None = None) -> list[dict]:
    rows = list(export_entries(data_dir() / "audit.sqlite", None, None))
    return [r for r in rows if action is None or r["action"] == action]


async def _good(node) -> bool:
    return (await node.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()


async def test_admin_with_any_password_gets_nothing_before_and_after_a_users_file():
    async with twin_line(login_throttle_after=10) as twin:  # the address throttle has its own tests
        for password in ("", "admin", "wrong"):
            client = client_as(twin.endpoint, None)
            client.set_user("admin")
            client.set_password(password)
            with pytest.raises(ua.UaError):
                await client.connect()
            client.disconnect_socket()
        add_operator()
        client = client_as(twin.endpoint, None)
        client.set_user("Admin")
        client.set_password("anything")
        with pytest.raises(ua.UaError):
            await client.connect()
        client.disconnect_socket()
    logins = audit_rows("login")
    assert len(logins) == 4 and all(r["outcome"] == "refused" for r in logins)
    assert "no users file" in logins[0]["reason"] and logins[-1]["reason"] == "unknown user"
    assert logins[0]["client"].startswith("urn:") and "127.0.0.1:" in logins[0]["client"]


STEP = 0.1
"""°C: what every role tries to write on top of the setpoint. The setpoint's rate limit (20 °C/s) allows it 5 ms
after the PLC took its value; the operator writes after two other sessions and logins (a step of 1 °C needed 50 ms,
which a fast start-up did not always leave)."""


async def test_viewer_write_refused_operator_write_accepted_both_audited_with_old_and_new_value():
    add_operator()
    add_user("vera", Role.VIEWER, "viewer-password")
    async with twin_line() as twin:
        async with client_as(twin.endpoint, None) as anonymous:
            idx = await anonymous.get_namespace_index(NAMESPACE)
            setpoint = anonymous.get_node(ua.NodeId(SETPOINT, idx))
            await wait_until(lambda: _good(setpoint), what="setpoint read back")
            before = await setpoint.read_value()
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await setpoint.write_value(ua.DataValue(ua.Variant(before + STEP, ua.VariantType.Double)))
        async with client_as(twin.endpoint, _cred("vera", "viewer-password")) as viewer:
            setpoint = viewer.get_node(ua.NodeId(SETPOINT, idx))
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await setpoint.write_value(ua.DataValue(ua.Variant(before + STEP, ua.VariantType.Double)))
            access = (await setpoint.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value
            assert not access & ua.AccessLevel.CurrentWrite.mask
            perms = (await setpoint.read_attribute(ua.AttributeIds.UserRolePermissions)).Value.Value
            assert [p.RoleId for p in perms] == [WELL_KNOWN_ROLE_IDS[Role.VIEWER]]
            assert not perms[0].Permissions & ua.PermissionType.Write
        plc = twin.runtime.adapters["feed_tank"]
        async with client_as(twin.endpoint, _cred("operator", "operator-test-password")) as operator:
            setpoint = operator.get_node(ua.NodeId(SETPOINT, idx))
            assert (await setpoint.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value \
                & ua.AccessLevel.CurrentWrite.mask
            all_perms = (await setpoint.read_attribute(ua.AttributeIds.RolePermissions)).Value.Value
            writers = {p.RoleId for p in all_perms if p.Permissions & ua.PermissionType.Write}
            assert writers == {WELL_KNOWN_ROLE_IDS[r] for r in (Role.OPERATOR, Role.ENGINEER, Role.ADMIN)}
            await setpoint.write_value(ua.DataValue(ua.Variant(before + STEP, ua.VariantType.Double)))
            assert await setpoint.read_value() == pytest.approx(before + STEP)
            assert plc is not None
    writes = [r for r in audit_rows("write") if r["node"] == SETPOINT]
    assert [(r["user"], r["role"], r["outcome"], r["status"]) for r in writes] == [
        ("anonymous", "viewer", "refused", "BadUserAccessDenied"),
        ("vera", "viewer", "refused", "BadUserAccessDenied"),
        ("operator", "operator", "accepted", "Good"),
    ]
    for r in writes:
        assert r["old_value"] == pytest.approx(before) and r["new_value"] == pytest.approx(before + STEP)
    assert "viewer" in writes[0]["reason"]
    assert verify_chain(data_dir() / "audit.sqlite").ok


async def test_node_management_and_attribute_writes_refused_for_every_role():
    add_operator()
    add_user("root", Role.ADMIN, "admin-password")
    async with twin_line() as twin, client_as(twin.endpoint, _cred("root", "admin-password")) as admin:
        idx = await admin.get_namespace_index(NAMESPACE)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await admin.nodes.objects.add_object(idx, "intruder")
        tag = admin.get_node(ua.NodeId(SETPOINT, idx))
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await admin.delete_nodes([tag])
        with pytest.raises(ua.uaerrors.BadNotWritable):  # no role may: the node's WriteMask says read-only
            await tag.write_attribute(ua.AttributeIds.DisplayName,
                                      ua.DataValue(ua.Variant(ua.LocalizedText("x"), ua.VariantType.LocalizedText)))
        connected = admin.get_node(ua.NodeId("pilot_line.feed_tank.plc_connected", idx))
        with pytest.raises((ua.uaerrors.BadUserAccessDenied, ua.uaerrors.BadNotWritable)):
            await connected.write_value(ua.DataValue(ua.Variant(False, ua.VariantType.Boolean)))
        assert (await tag.read_browse_name()).Name == "jacket_temperature_setpoint"
    refused = [r["action"] for r in audit_rows() if r["outcome"] == "refused"]
    assert "add_nodes" in refused and "delete_nodes" in refused


async def test_start_batch_needs_operator():
    add_operator()
    async with twin_line() as twin:
        async with client_as(twin.endpoint, None) as viewer:
            idx = await viewer.get_namespace_index(NAMESPACE)
            control = viewer.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
            start = ua.NodeId("pilot_line.crystallizer.control.StartBatch", idx)
            assert (await viewer.get_node(start).read_attribute(ua.AttributeIds.UserExecutable)).Value.Value is False
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await control.call_method(start)
            mode = viewer.get_node(ua.NodeId("pilot_line.crystallizer.control.mode", idx))
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await mode.write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
        async with client_as(twin.endpoint, _cred("operator", "operator-test-password")) as operator:
            assert (await operator.get_node(start).read_attribute(ua.AttributeIds.UserExecutable)).Value.Value
            mode = operator.get_node(ua.NodeId("pilot_line.crystallizer.control.mode", idx))
            await mode.write_value(ua.DataValue(ua.Variant("manual", ua.VariantType.String)))  # no-op: not audited
            await mode.write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
    calls = audit_rows("call")
    assert calls[0]["outcome"] == "refused" and calls[0]["node"].endswith("StartBatch")
    modes = audit_rows("mode_change")
    assert [(r["user"], r["outcome"], r["old_value"], r["new_value"]) for r in modes] == [
        ("anonymous", "refused", "manual", "auto"), ("operator", "accepted", "manual", "auto")]


async def test_wrong_passwords_are_refused_and_lock_out_user_and_address():
    add_operator()
    async with twin_line(max_failed_logins=3, lockout_s=60.0) as twin:
        for _ in range(3):
            client = client_as(twin.endpoint, _cred("operator", "not-the-password"))
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.connect()
            client.disconnect_socket()
        client = client_as(twin.endpoint, _cred("operator", "operator-test-password"))
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.connect()
        client.disconnect_socket()
    logins = audit_rows("login")
    assert [r["outcome"] for r in logins] == ["refused"] * 4
    assert "wrong password" in logins[0]["reason"] and "now locked out" in logins[2]["reason"]
    assert "locked out" in logins[3]["reason"]


def _cred(user: str, password: str):
    from tests.security_helpers import Credentials

    return Credentials(user, password)
