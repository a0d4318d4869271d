"""A HIL bench runs the demo line's three virtual PLCs together over loopback."""

from __future__ import annotations

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hil.bench import HilBench
from hil.plant import make_plant
from hil.virtual_plc import VirtualPlc, VirtualPlcConfigError
from plc_adapters.modbus_codec import decode, encode
from plc_adapters.tag_map import ModbusConnection
from tests.conftest import wait_until
from tests.hil.hil_helpers import loopback, pilot_line_unit

UNITS = ("feed_tank", "crystallizer", "capture_column")


def demo_plc(unit: str, speed: float = 50.0, connection: ModbusConnection | None = None) -> VirtualPlc:
    kind, model, tags = pilot_line_unit(unit)
    return VirtualPlc(unit, connection or loopback(), tags, make_plant(kind, model, seed=3), speed=speed)


async def test_bench_serves_every_unit_on_its_own_port() -> None:
    async with HilBench([demo_plc(unit) for unit in UNITS]) as bench:
        assert bench.units == UNITS
        ports = {bench.plc(unit).port for unit in UNITS}
        assert len(ports) == 3 and 0 not in ports
        column = bench.plc("capture_column")
        client = AsyncModbusTcpClient("127.0.0.1", port=column.port, timeout=2, retries=0, reconnect_delay=0)
        await client.connect()
        try:
            flow_setpoint = next(t for t in column.tags if t.name == "flow_rate_setpoint")
            await client.write_registers(flow_setpoint.address, encode(flow_setpoint, 4.0), device_id=1)
            flow = next(t for t in column.tags if t.name == "flow_rate")

            async def pump_at_setpoint() -> bool:
                response = await client.read_input_registers(flow.address, count=4, device_id=1)
                return abs(decode(flow, response.registers) - 4.0) < 0.05  # float64 tag, 4 registers

            await wait_until(pump_at_setpoint, timeout_s=10.0, what="column flow at 4 mL/min")
        finally:
            client.close()
        await wait_until(lambda: all(bench.plc(u).plant_time_s > 2.0 for u in UNITS), timeout_s=10.0,
                         what="every plant loop running")
    assert not any(bench.plc(unit).running for unit in UNITS)
    await bench.stop()  # idempotent


async def test_failed_start_stops_the_plcs_already_started() -> None:
    blocker = demo_plc("feed_tank")
    await blocker.start()
    try:
        crystallizer = demo_plc("crystallizer")
        clash = demo_plc("capture_column", connection=ModbusConnection("127.0.0.1", blocker.port, 1))
        bench = HilBench([crystallizer, clash])
        with pytest.raises(OSError, match="capture_column"):
            await bench.start()
        assert not crystallizer.running and not clash.running
    finally:
        await blocker.stop()


def test_unknown_unit_lists_the_units() -> None:
    bench = HilBench([demo_plc("feed_tank")])
    with pytest.raises(KeyError, match="'dryer'.*feed_tank"):
        bench.plc("dryer")


def test_two_plcs_for_one_unit_are_refused() -> None:
    with pytest.raises(VirtualPlcConfigError, match="feed_tank"):
        HilBench([demo_plc("feed_tank"), demo_plc("feed_tank")])
