"""Client writes over real sockets (asyncua client ↔ twin ↔ pymodbus PLC): only what the twin owns is writable,
node management is refused for every client, write outcomes are said truly, and every decision is audited."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asyncua import Client, ua
from asyncua.crypto.permission_rules import User, UserRole

from plc_adapters import RegisterTable, encode
from tests.conftest import free_tcp_port, wait_until, write_accepted
from tests.plc_adapters.conftest import ModbusTestServer
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_pilot_line
from tests.twin_server.test_control_loop import control_node, controlled_line, start_batch, wait_for_good_measurements
from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.config import LineConfig, load_line_config
from twin_server.server import TwinServer

SETPOINT = "pilot_line.feed_tank.jacket_temperature_setpoint"
SESSION_ACTIONS = {"login", "logout", "config_load", "server_stop"}
"""Entries around the writes (sessions, the config load, the clean stop) that these tests do not count."""


def collect_writes(entries: list[AuditEntry]):
    """An audit sink keeping the entries of write decisions (not the logins/logouts around them)."""
    return lambda e: entries.append(e) if e.action not in SESSION_ACTIONS else None


class NamedUsers:
    """A user manager that names each session's user after its login (no passwords checked): a stand-in for the
    project's users file (twin_server/security), so that the audit trail and the ``authorize`` hook see names."""

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User:  # noqa: ANN001
        return User(role=UserRole.User, name=username) if username else User(role=UserRole.Anonymous)


def feed_tank_line(port: int, timeout_s: float = 0.3, scan_period_s: float = 0.1) -> LineConfig:
    """The pilot line's feed tank alone, its PLC at 127.0.0.1:``port``."""
    base = load_line_config(PILOT)
    unit = base.unit("feed_tank")
    unit = dataclasses.replace(unit, connection=dataclasses.replace(unit.connection, host="127.0.0.1", port=port,
                                                                     timeout_s=timeout_s))
    return dataclasses.replace(base, units=(unit,), scan_period_s=scan_period_s)


@asynccontextmanager
async def serving(config: LineConfig) -> AsyncIterator[tuple[TwinServer, list[AuditEntry]]]:
    add_operator()
    twin = TwinServer(config, endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/")
    entries: list[AuditEntry] = []
    twin.audit.sinks.append(collect_writes(entries))
    await twin.start()
    try:
        yield twin, entries
    finally:
        await twin.stop()


def node(client: Client, idx: int, identifier: str):
    return client.get_node(ua.NodeId(identifier, idx))


def double(value: float) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, ua.VariantType.Double))


async def test_operator_can_change_nothing_the_twin_does_not_own():
    async with live_pilot_line() as line:
        entries: list[AuditEntry] = []
        line.twin.audit.sinks.append(collect_writes(entries))
        # "Admin" with any password cannot even log in (tests/twin_server/security); an operator, the role that
        # may write setpoints, can still change nothing else
        async with client_as(line.url, OPERATOR) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            connected = node(client, idx, "pilot_line.feed_tank.plc_connected")
            await wait_until(connected.read_value, what="feed_tank connected")
            temperature = node(client, idx, "pilot_line.feed_tank.temperature")
            setpoint = node(client, idx, SETPOINT)
            eu_range = node(client, idx, f"{SETPOINT}.EURange")
            estimate = node(client, idx, "pilot_line.crystallizer.control.estimated_d43")
            refused_not_writable = [
                (connected, ua.AttributeIds.Value, ua.Variant(False, ua.VariantType.Boolean)),
                (temperature, ua.AttributeIds.Value, ua.Variant(50.0, ua.VariantType.Double)),
                (estimate, ua.AttributeIds.Value, ua.Variant(1.0, ua.VariantType.Double)),
                (eu_range, ua.AttributeIds.Value,
                 ua.Variant(ua.Range(Low=-1e9, High=1e9), ua.VariantType.ExtensionObject)),
                (setpoint, ua.AttributeIds.DisplayName, ua.Variant(ua.LocalizedText("renamed"))),
                (setpoint, ua.AttributeIds.AccessLevel, ua.Variant(0, ua.VariantType.Byte)),
            ]
            for target, attribute, variant in refused_not_writable:
                with pytest.raises(ua.uaerrors.BadNotWritable):
                    await target.write_attribute(attribute, ua.DataValue(variant))
            assert await connected.read_value() is True
            assert (await setpoint.read_display_name()).Text == "jacket_temperature_setpoint"
            assert (await eu_range.read_value()).High == 150.0
            with pytest.raises(ua.uaerrors.BadNodeIdUnknown):
                await node(client, idx, "pilot_line.feed_tank.no_such_tag").write_value(double(1.0))
            server_status_state = client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State))
            with pytest.raises((ua.uaerrors.BadNotWritable, ua.uaerrors.BadUserAccessDenied)):
                await server_status_state.write_value(ua.DataValue(ua.Variant(1, ua.VariantType.Int32)))

            line_node = node(client, idx, "pilot_line")
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await line_node.add_variable(ua.NodeId("pilot_line.intruder", idx), "intruder", 1.0)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.delete_nodes([temperature])
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await line_node.add_reference(temperature.nodeid, ua.ObjectIds.Organizes)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await line_node.delete_reference(node(client, idx, "pilot_line.feed_tank").nodeid,
                                                 ua.ObjectIds.HasComponent)
            assert (await temperature.read_browse_name()).Name == "temperature"
            children = {(await c.read_browse_name()).Name for c in await line_node.get_children()}
            assert children == {"feed_tank", "crystallizer", "capture_column", "alarms"}  # nothing added or removed

    assert entries and all(e.outcome is AuditOutcome.REFUSED and e.reason for e in entries)
    by_node = {e.node: e for e in entries}
    assert by_node["pilot_line.feed_tank.plc_connected"].status == "BadNotWritable"
    assert by_node["pilot_line.feed_tank.plc_connected"].old_value is True
    assert by_node["pilot_line.feed_tank.plc_connected"].new_value is False
    assert by_node["pilot_line.feed_tank.no_such_tag"].status == "BadNodeIdUnknown"
    assert {e.action for e in entries} >= {"write", "write DisplayName", "add_nodes", "delete_nodes",
                                           "add_references", "delete_references"}


async def test_authorize_hook_and_audit_lines_name_user_node_old_and_new_value(caplog):
    caplog.set_level(logging.INFO, logger="linetwin.audit")
    plc = ModbusTestServer()
    await plc.start()
    try:
        config = feed_tank_line(plc.port)
        spec = next(t for t in config.unit("feed_tank").tags if t.name == "jacket_temperature_setpoint")
        await plc.set(RegisterTable.HOLDING, spec.address, encode(spec, 40.0))
        async with serving(config) as (twin, entries):
            twin.server.iserver.user_manager = NamedUsers()
            twin.guard.authorize = lambda user, node_id, attribute: (
                ua.StatusCodes.BadUserAccessDenied if user.name == "vera.viewer" else None)
            for user in ("vera.viewer", "olga.operator"):
                client = Client(twin.endpoint)
                client.set_user(user)
                client.set_password("secret")
                async with client:
                    idx = await client.get_namespace_index(NAMESPACE)
                    setpoint = node(client, idx, SETPOINT)
                    await wait_until(lambda n=setpoint: _is_good(n), what="setpoint read back")
                    if user == "vera.viewer":
                        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                            await setpoint.write_value(double(41.0))
                        assert plc.write_requests() == []
                    else:
                        await wait_until(lambda n=setpoint: write_accepted(n, 41.0), what="operator write accepted")
                        assert await setpoint.read_value() == pytest.approx(41.0)
    finally:
        await plc.stop()
    viewer = [e for e in entries if e.user == "vera.viewer"]
    assert len(viewer) == 1 and viewer[0].status == "BadUserAccessDenied" and "may not write" in viewer[0].reason
    accepted = [e for e in entries if e.outcome is AuditOutcome.ACCEPTED]
    assert len(accepted) == 1
    assert (accepted[0].user, accepted[0].node, accepted[0].old_value, accepted[0].new_value) == (
        "olga.operator", SETPOINT, pytest.approx(40.0), 41.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "linetwin.audit"]
    assert any("olga.operator" in line and SETPOINT in line and "40.0 -> 41.0" in line for line in lines), lines
    assert any("vera.viewer" in line and "BadUserAccessDenied" in line and "may not write" in line for line in lines)


async def test_write_to_a_unit_whose_plc_was_never_reached_is_bad_communication_error():
    async with (serving(feed_tank_line(free_tcp_port())) as (twin, entries),
                client_as(twin.endpoint, OPERATOR) as client):
        idx = await client.get_namespace_index(NAMESPACE)
        setpoint = node(client, idx, SETPOINT)  # max_rate 20 °C/s: no current value is known

        async def bad() -> bool:
            dv = await setpoint.read_data_value(raise_on_bad_status=False)
            return dv.StatusCode.value == ua.StatusCodes.BadCommunicationError

        await wait_until(bad, what="Bad_CommunicationError from the unreachable PLC")
        with pytest.raises(ua.uaerrors.BadCommunicationError):
            await setpoint.write_value(double(40.0))
    assert [(e.status, e.outcome) for e in entries] == [("BadCommunicationError", AuditOutcome.REFUSED)]
    assert "not connected" in entries[0].reason


async def test_write_of_unknown_outcome_is_bad_timeout_audited_unknown_and_read_back():
    plc = ModbusTestServer()
    await plc.start()
    try:
        config = feed_tank_line(plc.port, timeout_s=0.3)
        spec = next(t for t in config.unit("feed_tank").tags if t.name == "jacket_temperature_setpoint")
        await plc.set(RegisterTable.HOLDING, spec.address, encode(spec, 40.0))
        async with serving(config) as (twin, entries), client_as(twin.endpoint, OPERATOR, timeout=10) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            setpoint = node(client, idx, SETPOINT)
            await wait_until(lambda: _is_good(setpoint), what="setpoint read back")
            await wait_until(lambda: twin.runtime.adapters["feed_tank"].stats.scans >= 10, what="10 scans")
            plc.response_delay_s = 1.5  # the PLC hangs with the write request in hand, applies it when it resumes
            with pytest.raises(ua.uaerrors.BadTimeout):
                await setpoint.write_value(double(41.5))

            async def applied() -> bool:
                return await plc.get(RegisterTable.HOLDING, spec.address, 2) == encode(spec, 41.5)

            await wait_until(applied, timeout_s=10, what="the PLC to apply the write when it resumes")
            plc.response_delay_s = 0.0

            async def reported() -> bool:
                dv = await setpoint.read_data_value(raise_on_bad_status=False)
                return dv.StatusCode.is_good() and dv.Value.Value == pytest.approx(41.5)

            await wait_until(reported, timeout_s=10, what="the twin to report what the PLC holds")
            assert dict(twin.runtime.adapters["feed_tank"].unconfirmed_writes) == {}
    finally:
        await plc.stop()
    unknown = [e for e in entries if e.outcome is AuditOutcome.UNKNOWN]
    assert len(unknown) == 1 and unknown[0].status == "BadTimeout" and unknown[0].new_value == 41.5
    assert "may or may not" in unknown[0].reason
    assert not [e for e in entries if e.outcome is AuditOutcome.REFUSED]
    reconciled = [e for e in entries if e.action == "write_reconciled"]
    assert len(reconciled) == 1 and reconciled[0].node == SETPOINT
    assert (reconciled[0].old_value, reconciled[0].new_value) == (41.5, 41.5) and "applied it" in reconciled[0].reason


async def test_rate_limit_bounds_the_step_of_a_write_after_a_pause():
    """Feed-tank jacket: max_rate 20 °C/s → at most 20 °C per write, however long the pause (5 → 90 °C refused)."""
    plc = ModbusTestServer()
    await plc.start()
    try:
        config = feed_tank_line(plc.port, scan_period_s=0.1)
        spec = next(t for t in config.unit("feed_tank").tags if t.name == "jacket_temperature_setpoint")
        await plc.set(RegisterTable.HOLDING, spec.address, encode(spec, 5.0))
        async with serving(config) as (twin, entries), client_as(twin.endpoint, OPERATOR) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            setpoint = node(client, idx, SETPOINT)
            await wait_until(lambda: _is_good(setpoint), what="setpoint read back")
            adapter = twin.runtime.adapters["feed_tank"]
            scans = adapter.stats.scans
            await wait_until(lambda: adapter.stats.scans >= scans + 30, timeout_s=20, what="a pause of 30 scans")
            with pytest.raises(ua.uaerrors.BadOutOfRange):
                await setpoint.write_value(double(90.0))  # full range 5 → 90 °C after a 3 s pause
            with pytest.raises(ua.uaerrors.BadOutOfRange):
                await setpoint.write_value(double(26.0))  # 21 °C: more than one second's worth at 20 °C/s
            await setpoint.write_value(double(24.0))
            assert await plc.get(RegisterTable.HOLDING, spec.address, 2) == encode(spec, 24.0)
    finally:
        await plc.stop()
    assert [e.status for e in entries] == ["BadOutOfRange", "BadOutOfRange", "Good"]
    assert "max_rate 20 °C/s" in entries[0].reason


async def test_bulk_and_huge_writes_give_a_few_short_log_lines_and_a_bounded_audit_trail(caplog):
    caplog.set_level(logging.INFO)
    plc = ModbusTestServer()
    await plc.start()
    try:
        config = feed_tank_line(plc.port)
        async with serving(config) as (twin, entries), client_as(twin.endpoint, OPERATOR) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            setpoint = node(client, idx, SETPOINT)
            await wait_until(lambda: _is_good(setpoint), what="setpoint read back")
            caplog.clear()
            huge = "x" * 1_000_000
            with pytest.raises(ua.uaerrors.BadEncodingLimitsExceeded):  # beyond [security.limits] max_value_bytes
                await setpoint.write_value(ua.DataValue(ua.Variant(huge, ua.VariantType.String)))
            params = ua.WriteParameters()
            for _ in range(1000):
                params.NodesToWrite.append(ua.WriteValue(NodeId=setpoint.nodeid, AttributeId=ua.AttributeIds.Value,
                                                         Value=double(95.0)))  # above the 90 °C write limit
            results = await client.uaclient.write(params)  # one Write request of 1000 values
            assert [r.value for r in results] == [ua.StatusCodes.BadOutOfRange] * 1000
    finally:
        await plc.stop()
    # the sinks get the huge value bounded (length and digest), the first 20 refusals singly, the rest as a summary
    assert entries[0].new_value["chars"] == 1_000_000 and len(entries[0].new_value["head"]) == 256
    singles = [e for e in entries if e.action == "write"]
    (summary,) = [e for e in entries if e.action == "refusals_aggregated"]
    assert len(singles) == 20 and summary.new_value["count"] == 981
    assert summary.new_value["statuses"] == {"BadOutOfRange": 981}
    ours = [r for r in caplog.records if r.name.startswith(("linetwin", "plc_adapters"))]
    assert len(ours) <= 40, f"{len(ours)} log lines for 1001 refused writes"
    assert max(len(r.getMessage()) for r in ours) < 1000


async def _is_good(n) -> bool:
    dv = await n.read_data_value(raise_on_bad_status=False)
    return dv.StatusCode.is_good()




@pytest.mark.parametrize("mode", ["auto", "mpc"])
async def test_operator_write_to_a_setpoint_the_loop_owns_is_refused_until_manual(mode):
    async with controlled_line() as (twin, bench, client, idx):
        entries: list[AuditEntry] = []
        twin.audit.sinks.append(collect_writes(entries))
        sp_id = "pilot_line.crystallizer.jacket_temperature_setpoint"
        setpoint = node(client, idx, sp_id)
        mode_node = control_node(client, idx, "mode")
        await mode_node.write_value(ua.DataValue(ua.Variant(mode, ua.VariantType.String)))
        await wait_for_good_measurements(twin)
        current = await setpoint.read_value()
        await start_batch(client, idx)
        with pytest.raises(ua.uaerrors.BadInvalidState):
            await setpoint.write_value(double(current - 0.1))
        refused = [e for e in entries if e.node == sp_id]
        assert [(e.status, e.outcome) for e in refused] == [("BadInvalidState", AuditOutcome.REFUSED)]
        assert f"{mode} mode" in refused[0].reason and "manual" in refused[0].reason

        await mode_node.write_value(ua.DataValue(ua.Variant("manual", ua.VariantType.String)))

        async def operator_write() -> bool:
            held = await setpoint.read_value()
            return await write_accepted(setpoint, round(held - 0.1, 3))

        await wait_until(operator_write, timeout_s=10, what="operator write accepted in manual mode")
        assert entries[-1].node == sp_id and entries[-1].outcome is AuditOutcome.ACCEPTED
