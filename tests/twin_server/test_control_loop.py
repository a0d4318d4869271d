"""The twin's control loop on the crystallizer, live over real sockets: OPC UA control nodes, guarded mode and
target writes, StartBatch/StopBatch, fallback on solver failure, hold and resume across a PLC disconnect.

The virtual PLC runs the physics crystallizer (population balance) 400x faster than real time; the twin's
clock is scaled to match (``time_scale``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asyncua import Client, ua

from tests.conftest import wait_until
from tests.security_helpers import add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.config import load_line_config
from twin_server.server import TwinServer

SPEED = 400.0
JACKET_LIMITS_C = (15.0, 40.0)


@asynccontextmanager
async def controlled_line(**control: object) -> AsyncIterator[tuple[TwinServer, object, Client, int]]:
    base = load_line_config(PILOT)
    options = {"time_scale": SPEED, "batch_duration_s": 1800.0, "jacket_limits_c": list(JACKET_LIMITS_C),
               "target_d43_um": 300.0, **control}
    units = tuple(
        dataclasses.replace(u, plant={"plant_model": "physics", "initial_temperature_c": 40.0}, control=options)
        if u.name == "crystallizer" else u
        for u in base.units if u.name == "crystallizer"
    )
    config = dataclasses.replace(base, units=units, scan_period_s=0.05)
    async with live_line(config, SPEED) as line, client_as(line.url, add_operator()) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        yield line.twin, line.bench, client, idx


def control_node(client: Client, idx: int, name: str):
    return client.get_node(ua.NodeId(f"pilot_line.crystallizer.control.{name}", idx))


async def start_batch(client: Client, idx: int) -> None:
    control = client.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
    await control.call_method(ua.NodeId("pilot_line.crystallizer.control.StartBatch", idx))


async def wait_for_good_measurements(twin: TwinServer) -> None:
    adapter = twin.runtime.adapters["crystallizer"]
    await wait_until(lambda: len(adapter.last_samples) > 0
                     and all(s.quality.is_good for s in adapter.last_samples.values()), what="Good crystallizer tags")


async def test_control_nodes_guard_mode_and_target_writes():
    async with controlled_line() as (twin, _bench, client, idx):
        mode = control_node(client, idx, "mode")
        target = control_node(client, idx, "target_d43")
        assert await mode.read_value() == "manual"
        assert await target.read_value() == pytest.approx(300.0)
        eu = await (await target.get_child(["0:EngineeringUnits"])).read_value()
        assert eu.DisplayName.Text == "µm"
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await mode.write_value(ua.DataValue(ua.Variant("turbo", ua.VariantType.String)))
        with pytest.raises(ua.uaerrors.BadTypeMismatch):
            await mode.write_value(ua.DataValue(ua.Variant(2.0, ua.VariantType.Double)))
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await target.write_value(ua.DataValue(ua.Variant(5000.0, ua.VariantType.Double)))
        assert await mode.read_value() == "manual" and await target.read_value() == pytest.approx(300.0)
        await target.write_value(ua.DataValue(ua.Variant(350.0, ua.VariantType.Double)))
        await mode.write_value(ua.DataValue(ua.Variant("mpc", ua.VariantType.String)))
        assert await mode.read_value() == "mpc" and await target.read_value() == pytest.approx(350.0)

        await wait_for_good_measurements(twin)
        await start_batch(client, idx)
        with pytest.raises(ua.uaerrors.BadInvalidState):
            await start_batch(client, idx)
        assert await control_node(client, idx, "batch_active").read_value() is True

        async def solved() -> bool:
            return await control_node(client, idx, "solve_status").read_value() == "Solve_Succeeded"

        await wait_until(solved, timeout_s=20, what="a successful NMPC solve")
        predicted = await control_node(client, idx, "predicted_d43").read_value()
        assert len(predicted) == 21 and predicted[-1] == pytest.approx(350.0, rel=0.05)
        d43 = await control_node(client, idx, "estimated_d43").read_value()
        d43_std = await control_node(client, idx, "estimated_d43_std").read_value()
        assert 100.0 < d43 < 400.0 and 0.0 < d43_std < 100.0
        control = client.get_node(ua.NodeId("pilot_line.crystallizer.control", idx))
        await control.call_method(ua.NodeId("pilot_line.crystallizer.control.StopBatch", idx))
        assert await control_node(client, idx, "batch_active").read_value() is False
        assert await mode.read_value() == "manual"


async def test_failed_solves_fall_back_to_recipe_and_never_write_outside_limits():
    async with controlled_line(solve_deadline_s=1e-6, initial_mode="mpc") as (twin, bench, client, idx):
        await wait_for_good_measurements(twin)
        await start_batch(client, idx)
        loop = twin.control_loops["crystallizer"]

        async def several_fallbacks_written() -> bool:  # a fallback is counted when decided, written a scan later
            return await control_node(client, idx, "fallbacks_used").read_value() >= 3 \
                and await control_node(client, idx, "setpoints_written").read_value() >= 3

        await wait_until(several_fallbacks_written, timeout_s=20, what="fallbacks after failed solves, written")
        last_event = await control_node(client, idx, "last_event").read_value()
        assert "recipe" in last_event and "°C" in last_event and " K" not in last_event  # like the tags
        written = loop._supervisor.history("jacket_temperature")
        low, high = (v + 273.15 for v in JACKET_LIMITS_C)
        assert all(low <= v <= high for v in written)
        plc_value = bench.plc("crystallizer").read_tag("jacket_temperature_setpoint")
        assert JACKET_LIMITS_C[0] <= plc_value <= JACKET_LIMITS_C[1]


@pytest.mark.slow
async def test_plc_disconnect_mid_batch_holds_and_resumes():
    async with controlled_line() as (twin, bench, client, idx):  # the plan of the first test: no NMPC built again
        await control_node(client, idx, "mode").write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
        await wait_for_good_measurements(twin)
        await start_batch(client, idx)
        written = control_node(client, idx, "setpoints_written")
        await wait_until(lambda: _at_least(written, 2), timeout_s=20, what="recipe setpoints written")
        plc = bench.plc("crystallizer")
        await plc.stop()
        loop = twin.control_loops["crystallizer"]
        await wait_until(lambda: any("not written" in e for e in loop.events), timeout_s=20,
                         what="a refused setpoint write while the PLC is down")
        held = await written.read_value()
        assert await control_node(client, idx, "batch_active").read_value() is True
        await plc.start()
        await wait_until(lambda: _at_least(written, held + 2), timeout_s=30, what="writes resumed after reconnect")


async def _at_least(node, n: int) -> bool:
    return await node.read_value() >= n
