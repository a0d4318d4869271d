"""Faults on a virtual PLC, seen by a real pymodbus client: analyser dropout (NaN / frozen) and PLC disconnect."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hil.faults import Fault, FaultInjector, FaultKind
from hil.plant import make_plant
from hil.virtual_plc import VirtualPlc
from plc_adapters.modbus_adapter import ModbusAdapter
from plc_adapters.modbus_codec import decode
from plc_adapters.quality import Quality
from plc_adapters.tag_map import ModbusConnection, TagSpec
from tests.conftest import wait_until
from tests.hil.hil_helpers import loopback, pilot_line_unit

UNIT_ID = 1


def crystallizer_plc(speed: float = 50.0, step_s: float = 1.0) -> VirtualPlc:
    kind, model, tags = pilot_line_unit("crystallizer")
    plant = make_plant(kind, model, seed=11)
    return VirtualPlc("crystallizer", loopback(UNIT_ID), tags, plant, speed=speed, step_s=step_s)


def spec(plc: VirtualPlc, name: str) -> TagSpec:
    return next(t for t in plc.tags if t.name == name)


async def read(client: AsyncModbusTcpClient, tag: TagSpec) -> float:
    response = await client.read_input_registers(tag.address, count=tag.register_count, device_id=UNIT_ID)
    assert not response.isError(), response
    return decode(tag, response.registers)


@pytest.fixture
async def running_plc() -> AsyncIterator[VirtualPlc]:
    plc = crystallizer_plc()
    await plc.start()
    try:
        yield plc
    finally:
        await plc.stop()


@pytest.fixture
async def client(running_plc: VirtualPlc) -> AsyncIterator[AsyncModbusTcpClient]:
    modbus = AsyncModbusTcpClient("127.0.0.1", port=running_plc.port, timeout=1, retries=0, reconnect_delay=0)
    await modbus.connect()
    try:
        yield modbus
    finally:
        modbus.close()


async def test_dropout_of_a_float_tag_serves_nan_until_released(running_plc, client) -> None:
    concentration = spec(running_plc, "solute_concentration")
    assert math.isfinite(await read(client, concentration))
    running_plc.hold_measurement("solute_concentration")
    assert math.isnan(await read(client, concentration))
    held_at = running_plc.plant_time_s
    await wait_until(lambda: running_plc.plant_time_s > held_at + 20, timeout_s=5, what="plant steps while held")
    assert math.isnan(await read(client, concentration))  # the plant loop does not overwrite a held tag
    assert math.isfinite(await read(client, spec(running_plc, "temperature")))  # other tags stay live
    running_plc.release_measurement("solute_concentration")
    assert 200.0 < await read(client, concentration) < 500.0


async def test_dropout_of_an_integer_tag_freezes_its_register(running_plc, client) -> None:
    counts = spec(running_plc, "chord_count_rate")  # uint32: NaN cannot be encoded

    async def changes() -> bool:
        first = await read(client, counts)
        mark = running_plc.plant_time_s
        await wait_until(lambda: running_plc.plant_time_s > mark + 5, timeout_s=5, what="plant steps")
        return await read(client, counts) != first

    assert await changes()  # noisy FBRM counts move every step
    running_plc.hold_measurement("chord_count_rate")
    assert not await changes()
    running_plc.release_measurement("chord_count_rate")
    assert await changes()


async def test_unknown_or_commanded_tag_cannot_drop_out(running_plc) -> None:
    with pytest.raises(KeyError, match="no measured tag 'jacket_temperature_setpoint'"):
        running_plc.hold_measurement("jacket_temperature_setpoint")
    with pytest.raises(ValueError, match="no measured tag 'ph'"):
        FaultInjector(running_plc, [Fault(FaultKind.MEASUREMENT_DROPOUT, 0.0, 1.0, tag="ph")])


async def test_injector_runs_a_disconnect_in_plant_time_while_the_plant_keeps_going(running_plc, client) -> None:
    temperature = spec(running_plc, "temperature")
    origin = running_plc.plant_time_s
    faults = [Fault(FaultKind.PLC_DISCONNECT, 30.0, 90.0),
              Fault(FaultKind.MEASUREMENT_DROPOUT, 10.0, 20.0, tag="solute_concentration")]
    injector = FaultInjector(running_plc, faults, origin_s=origin)

    async def poll_until(plant_s: float) -> None:
        async def reached() -> bool:
            await injector.update()
            return running_plc.plant_time_s - origin >= plant_s

        await wait_until(reached, timeout_s=10, poll_s=0.005, what=f"plant time {plant_s} s")

    await poll_until(12.0)
    assert running_plc.held_measurements == {"solute_concentration"}
    await poll_until(35.0)
    assert running_plc.held_measurements == frozenset()
    assert not running_plc.communicating and running_plc.running
    # the old connection is dropped and a fresh one is refused
    with pytest.raises(Exception):  # noqa: B017 (pymodbus raises ConnectionException or ModbusIOException)
        response = await client.read_input_registers(temperature.address, count=2, device_id=UNIT_ID)
        assert not response.isError()
    probe = AsyncModbusTcpClient("127.0.0.1", port=running_plc.port, timeout=0.5, retries=0, reconnect_delay=0)
    assert not await probe.connect()
    probe.close()
    disconnected_at = running_plc.plant_time_s
    await poll_until(95.0)
    assert running_plc.plant_time_s > disconnected_at + 50  # the plant ran on while the PLC was off the network
    assert running_plc.communicating
    fresh = AsyncModbusTcpClient("127.0.0.1", port=running_plc.port, timeout=1, retries=0, reconnect_delay=0)
    assert await fresh.connect()
    assert math.isfinite(await read(fresh, temperature))
    fresh.close()
    actions = [(e.fault.kind, e.action) for e in injector.log]
    assert actions == [(FaultKind.MEASUREMENT_DROPOUT, "start"), (FaultKind.MEASUREMENT_DROPOUT, "end"),
                       (FaultKind.PLC_DISCONNECT, "start"), (FaultKind.PLC_DISCONNECT, "end")]
    starts = [e.plant_time_s for e in injector.log if e.action == "start"]
    assert starts[0] == pytest.approx(10.0, abs=3.0) and starts[1] == pytest.approx(30.0, abs=3.0)


async def test_clear_ends_active_faults(running_plc) -> None:
    injector = FaultInjector(running_plc, [Fault(FaultKind.PLC_DISCONNECT, 0.0, 1e6),
                                           Fault(FaultKind.MEASUREMENT_DROPOUT, 0.0, 1e6, tag="temperature")],
                             origin_s=running_plc.plant_time_s)
    await injector.update()
    assert not running_plc.communicating and running_plc.held_measurements == {"temperature"}
    await injector.clear()
    assert running_plc.communicating and not running_plc.held_measurements
    assert injector.active == ()


def test_fault_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="start_s < end_s"):
        Fault(FaultKind.PLC_DISCONNECT, 10.0, 5.0)
    with pytest.raises(ValueError, match="'tag' is required"):
        Fault(FaultKind.MEASUREMENT_DROPOUT, 0.0, 5.0)


async def test_the_twins_modbus_adapter_sees_dropout_as_device_failure_and_disconnect_as_comm_error(
        running_plc) -> None:
    adapter = ModbusAdapter("crystallizer", ModbusConnection("127.0.0.1", running_plc.port, unit_id=UNIT_ID,
                                                             timeout_s=0.5),
                            running_plc.tags, scan_period_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.2)
    await adapter.start()
    try:
        def quality(tag: str) -> Quality:
            return adapter.last_samples[tag].quality

        await wait_until(lambda: quality("solute_concentration") is Quality.GOOD, timeout_s=5, what="Good")
        running_plc.hold_measurement("solute_concentration")
        await wait_until(lambda: quality("solute_concentration") is Quality.BAD_DEVICE_FAILURE, timeout_s=5,
                         what="Bad_DeviceFailure while the analyser drops out")
        assert math.isfinite(adapter.last_samples["solute_concentration"].value)  # the last usable value is kept
        assert quality("temperature") is Quality.GOOD
        running_plc.release_measurement("solute_concentration")
        await wait_until(lambda: quality("solute_concentration") is Quality.GOOD, timeout_s=5, what="Good again")
        await running_plc.suspend_communication()
        await wait_until(lambda: quality("temperature") is Quality.BAD_COMMUNICATION_ERROR, timeout_s=5,
                         what="Bad_CommunicationError while the PLC is off the network")
        await running_plc.resume_communication()
        await wait_until(lambda: quality("temperature") is Quality.GOOD, timeout_s=10, what="Good after reconnect")
    finally:
        await adapter.stop()
