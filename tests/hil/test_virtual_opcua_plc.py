"""The virtual OPC UA PLC: a PLC-shaped asyncua server driven by a plant, its fault primitives, and the mixed line
(crystallizer over OPC UA, the other units over Modbus) mirrored by the twin with the PLC's status codes."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from asyncua import Client, ua

from hil.bench import HilBench
from hil.plant import make_plant
from hil.virtual_opcua_plc import VirtualOpcUaPlc
from plc_adapters.opcua_spec import OpcUaConnection
from tests.conftest import REPO_ROOT, free_tcp_port, wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import live_line
from twin_server.config import LineConfig, load_line_config
from twin_server.server import TwinServer

MIXED = REPO_ROOT / "examples" / "mixed_line.toml"
VENDOR_URI = "http://linetwin.example/virtual-plc/s7"
TWIN_NAMESPACE = "urn:linetwin:mixed_line"


def _crystallizer_plc(speed: float = 20.0) -> VirtualOpcUaPlc:
    unit = load_line_config(MIXED).unit("crystallizer")
    assert isinstance(unit.connection, OpcUaConnection)
    plant = make_plant(unit.kind, {**unit.model, "plant_model": "standin"}, seed=3)
    return VirtualOpcUaPlc("crystallizer", dataclasses.replace(unit.connection, port=0), unit.tags, plant,
                           speed=speed, step_s=1.0)


async def _node(client: Client, member: str) -> object:
    idx = await client.get_namespace_index(VENDOR_URI)
    path = [f"{idx}:DataBlocksGlobal", f"{idx}:DB_Crystallizer", f"{idx}:{member}"]
    return await client.nodes.objects.get_child(path)


async def test_plc_shaped_server_with_its_own_status_codes() -> None:
    plc = _crystallizer_plc()
    await plc.start()
    try:
        async with Client(plc.endpoint) as client:
            temperature = await _node(client, "Temperature")
            assert temperature.nodeid.Identifier == '"DB_Crystallizer"."Temperature"'  # type: ignore[attr-defined]
            dv = await temperature.read_data_value(raise_on_bad_status=False)  # type: ignore[attr-defined]
            assert dv.StatusCode.is_good() and 0 < dv.Value.Value < 100
            eu_range = await (await temperature.get_child("0:EURange")).read_value()  # type: ignore[attr-defined]
            assert (eu_range.Low, eu_range.High) == (-10.0, 100.0)
            plc.hold_measurement("temperature")
            dv = await temperature.read_data_value(raise_on_bad_status=False)  # type: ignore[attr-defined]
            assert dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
            plc.release_measurement("temperature")
            assert (await temperature.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()  # type: ignore[attr-defined]

            setpoint = await _node(client, "JacketTemperatureSetpoint")
            await setpoint.write_value(ua.DataValue(ua.Variant(30.0, ua.VariantType.Float)))  # type: ignore[attr-defined]
            assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(30.0)
            with pytest.raises(ua.uaerrors.BadOutOfRange):  # outside the node's EURange [-20, 120]
                await setpoint.write_value(ua.DataValue(ua.Variant(150.0, ua.VariantType.Float)))  # type: ignore[attr-defined]
            plc.refuse_writes("jacket_temperature_setpoint")
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await setpoint.write_value(ua.DataValue(ua.Variant(31.0, ua.VariantType.Float)))  # type: ignore[attr-defined]
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):  # measured nodes are read-only
                await temperature.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Float)))  # type: ignore[attr-defined]
            assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(30.0)
        await plc.suspend_communication()
        with pytest.raises((OSError, asyncio.TimeoutError)):
            async with Client(plc.endpoint, timeout=1):
                pass
        before = plc.plant_time_s
        await wait_until(lambda: plc.plant_time_s > before, what="plant runs while off the network")
        plc.extra_namespaces.append("urn:firmware:update")  # the restart renumbers the vendor namespace
        await plc.resume_communication()
        async with Client(plc.endpoint) as client:
            assert await client.get_namespace_index(VENDOR_URI) == plc.namespace_indices[VENDOR_URI]
            assert (await (await _node(client, "JacketTemperatureSetpoint")).read_value()) == pytest.approx(30.0)  # type: ignore[attr-defined]
    finally:
        await plc.stop()


@asynccontextmanager
async def _live_mixed_line(speed: float = 20.0) -> AsyncIterator[tuple[LineConfig, HilBench, TwinServer]]:
    add_operator()
    config = dataclasses.replace(load_line_config(MIXED), scan_period_s=0.2)
    async with live_line(config, speed) as line:
        yield line.config, line.bench, line.twin


@pytest.mark.slow
async def test_mixed_line_mirrors_every_unit_and_passes_the_plcs_status_through() -> None:
    async with _live_mixed_line() as (config, bench, twin), client_as(twin.endpoint, OPERATOR) as client:
        idx = await client.get_namespace_index(TWIN_NAMESPACE)

        async def status(unit: str, tag: str) -> ua.DataValue:
            node = client.get_node(ua.NodeId(f"mixed_line.{unit}.{tag}", idx))
            return await node.read_data_value(raise_on_bad_status=False)

        async def good(unit: str, tag: str) -> bool:
            return (await status(unit, tag)).StatusCode.is_good()

        for unit, tag in (("feed_tank", "level"), ("crystallizer", "temperature"), ("capture_column", "flow_rate")):
            await wait_until(lambda u=unit, t=tag: good(u, t), timeout_s=20, what=f"{unit}.{tag} Good")
        plc = bench.plc("crystallizer")
        assert isinstance(plc, VirtualOpcUaPlc)
        plc.hold_measurement("solute_concentration")

        async def sensor_failure() -> bool:
            return (await status("crystallizer", "solute_concentration")).StatusCode.value == \
                ua.StatusCodes.BadSensorFailure

        await wait_until(sensor_failure, timeout_s=10, what="the PLC's BadSensorFailure at the twin")
        assert twin.runtime is not None and twin.runtime.health["crystallizer"].connected  # a sensor, not the link
        plc.release_measurement("solute_concentration")

        setpoint = client.get_node(ua.NodeId("mixed_line.crystallizer.jacket_temperature_setpoint", idx))
        await wait_until(lambda: good("crystallizer", "jacket_temperature_setpoint"), what="setpoint read back")
        target = plc.read_tag("jacket_temperature_setpoint") + 0.5

        async def write_ok() -> bool:
            try:
                await setpoint.write_value(ua.DataValue(ua.Variant(target, ua.VariantType.Double)))
            except ua.UaStatusCodeError:
                return False
            return True

        await wait_until(write_ok, timeout_s=10, what="setpoint written through the twin over OPC UA")
        assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(target, abs=1e-4)
        plc.refuse_writes("jacket_temperature_setpoint")
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):  # the PLC's own refusal reaches the twin's client
            await setpoint.write_value(ua.DataValue(ua.Variant(target, ua.VariantType.Double)))
        plc.accept_writes("jacket_temperature_setpoint")

        await plc.hang()

        async def comm_error() -> bool:  # the last usable value, flagged: no communication (docs/quality-and-writes.md)
            return (await status("crystallizer", "temperature")).StatusCode.value == \
                ua.StatusCodes.UncertainNoCommunicationLastUsableValue

        await wait_until(comm_error, timeout_s=10, what="Uncertain_NoCommunicationLastUsableValue while the PLC hangs")
        assert await good("feed_tank", "level")  # the Modbus units are unaffected
        await plc.resume_communication()
        await wait_until(lambda: good("crystallizer", "temperature"), timeout_s=20, what="recovery after the hang")


def _config_with_free_ports(tmp_path: Path) -> Path:
    text = MIXED.read_text(encoding="utf-8")
    for port in ("15020", "4841", "15022"):
        text = text.replace(f":{port}/" if port == "4841" else f"port = {port}",
                            f":{free_tcp_port()}/" if port == "4841" else f"port = {free_tcp_port()}")
    path = tmp_path / "mixed_line.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hil_serve_serves_the_virtual_opcua_plc(tmp_path: Path) -> None:
    config = _config_with_free_ports(tmp_path)
    out = subprocess.run([sys.executable, "-m", "linetwin_cli", "hil", "serve", str(config), "--duration", "3"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "virtual PLC crystallizer (crystallizer) on opc.tcp://127.0.0.1:" in out.stdout
    assert "virtual PLC feed_tank (mixing_tank) on modbus://127.0.0.1:" in out.stdout


@pytest.mark.slow
def test_demo_runs_the_mixed_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "linetwin_cli", "demo", "--config", str(MIXED), "--duration", "8",
                          "--port", str(free_tcp_port())], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "crystallizer     (crystallizer) opc.tcp://127.0.0.1:" in out.stdout
    status_lines = [line for line in out.stdout.splitlines() if line.startswith("feed_tank:")]
    assert status_lines, out.stdout
    assert "crystallizer: OK  7/7 good" in status_lines[-1]
    assert "feed_tank: OK " in status_lines[-1] and "capture_column: OK " in status_lines[-1]
