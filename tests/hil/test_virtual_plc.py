"""The virtual PLC serves its plant over real Modbus TCP on loopback, in paced (accelerated) real time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from hil.plant import make_plant
from hil.plants.mixing_tank import MixingTank
from hil.virtual_plc import VirtualPlc, VirtualPlcConfigError
from plc_adapters.modbus_adapter import ModbusAdapter
from plc_adapters.modbus_codec import decode, encode, raw_to_registers
from plc_adapters.quality import Quality
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, Range, RegisterTable, TagSpec
from tests.conftest import wait_until
from tests.hil.hil_helpers import loopback, pilot_line_unit

UNIT_ID = 1


def feed_tank_plc(speed: float = 1.0, step_s: float = 0.1, **parameters: float) -> VirtualPlc:
    kind, model, tags = pilot_line_unit("feed_tank")
    plant = make_plant(kind, {**model, **parameters}, seed=7)
    return VirtualPlc("feed_tank", loopback(UNIT_ID), tags, plant, speed=speed, step_s=step_s)


def tag(plc: VirtualPlc, name: str) -> TagSpec:
    return next(t for t in plc.tags if t.name == name)


async def read_tag_over_modbus(client: AsyncModbusTcpClient, spec: TagSpec) -> float:
    if spec.table is RegisterTable.INPUT:
        response = await client.read_input_registers(spec.address, count=spec.register_count, device_id=UNIT_ID)
    else:
        response = await client.read_holding_registers(spec.address, count=spec.register_count, device_id=UNIT_ID)
    assert not response.isError(), response
    return decode(spec, response.registers)


@pytest.fixture
async def client_factory() -> AsyncIterator:
    clients: list[AsyncModbusTcpClient] = []

    async def connect(port: int) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
        clients.append(client)
        await client.connect()
        return client

    yield connect
    for client in clients:
        client.close()


async def test_measured_registers_carry_the_plant_values(client_factory) -> None:
    plc = feed_tank_plc()
    await plc.start()
    try:
        assert plc.port > 0
        client = await client_factory(plc.port)
        assert client.connected
        level = await read_tag_over_modbus(client, tag(plc, "level"))
        assert level == pytest.approx(0.5, abs=0.02)  # initial level, int16 × 0.001 m
        temperature = await read_tag_over_modbus(client, tag(plc, "temperature"))
        assert temperature == pytest.approx(20.0, abs=0.5)
        # little-endian word order on the wire decodes to the same value as read_tag
        concentration = await read_tag_over_modbus(client, tag(plc, "concentration"))
        assert concentration == pytest.approx(100.0, abs=2.0)
        inlet = await read_tag_over_modbus(client, tag(plc, "inlet_flow_setpoint"))
        assert inlet == pytest.approx(0.0008 * 0.5**0.5 * 3600.0, rel=1e-6)  # holds the initial level
        spec = tag(plc, "jacket_temperature_setpoint")
        registers = plc.holding_registers(spec.address, spec.register_count)
        assert decode(spec, registers) == plc.read_tag("jacket_temperature_setpoint") == pytest.approx(20.0)
    finally:
        await plc.stop()


async def test_written_setpoint_drives_the_plant(client_factory) -> None:
    plc = feed_tank_plc(speed=100.0, step_s=0.2)
    await plc.start()
    try:
        client = await client_factory(plc.port)
        setpoint = tag(plc, "jacket_temperature_setpoint")
        response = await client.write_registers(setpoint.address, encode(setpoint, 80.0), device_id=UNIT_ID)
        assert not response.isError(), response
        assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(80.0)
        jacket = tag(plc, "jacket_temperature")

        async def jacket_warmed() -> bool:
            return await read_tag_over_modbus(client, jacket) > 50.0

        await wait_until(jacket_warmed, timeout_s=20.0, what="jacket temperature rising toward 80 °C")
        assert plc.plant_time_s > 20.0  # a 60 s lag needs ~37 s of plant time to reach 50 °C
        speed = tag(plc, "agitator_speed_setpoint")
        await client.write_registers(speed.address, encode(speed, 400.0), device_id=UNIT_ID)
        power = tag(plc, "agitator_power")

        async def power_raised() -> bool:
            return await read_tag_over_modbus(client, power) > 5.0  # 5·1000·(400/60)³·0.35⁵ W ≈ 7.8 kW

        await wait_until(power_raised, timeout_s=10.0, what="agitator power at 400 rpm")
    finally:
        await plc.stop()


async def test_stop_drops_clients_and_restart_serves_the_same_port(client_factory) -> None:
    plc = feed_tank_plc(speed=20.0)
    await plc.start()
    port = plc.port
    client = await client_factory(port)
    await read_tag_over_modbus(client, tag(plc, "level"))

    await plc.stop()
    await wait_until(lambda: not client.connected, timeout_s=5.0, what="client sees the connection drop")
    refused = await client_factory(port)
    assert not refused.connected
    frozen = plc.plant_time_s
    await plc.stop()  # idempotent

    await plc.start()  # power-cycle on the same port
    try:
        assert plc.port == port
        again = await client_factory(port)
        assert again.connected
        assert await read_tag_over_modbus(again, tag(plc, "level")) == pytest.approx(0.5, abs=0.02)
        await wait_until(lambda: plc.plant_time_s > frozen + 1.0, timeout_s=5.0, what="plant loop resumed")
    finally:
        await plc.stop()


async def test_plant_time_advances_at_the_speed_factor() -> None:
    speed, step_s = 40.0, 0.1
    plc = feed_tank_plc(speed=speed, step_s=step_s)
    wall_start = time.monotonic()
    await plc.start()
    try:
        await wait_until(lambda: plc.plant_time_s >= 8.0, timeout_s=10.0, what="8 s of plant time")
        wall = time.monotonic() - wall_start
        ratio = plc.plant_time_s / wall
        # never ahead of the schedule; loosely on it (a 1× loop would take 8 s and time out above)
        assert plc.plant_time_s <= speed * wall + step_s
        assert ratio > speed / 4.0
    finally:
        await plc.stop()
    assert not plc.running


async def test_real_time_loop_does_not_run_ahead_of_the_wall_clock() -> None:
    plc = feed_tank_plc(speed=1.0, step_s=0.05)
    wall_start = time.monotonic()
    await plc.start()
    try:
        await wait_until(lambda: plc.plant_time_s >= 0.5, timeout_s=5.0, what="0.5 s of plant time")
        assert time.monotonic() - wall_start >= 0.5 - 0.05
    finally:
        await plc.stop()


async def test_reads_outside_the_map_and_for_another_unit_id_get_modbus_exceptions(client_factory) -> None:
    plc = feed_tank_plc()
    await plc.start()
    try:
        client = await client_factory(plc.port)
        beyond = await client.read_input_registers(0, count=10, device_id=UNIT_ID)  # map ends at register 8
        assert isinstance(beyond, ExceptionResponse) and beyond.exception_code == 2
        other = await client.read_input_registers(0, count=1, device_id=UNIT_ID + 1)
        assert isinstance(other, ExceptionResponse) and other.exception_code == 0x0B
    finally:
        await plc.stop()


async def test_second_plc_on_a_taken_port_fails_with_the_unit_named() -> None:
    first = feed_tank_plc()
    await first.start()
    try:
        kind, model, tags = pilot_line_unit("feed_tank")
        connection = ModbusConnection("127.0.0.1", first.port, UNIT_ID)
        second = VirtualPlc("second_tank", connection, tags, make_plant(kind, model))
        with pytest.raises(OSError, match="second_tank"):
            await second.start()
        assert not second.running
    finally:
        await first.stop()


# ----------------------------------------------------------------------------- construction errors
def measured(name: str, address: int, table: RegisterTable = RegisterTable.INPUT,
             direction: Direction = Direction.MEASURED) -> TagSpec:
    return TagSpec(name, direction, "MTR", Range(0.0, 2.0), table, address, DataType.FLOAT32)


def build(tags: list[TagSpec]) -> VirtualPlc:
    return VirtualPlc("feed_tank", loopback(), tags, make_plant("mixing_tank", {}))


def test_tag_the_plant_does_not_have_is_refused_with_unit_tag_and_plant_names() -> None:
    with pytest.raises(VirtualPlcConfigError) as info:
        build([measured("level", 0), measured("viscosity", 2)])
    message = str(info.value)
    assert "feed_tank" in message and "viscosity" in message
    assert "level" in message and "agitator_speed_setpoint" in message


def test_overlapping_registers_are_refused_naming_both_tags() -> None:
    with pytest.raises(VirtualPlcConfigError, match="'level'.*'temperature'.*overlap"):
        build([measured("level", 0), measured("temperature", 1)])


def test_same_address_in_different_tables_is_fine() -> None:
    plc = build([
        measured("level", 0),
        TagSpec("inlet_flow_setpoint", Direction.COMMANDED, "MQH", Range(0.0, 10.0), RegisterTable.HOLDING, 0,
                DataType.FLOAT32),
    ])
    assert plc.holding_registers(0, 2) == encode(plc.tags[1], plc.read_tag("inlet_flow_setpoint"))


def test_direction_contradicting_the_plant_is_refused() -> None:
    with pytest.raises(VirtualPlcConfigError, match="'level': declared commanded"):
        build([measured("level", 0, RegisterTable.HOLDING, Direction.COMMANDED)])


def test_commanded_tag_in_input_registers_is_refused() -> None:
    with pytest.raises(VirtualPlcConfigError, match="'inlet_flow_setpoint': commanded tag must be in a writable"):
        build([measured("inlet_flow_setpoint", 0, RegisterTable.INPUT, Direction.COMMANDED)])


def test_bad_speed_and_step_are_refused() -> None:
    _, _, tags = pilot_line_unit("feed_tank")
    with pytest.raises(VirtualPlcConfigError, match="speed"):
        VirtualPlc("feed_tank", loopback(), tags, make_plant("mixing_tank", {}), speed=0.0)
    with pytest.raises(VirtualPlcConfigError, match="step_s"):
        VirtualPlc("feed_tank", loopback(), tags, make_plant("mixing_tank", {}), step_s=-1.0)


def test_unknown_tag_read_names_the_tags() -> None:
    plc = feed_tank_plc()
    with pytest.raises(KeyError, match="unknown tag 'pressure'.*level"):
        plc.read_tag("pressure")


async def test_nan_written_to_a_setpoint_is_ignored_by_the_plant(client_factory) -> None:
    plc = feed_tank_plc(speed=50.0)
    await plc.start()
    try:
        client = await client_factory(plc.port)
        setpoint = tag(plc, "jacket_temperature_setpoint")
        nan_registers = raw_to_registers(float("nan"), setpoint.data_type, setpoint.byte_order, setpoint.word_order)
        response = await client.write_registers(setpoint.address, nan_registers, device_id=UNIT_ID)
        assert not response.isError()
        start = plc.plant_time_s
        await wait_until(lambda: plc.plant_time_s > start + 5.0, timeout_s=5.0, what="plant stepping past the NaN")
        assert plc.read_tag("jacket_temperature") == pytest.approx(20.0, abs=0.5)  # last good setpoint kept
    finally:
        await plc.stop()


class TankThatFails(MixingTank):
    """A real tank whose model breaks at a given plant time (to check the loop's failure handling)."""

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        if self.time_s > 0.95:
            raise FloatingPointError("model diverged")
        super().step(dt_s, commands)


async def test_a_failing_plant_freezes_its_registers_but_stop_still_closes_the_server(
    client_factory, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, tags = pilot_line_unit("feed_tank")
    plc = VirtualPlc("feed_tank", loopback(UNIT_ID), tags, TankThatFails(seed=1), speed=50.0)
    await plc.start()
    client = await client_factory(plc.port)
    await wait_until(lambda: "model diverged" in caplog.text, timeout_s=5.0, what="plant failure logged")
    assert plc.plant_time_s == pytest.approx(1.0)
    assert await read_tag_over_modbus(client, tag(plc, "level")) == pytest.approx(0.5, abs=0.02)  # still served
    await plc.stop()
    await wait_until(lambda: not client.connected, timeout_s=5.0, what="client dropped after stop")



async def test_a_hung_modbus_plc_answers_nothing_until_it_resumes() -> None:
    """The hang fault of the shared virtual-PLC base (a loopback proxy that stalls every connection) works for
    Modbus as for OPC UA: the adapter's reads time out (Bad_CommunicationError), and it recovers after resume."""
    plc = feed_tank_plc(speed=20.0)
    await plc.start()
    connection = ModbusConnection("127.0.0.1", plc.port, unit_id=UNIT_ID, timeout_s=0.3)
    adapter = ModbusAdapter("feed_tank", connection, plc.tags, 0.05, backoff_initial_s=0.05, backoff_max_s=0.2)
    await adapter.start()

    def level_quality() -> Quality:
        return adapter.last_samples["level"].quality

    try:
        await wait_until(lambda: level_quality() is Quality.GOOD, timeout_s=10.0, what="first good scan")
        await plc.hang()
        assert plc.running and not plc.communicating
        await wait_until(lambda: level_quality() is Quality.BAD_COMMUNICATION_ERROR, timeout_s=10.0,
                         what="Bad_CommunicationError while the PLC hangs")
        assert adapter.last_samples["level"].value is not None  # the last usable value is kept
        await plc.resume_communication()
        assert plc.communicating
        await wait_until(lambda: level_quality() is Quality.GOOD, timeout_s=10.0, what="recovery after the hang")
    finally:
        await adapter.stop()
        await plc.stop()


def test_the_virtual_plc_of_a_unit_is_picked_by_connection_kind() -> None:
    from hil.virtual_opcua_plc import VirtualOpcUaPlc
    from hil.virtual_plc_base import virtual_plc_class

    assert virtual_plc_class("modbus") is VirtualPlc
    assert virtual_plc_class("opcua") is VirtualOpcUaPlc
    with pytest.raises(ValueError, match="no virtual PLC for protocol 's7'; known: modbus, opcua"):
        virtual_plc_class("s7")
