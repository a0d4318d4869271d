"""The Modbus TCP adapter against a real pymodbus server on loopback: reads, guarded writes, outages."""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymodbus.constants import ExcCodes

from plc_adapters import (
    ByteOrder,
    DataType,
    Direction,
    ModbusAdapter,
    ModbusConnection,
    Quality,
    Range,
    RegisterTable,
    TagSpec,
    WordOrder,
    WriteOutcomeUnknown,
    WriteRefusal,
    WriteRefused,
    encode,
)

PERIOD_S = 0.05
ADAPTER_LOGGER = "plc_adapters.modbus_adapter"

JACKET_SETPOINT = TagSpec(
    name="jacket_temperature_setpoint", direction=Direction.COMMANDED, unit_code="CEL", eu_range=Range(0.0, 100.0),
    table=RegisterTable.HOLDING, address=0, data_type=DataType.FLOAT32, word_order=WordOrder.LITTLE,
    write_limits=Range(5.0, 90.0), max_rate=2.0,
)
AGITATOR_SETPOINT = TagSpec(
    name="agitator_speed_setpoint", direction=Direction.COMMANDED, unit_code="RPM", eu_range=Range(0.0, 500.0),
    table=RegisterTable.HOLDING, address=2, data_type=DataType.UINT16, scale=0.1,
)
FEED_VALVE = TagSpec(
    name="feed_valve_open", direction=Direction.COMMANDED, unit_code="C62", eu_range=Range(0.0, 1.0),
    table=RegisterTable.COIL, address=3, data_type=DataType.BOOL,
)
VESSEL_LEVEL = TagSpec(  # measured, but mapped into the (writable) holding table by the PLC programmer
    name="vessel_level", direction=Direction.MEASURED, unit_code="MTR", eu_range=Range(0.0, 3.0),
    table=RegisterTable.HOLDING, address=10, data_type=DataType.FLOAT32,
)
REACTOR_TEMPERATURE = TagSpec(
    name="reactor_temperature", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-10.0, 150.0),
    table=RegisterTable.INPUT, address=0, data_type=DataType.FLOAT32,
)
REACTOR_PRESSURE = TagSpec(
    name="reactor_pressure", direction=Direction.MEASURED, unit_code="BAR", eu_range=Range(0.0, 10.0),
    table=RegisterTable.INPUT, address=2, data_type=DataType.INT16, scale=0.01,
)
TOTALISED_FEED = TagSpec(
    name="totalised_feed", direction=Direction.MEASURED, unit_code="KGM", eu_range=Range(0.0, 1e9),
    table=RegisterTable.INPUT, address=4, data_type=DataType.FLOAT64, byte_order=ByteOrder.LITTLE,
    word_order=WordOrder.LITTLE,
)
HIGH_LEVEL = TagSpec(
    name="high_level_switch", direction=Direction.MEASURED, unit_code="C62", eu_range=Range(0.0, 1.0),
    table=RegisterTable.DISCRETE, address=5, data_type=DataType.BOOL,
)
TAGS = [JACKET_SETPOINT, AGITATOR_SETPOINT, FEED_VALVE, VESSEL_LEVEL, REACTOR_TEMPERATURE, REACTOR_PRESSURE,
        TOTALISED_FEED, HIGH_LEVEL]
PLANT_VALUES = {
    JACKET_SETPOINT: 40.0, AGITATOR_SETPOINT: 120.5, FEED_VALVE: 1.0, VESSEL_LEVEL: 1.25,
    REACTOR_TEMPERATURE: 37.5, REACTOR_PRESSURE: 1.23, TOTALISED_FEED: 12345.678, HIGH_LEVEL: 1.0,
}


async def _load_plant_values(server) -> None:
    for tag, value in PLANT_VALUES.items():
        await server.set(tag.table, tag.address, encode(tag, value))


async def _registers(server) -> dict[str, list[int]]:
    return {tag.name: await server.get(tag.table, tag.address, tag.register_count) for tag in TAGS}


def _all(quality: Quality):
    return lambda samples: len(samples) == len(TAGS) and all(s.quality is quality for s in samples.values())


def _adapter(port: int, recorder, period_s: float = PERIOD_S,
             timeout_s: float = 0.5) -> ModbusAdapter:
    return ModbusAdapter(
        "crystallizer_1", ModbusConnection("127.0.0.1", port, unit_id=1, timeout_s=timeout_s), TAGS, period_s,
        on_samples=recorder, backoff_initial_s=0.05, backoff_max_s=0.2,
    )


@pytest.fixture
async def running(modbus_server, recorder) -> AsyncIterator[ModbusAdapter]:
    await _load_plant_values(modbus_server)
    adapter = _adapter(modbus_server.port, recorder)
    await adapter.start()
    await recorder.wait_for(_all(Quality.GOOD), what="first good scan")
    try:
        yield adapter
    finally:
        await adapter.stop()


# ---------------------------------------------------------------------------------------------- reads


async def test_every_tag_is_decoded_good_in_one_list_per_scan_stamped_with_receive_time(modbus_server, recorder):
    await _load_plant_values(modbus_server)
    adapter = _adapter(modbus_server.port, recorder)
    before = datetime.now(UTC)
    await adapter.start()
    try:
        _, _, samples = await recorder.wait_for(_all(Quality.GOOD), what="good scan")
        after = datetime.now(UTC)
        for tag, value in PLANT_VALUES.items():
            assert samples[tag.name].value == pytest.approx(value, rel=1e-6), tag.name
            assert before <= samples[tag.name].source_timestamp <= after
        assert all(len(batch) == len(TAGS) for _, batch in recorder.batches)
        # holding 0..2 and 10..11, input 0..2 and 4..7 (unmapped 3 not read), coil 3, discrete 5
        assert adapter.stats.read_requests_per_scan == 6
        assert adapter.connected
        assert dict(adapter.last_samples) == samples
    finally:
        await adapter.stop()


async def test_large_tag_map_is_read_in_protocol_sized_requests(modbus_server, recorder):
    temperatures = [
        TagSpec(name=f"zone_{i}_temperature", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(0, 1000),
                table=RegisterTable.INPUT, address=2 * i, data_type=DataType.FLOAT32)
        for i in range(300)
    ]
    switches = [
        TagSpec(name=f"valve_{i}_closed", direction=Direction.MEASURED, unit_code="C62", eu_range=Range(0, 1),
                table=RegisterTable.DISCRETE, address=i, data_type=DataType.BOOL)
        for i in range(2048)
    ]
    registers = [r for i in range(300) for r in encode(temperatures[i], 1.5 * i)]
    await modbus_server.set(RegisterTable.INPUT, 0, registers)
    await modbus_server.set(RegisterTable.DISCRETE, 0, [i % 3 == 0 for i in range(2048)])
    adapter = ModbusAdapter("tank_farm", ModbusConnection("127.0.0.1", modbus_server.port), temperatures + switches,
                            PERIOD_S, on_samples=recorder)
    requests_before = len(modbus_server.requests)
    await adapter.start()
    try:
        _, _, samples = await recorder.wait_for(lambda s: len(s) == 2348, what="one scan of 2348 tags")
    finally:
        await adapter.stop()
    assert adapter.stats.read_requests_per_scan == 7  # 5 × ≤125 registers + 2 × ≤2000 bits
    counts = [pdu.count for pdu in modbus_server.requests[requests_before:requests_before + 7]]
    assert counts == [124, 124, 124, 124, 104, 2000, 48]
    assert all(s.quality is Quality.GOOD for s in samples.values())
    assert [samples[f"zone_{i}_temperature"].value for i in range(300)] == [1.5 * i for i in range(300)]
    assert [samples[f"valve_{i}_closed"].value for i in range(2048)] == [float(i % 3 == 0) for i in range(2048)]


async def test_values_changed_in_the_plc_show_up_in_the_next_scans(running, modbus_server, recorder):
    await modbus_server.set(RegisterTable.INPUT, 0, encode(REACTOR_TEMPERATURE, 61.25))
    await modbus_server.set(RegisterTable.DISCRETE, 5, [0])
    _, _, samples = await recorder.wait_for(
        lambda s: s["reactor_temperature"].value == 61.25 and s["high_level_switch"].value == 0.0,
        after=len(recorder.batches), what="changed values",
    )
    assert samples["reactor_temperature"].quality is Quality.GOOD


async def test_value_outside_eu_range_is_kept_and_marked_uncertain(running, modbus_server, recorder):
    await modbus_server.set(RegisterTable.INPUT, 0, encode(REACTOR_TEMPERATURE, 180.0))  # eu_range -10..150
    _, _, samples = await recorder.wait_for(lambda s: s["reactor_temperature"].value == 180.0,
                                            after=len(recorder.batches), what="over-range value")
    assert samples["reactor_temperature"].quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
    assert samples["reactor_pressure"].quality is Quality.GOOD


async def test_nan_from_the_plc_is_bad_device_failure_keeping_the_last_usable_value(running, modbus_server, recorder):
    await modbus_server.set(RegisterTable.INPUT, 0, [0x7FC0, 0x0000])  # float32 quiet NaN
    _, _, samples = await recorder.wait_for(
        lambda s: s["reactor_temperature"].quality is Quality.BAD_DEVICE_FAILURE, after=len(recorder.batches),
        what="NaN marked bad",
    )
    assert samples["reactor_temperature"].value == 37.5
    assert samples["vessel_level"].quality is Quality.GOOD


# ---------------------------------------------------------------------------------------------- writes


async def test_writes_land_in_the_plc_registers_and_are_read_back(running, modbus_server, recorder, caplog):
    caplog.set_level(logging.INFO, logger=ADAPTER_LOGGER)
    await running.write("agitator_speed_setpoint", 250.0)
    await running.write("feed_valve_open", 0.0)
    assert await modbus_server.get(RegisterTable.HOLDING, 2, 1) == [2500]  # 0.1 RPM per count
    assert await modbus_server.get(RegisterTable.COIL, 3, 1) == [0]
    assert [pdu.function_code for pdu in modbus_server.write_requests()] == [6, 5]
    _, _, samples = await recorder.wait_for(
        lambda s: s["agitator_speed_setpoint"].value == 250.0 and s["feed_valve_open"].value == 0.0,
        after=len(recorder.batches), what="read-back of the writes",
    )
    assert samples["agitator_speed_setpoint"].quality is Quality.GOOD
    assert running.stats.writes == 2
    assert any("agitator_speed_setpoint" in r.message and r.levelno == logging.INFO for r in caplog.records)


async def test_rate_limit_bounds_the_step_of_one_write_even_after_a_pause(running, modbus_server, wait_until):
    """max_rate 2 °C/s: one write moves the setpoint by at most 2 °C/s × min(elapsed, 1 s), however long the
    pause since the PLC took its value (a pause must not allow a jump)."""
    loop = asyncio.get_running_loop()
    seen_at = loop.time()  # the read-back of 40.0 °C is at least this old from here on
    with pytest.raises(WriteRefused) as refused:
        await running.write("jacket_temperature_setpoint", 60.0)
    assert refused.value.reason is WriteRefusal.RATE_LIMIT
    assert "max_rate 2 CEL/s" in refused.value.message
    await wait_until(lambda: loop.time() >= seen_at + 2.0, timeout_s=5, what="a 2 s pause")
    with pytest.raises(WriteRefused) as jump:  # 3 °C in 2 s is only 1.5 °C/s, but a 3 °C step
        await running.write("jacket_temperature_setpoint", 43.0)
    assert jump.value.reason is WriteRefusal.RATE_LIMIT
    await running.write("jacket_temperature_setpoint", 41.9)
    assert await modbus_server.get(RegisterTable.HOLDING, 0, 2) == encode(JACKET_SETPOINT, 41.9)
    with pytest.raises(WriteRefused) as again:  # 0.5 °C more right after the last write
        await running.write("jacket_temperature_setpoint", 42.4)
    assert again.value.reason is WriteRefusal.RATE_LIMIT
    assert len(modbus_server.write_requests()) == 1


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        ("agitator_torque", 1.0, WriteRefusal.UNKNOWN_TAG),
        ("reactor_temperature", 20.0, WriteRefusal.NOT_WRITABLE),
        ("vessel_level", 1.0, WriteRefusal.NOT_WRITABLE),
        ("agitator_speed_setpoint", math.nan, WriteRefusal.TYPE_MISMATCH),
        ("agitator_speed_setpoint", math.inf, WriteRefusal.TYPE_MISMATCH),
        ("agitator_speed_setpoint", "fast", WriteRefusal.TYPE_MISMATCH),
        ("agitator_speed_setpoint", None, WriteRefusal.TYPE_MISMATCH),
        ("agitator_speed_setpoint", 10**400, WriteRefusal.TYPE_MISMATCH),
        ("jacket_temperature_setpoint", 95.0, WriteRefusal.OUT_OF_RANGE),  # write limits 5..90 inside eu 0..100
        ("jacket_temperature_setpoint", 2.0, WriteRefusal.OUT_OF_RANGE),
        ("agitator_speed_setpoint", 500.1, WriteRefusal.OUT_OF_RANGE),
        ("jacket_temperature_setpoint", 80.0, WriteRefusal.RATE_LIMIT),
    ],
)
async def test_refused_writes_put_nothing_on_the_wire(running, modbus_server, caplog, tag, value, reason):
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)
    registers_before = await _registers(modbus_server)
    with pytest.raises(WriteRefused) as refused:
        await running.write(tag, value)
    assert refused.value.reason is reason
    assert refused.value.tag == tag
    assert modbus_server.write_requests() == []
    assert await _registers(modbus_server) == registers_before
    assert running.stats.refused_writes == 1
    warning = [r.getMessage() for r in caplog.records if r.name == ADAPTER_LOGGER and r.levelno == logging.WARNING]
    assert len(warning) == 1
    assert "crystallizer_1" in warning[0] and tag in warning[0] and reason.value in warning[0]


async def test_concurrent_writes_to_one_tag_are_rate_checked_one_after_the_other(running, modbus_server, wait_until):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await wait_until(lambda: loop.time() >= start + 0.5, what="0.5 s to pass")  # 1 °C of headroom at 2 °C/s
    results = await asyncio.gather(
        running.write("jacket_temperature_setpoint", 40.9), running.write("jacket_temperature_setpoint", 41.0),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], WriteRefused) and results[1].reason is WriteRefusal.RATE_LIMIT
    assert len(modbus_server.write_requests()) == 1


async def test_modbus_exception_answer_to_a_write_is_device_refused(running, modbus_server):
    modbus_server.refuse_writes = ExcCodes.ILLEGAL_VALUE
    with pytest.raises(WriteRefused) as refused:
        await running.write("agitator_speed_setpoint", 200.0)
    assert refused.value.reason is WriteRefusal.DEVICE_REFUSED
    assert await modbus_server.get(RegisterTable.HOLDING, 2, 1) == encode(AGITATOR_SETPOINT, 120.5)
    assert running.connected  # the PLC answered: the connection is fine


async def test_write_while_disconnected_is_a_communication_error(running, modbus_server, wait_until):
    await modbus_server.stop()
    await wait_until(lambda: not running.connected, what="adapter to notice the lost connection")
    with pytest.raises(WriteRefused) as refused:
        await running.write("agitator_speed_setpoint", 200.0)
    assert refused.value.reason is WriteRefusal.COMMUNICATION_ERROR
    assert "127.0.0.1" in refused.value.message
    assert modbus_server.write_requests() == []


# ---------------------------------------------------------------------------------------------- outages


async def test_server_stop_turns_samples_bad_within_two_scans_and_restart_recovers(modbus_server, recorder, caplog):
    caplog.set_level(logging.INFO, logger=ADAPTER_LOGGER)
    period_s = 0.1
    await _load_plant_values(modbus_server)
    adapter = _adapter(modbus_server.port, recorder, period_s=period_s)
    await adapter.start()
    try:
        await recorder.wait_for(_all(Quality.GOOD), what="good scan")
        batches_at_stop = len(recorder.batches)
        await modbus_server.stop()
        index, _, bad = await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), after=batches_at_stop,
                                                what="Bad_CommunicationError samples")
        # counted in scans, not wall seconds, so a loaded machine cannot make it flaky
        assert index - batches_at_stop < 2, "Bad within 2 scans of the PLC going away"
        assert bad["reactor_temperature"].value == 37.5  # last known value kept, quality tells the truth
        # while the PLC is down every scan stays Bad, at the scan period
        await recorder.wait_for(lambda s: True, after=index + 3, what="three more scans while down")
        assert all(s.quality is Quality.BAD_COMMUNICATION_ERROR for _, b in recorder.batches[index:] for s in b)
        assert adapter.stats.failed_scans >= 4

        await modbus_server.restart()
        await recorder.wait_for(_all(Quality.GOOD), after=len(recorder.batches), what="good samples after restart")
        assert adapter.stats.reconnects == 1
        assert adapter.connected
        records = [r for r in caplog.records if r.name == ADAPTER_LOGGER]
        outage = [r for r in records if r.levelno == logging.WARNING]
        recovery = [r for r in records if r.levelno == logging.INFO and "recovered" in r.getMessage()]
        assert len(outage) == 1 and f"127.0.0.1:{modbus_server.port}" in outage[0].getMessage()
        assert len(recovery) == 1
    finally:
        await adapter.stop()


async def test_adapter_started_before_its_plc_reports_bad_then_connects_by_itself(
    recorder, free_tcp_port, modbus_server_factory,
):
    port = free_tcp_port
    adapter = _adapter(port, recorder)
    await adapter.start()  # returns at once: nothing listens yet
    try:
        assert not adapter.connected
        _, _, bad = await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), what="bad samples")
        assert all(s.value is None for s in bad.values())  # nothing was ever read
        server = modbus_server_factory(port)
        await server.start()
        await _load_plant_values(server)
        _, _, good = await recorder.wait_for(_all(Quality.GOOD), after=len(recorder.batches), timeout_s=5.0,
                                             what="good samples once the PLC is up")
        assert good["totalised_feed"].value == pytest.approx(12345.678)
        assert adapter.stats.reconnects == 1
    finally:
        await adapter.stop()


async def test_plc_that_stops_answering_times_out_to_bad_then_recovers(modbus_server, recorder):
    await _load_plant_values(modbus_server)
    adapter = _adapter(modbus_server.port, recorder, timeout_s=0.2)
    await adapter.start()
    try:
        await recorder.wait_for(_all(Quality.GOOD), what="good scan")
        modbus_server.response_delay_s = 1.0
        await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), after=len(recorder.batches),
                                what="timeout marked bad")
        modbus_server.response_delay_s = 0.0
        await recorder.wait_for(_all(Quality.GOOD), after=len(recorder.batches), what="recovery")
        assert adapter.stats.reconnects >= 1  # a timed-out connection is dropped and opened again
    finally:
        await adapter.stop()


async def test_connection_dropped_mid_request_is_bad_at_once_not_after_the_timeout(
    modbus_server, recorder, wait_until,
):
    await _load_plant_values(modbus_server)
    adapter = _adapter(modbus_server.port, recorder, timeout_s=3.0)
    await adapter.start()
    try:
        await recorder.wait_for(_all(Quality.GOOD), what="good scan")
        modbus_server.response_delay_s = 3.0  # the PLC sits on the next request ...
        requests_before = len(modbus_server.requests)
        await wait_until(lambda: len(modbus_server.requests) > requests_before, what="a request in flight")
        loop = asyncio.get_running_loop()
        dropped_at = loop.time()
        await modbus_server.stop()  # ... and then drops the connection
        _, bad_at, _ = await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), after=len(recorder.batches),
                                               what="bad samples")
        assert bad_at - dropped_at < 1.0  # far below the 3 s request timeout
    finally:
        await adapter.stop()


async def test_modbus_exception_answer_to_a_read_is_bad_without_reconnecting(running, modbus_server, recorder):
    modbus_server.refuse_reads = ExcCodes.DEVICE_FAILURE
    await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), after=len(recorder.batches), what="bad scan")
    assert running.connected
    modbus_server.refuse_reads = None
    await recorder.wait_for(_all(Quality.GOOD), after=len(recorder.batches), what="recovery")
    assert running.stats.reconnects == 0


# ---------------------------------------------------------------------------------------------- schedule


async def test_scans_stay_on_absolute_deadlines_and_overruns_are_skipped(modbus_server, wait_until):
    period_s = 0.1
    arrivals: list[float] = []
    overruns_after: list[int] = []
    adapter: ModbusAdapter | None = None

    async def slow_sink(samples) -> None:
        arrivals.append(asyncio.get_running_loop().time())
        overruns_after.append(adapter.stats.overruns if adapter else 0)
        # a sink that takes 30 ms per scan would make a sleep(period)-after-scan loop drift by 30 ms per scan;
        # the 6th call takes 250 ms, so at least two slots must be skipped
        await asyncio.sleep(0.25 if len(arrivals) == 6 else 0.03)

    adapter = ModbusAdapter("crystallizer_1", ModbusConnection("127.0.0.1", modbus_server.port, timeout_s=0.5),
                            TAGS, period_s, on_samples=slow_sink)
    await adapter.start()
    try:
        await wait_until(lambda: len(arrivals) >= 14, timeout_s=10.0, what="14 scans")
    finally:
        await adapter.stop()
    stats = adapter.stats
    assert stats.overruns >= 2
    # Scan i sits in slot i + (slots skipped before it): its lag behind that slot's deadline must not grow
    # (a drifting loop would lag 30 ms more per scan). Medians of the first and last four keep one late
    # wake-up on a busy machine from deciding the test.
    lags = [t - arrivals[0] - (i + overruns_after[i] - overruns_after[0]) * period_s for i, t in enumerate(arrivals)]
    assert statistics.median(lags[-4:]) - statistics.median(lags[:4]) == pytest.approx(0.0, abs=0.05)
    assert stats.last_scan_duration_s >= 0.03


async def test_plain_callback_and_failing_callback_do_not_stop_polling(modbus_server, wait_until):
    received: list[int] = []

    def flaky(samples) -> None:
        received.append(len(samples))
        if len(received) % 2:
            raise RuntimeError("historian down")

    adapter = ModbusAdapter("crystallizer_1", ModbusConnection("127.0.0.1", modbus_server.port), TAGS, PERIOD_S,
                            on_samples=flaky)
    await adapter.start()
    try:
        await wait_until(lambda: len(received) >= 4, what="4 scans despite the failing callback")
    finally:
        await adapter.stop()
    assert set(received) == {len(TAGS)}


async def test_stop_is_idempotent_and_closes_the_connection(running):
    await running.stop()
    await running.stop()
    assert not running.connected
    scans = running.stats.scans
    with pytest.raises(WriteRefused) as refused:
        await running.write("agitator_speed_setpoint", 100.0)
    assert refused.value.reason is WriteRefusal.COMMUNICATION_ERROR
    assert running.stats.scans == scans


def test_bad_configuration_is_rejected_naming_the_unit():
    connection = ModbusConnection("127.0.0.1", 502)
    with pytest.raises(ValueError, match="crystallizer_1.*scan_period_s"):
        ModbusAdapter("crystallizer_1", connection, TAGS, 0.0)
    with pytest.raises(ValueError, match="crystallizer_1.*empty"):
        ModbusAdapter("crystallizer_1", connection, [], 0.1)
    with pytest.raises(ValueError, match="crystallizer_1.*declared more than once"):
        ModbusAdapter("crystallizer_1", connection, [*TAGS, TAGS[0]], 0.1)
    with pytest.raises(ValueError, match="backoff"):
        ModbusAdapter("crystallizer_1", connection, TAGS, 0.1, backoff_initial_s=1.0, backoff_max_s=0.5)


def test_before_the_first_scan_every_tag_waits_for_initial_data():
    adapter = ModbusAdapter("crystallizer_1", ModbusConnection("127.0.0.1", 502), TAGS, 0.1)
    assert {s.quality for s in adapter.last_samples.values()} == {Quality.BAD_WAITING_FOR_INITIAL_DATA}
    assert set(adapter.last_samples) == {t.name for t in TAGS}


# ---------------------------------------------------------------------------------------------- write outcomes


async def test_write_to_a_plc_never_reached_is_a_communication_error_not_a_rate_limit(free_tcp_port, recorder):
    adapter = _adapter(free_tcp_port, recorder, timeout_s=0.2)  # nothing listens there
    await adapter.start()
    try:
        await recorder.wait_for(lambda s: all(x.quality is Quality.BAD_COMMUNICATION_ERROR for x in s.values()),
                                what="Bad samples of an unreachable PLC")
        for tag, value in (("jacket_temperature_setpoint", 41.0), ("agitator_speed_setpoint", 200.0)):
            with pytest.raises(WriteRefused) as refused:
                await adapter.write(tag, value)
            assert refused.value.reason is WriteRefusal.COMMUNICATION_ERROR, refused.value.message
            assert f"127.0.0.1:{free_tcp_port}" in refused.value.message
    finally:
        await adapter.stop()


async def test_write_whose_answer_never_comes_is_outcome_unknown_and_reconciled_by_a_read_back(
        modbus_server, recorder, wait_until, caplog):
    """The PLC hangs after the write request arrived and applies it when it resumes: the twin must not call it
    refused; it says the outcome is unknown and reads the register back before it accepts the next write."""
    caplog.set_level(logging.INFO, logger=ADAPTER_LOGGER)
    await _load_plant_values(modbus_server)
    # One scan at start and none during the test (30 s period): any read the PLC sees later is the write path's.
    adapter = ModbusAdapter("crystallizer_1", ModbusConnection("127.0.0.1", modbus_server.port, unit_id=1,
                                                               timeout_s=0.3),
                            TAGS, 30.0, on_samples=recorder, backoff_initial_s=0.05, backoff_max_s=0.2)
    await adapter.start()
    try:
        await recorder.wait_for(_all(Quality.GOOD), what="first good scan")
        modbus_server.response_delay_s = 1.5  # the PLC hangs with the request in hand
        with pytest.raises(WriteOutcomeUnknown) as unknown:
            await adapter.write("agitator_speed_setpoint", 250.0)
        assert unknown.value.tag == "agitator_speed_setpoint" and unknown.value.value == 250.0
        assert "may or may not have applied it" in unknown.value.message
        assert not isinstance(unknown.value, WriteRefused)
        assert dict(adapter.unconfirmed_writes) == {"agitator_speed_setpoint": 250.0}
        assert adapter.stats.unknown_outcome_writes == 1 and adapter.stats.refused_writes == 0

        async def applied() -> bool:
            return await modbus_server.get(RegisterTable.HOLDING, 2, 1) == [2500]

        await wait_until(applied, timeout_s=10, what="the PLC to apply the write when it resumes")
        modbus_server.response_delay_s = 0.0
        await wait_until(lambda: adapter.connected, timeout_s=10, what="the adapter to reconnect")
        seen = len(modbus_server.requests)
        await adapter.write("agitator_speed_setpoint", 260.0)
        after = modbus_server.requests[seen:]
        assert [pdu.function_code for pdu in after] == [3, 6], "the register is read back before the next write"
        assert (after[0].address, after[0].count) == (2, 1)
        assert dict(adapter.unconfirmed_writes) == {}
        assert await modbus_server.get(RegisterTable.HOLDING, 2, 1) == [2600]
        reconciled = [r.getMessage() for r in caplog.records if "reconciled" in r.getMessage()]
        assert len(reconciled) == 1 and "holds 250 (applied)" in reconciled[0]
    finally:
        await adapter.stop()
