"""End to end over real sockets: virtual PLCs (pymodbus) ↔ twin (asyncua) ↔ an asyncua client."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from asyncua import Client, ua

from process_models.engineering_units import UNECE_NAMESPACE_URI
from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line

pytestmark = pytest.mark.shares_module_fixture  # its module-scoped fixture is built once, on one worker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_line(tmp_path_factory):
    """One live line for the module's checks that leave it as they found it for the others (browse, subscribe, a
    setpoint step with refused bad writes); the comms-loss and plant-response checks start their own."""
    async with live_pilot_line(data_dir=tmp_path_factory.mktemp("linetwin_data")) as line:
        yield line


class Recorder:
    """Subscription handler keeping every notification (value, status) per node."""

    def __init__(self) -> None:
        self.values: dict[str, list[ua.DataValue]] = {}

    def datachange_notification(self, node, val, data) -> None:
        self.values.setdefault(node.nodeid.Identifier, []).append(data.monitored_item.Value)


async def _tag(client: Client, idx: int, unit: str, tag: str):
    return client.get_node(ua.NodeId(f"pilot_line.{unit}.{tag}", idx))


@pytest.mark.asyncio(loop_scope="module")
async def test_client_browses_typed_units_with_units_and_ranges(shared_line):
    line = shared_line
    async with Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        line_node = client.get_node(ua.NodeId("pilot_line", idx))
        children = {(await n.read_browse_name()).Name: n for n in await line_node.get_children()}
        assert set(children) == {"feed_tank", "crystallizer", "capture_column", "alarms"}  # + the line's conditions
        units = {name: n for name, n in children.items() if name != "alarms"}
        expected_types = {"feed_tank": "MixingTankType", "crystallizer": "CrystallizerType",
                          "capture_column": "ChromatographyColumnType"}
        process_unit_type = client.get_node(ua.NodeId("ProcessUnitType", idx))
        subtypes = {(await n.read_browse_name()).Name
                    for n in await process_unit_type.get_children(refs=ua.ObjectIds.HasSubtype)}
        assert subtypes == set(expected_types.values())
        for name, node in units.items():
            type_def = await node.read_type_definition()
            assert type_def == ua.NodeId(expected_types[name], idx)

        temperature = await _tag(client, idx, "feed_tank", "temperature")
        assert await temperature.read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)
        eu = await (await temperature.get_child(["0:EngineeringUnits"])).read_value()
        assert (eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text) == (UNECE_NAMESPACE_URI, 0x43454C, "°C")
        eu_range = await (await temperature.get_child(["0:EURange"])).read_value()
        assert (eu_range.Low, eu_range.High) == (0.0, 120.0)
        flow = await _tag(client, idx, "capture_column", "flow_rate_setpoint")
        eu = await (await flow.get_child(["0:EngineeringUnits"])).read_value()
        assert eu.DisplayName.Text == "ml/min"
        access = await flow.read_attribute(ua.AttributeIds.AccessLevel)
        assert access.Value.Value & ua.AccessLevel.CurrentWrite.mask


@pytest.mark.asyncio(loop_scope="module")
async def test_subscription_sees_live_good_values_with_source_timestamps(shared_line):
    line = shared_line
    async with Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        recorder = Recorder()
        sub = await client.create_subscription(50, recorder)
        level = await _tag(client, idx, "feed_tank", "level")
        chords = await _tag(client, idx, "crystallizer", "chord_count_rate")
        await sub.subscribe_data_change([level, chords])

        def enough_good() -> bool:
            got = recorder.values.get("pilot_line.feed_tank.level", [])
            return sum(1 for dv in got if dv.StatusCode.is_good()) >= 3

        await wait_until(enough_good, timeout_s=15, what="3 Good level notifications")
        good = [dv for dv in recorder.values["pilot_line.feed_tank.level"] if dv.StatusCode.is_good()]
        assert len({dv.Value.Value for dv in good}) >= 2, "values must be live (noisy level changes)"
        assert all(0.0 <= dv.Value.Value <= 2.0 for dv in good)
        stamps = [dv.SourceTimestamp for dv in good]
        assert stamps == sorted(stamps) and stamps[0] is not None
        await sub.delete()


@pytest.mark.asyncio(loop_scope="module")
async def test_setpoint_write_reaches_plc_and_bad_writes_change_nothing(shared_line):
    line = shared_line
    async with client_as(line.url, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        plc = line.bench.plc("feed_tank")
        setpoint = await _tag(client, idx, "feed_tank", "jacket_temperature_setpoint")
        await wait_until(lambda: line.twin.runtime.health["feed_tank"].connected, what="feed_tank connected")
        await wait_until(lambda: _is_good(setpoint), what="setpoint read back")
        before = plc.read_tag("jacket_temperature_setpoint")
        target = before + 5.0  # 5 °C step: well inside the 20 °C/s rate limit after the read-back settles
        await wait_until(lambda: _write_ok(setpoint, target), timeout_s=5, what="setpoint write accepted")
        assert plc.read_tag("jacket_temperature_setpoint") == pytest.approx(target, abs=1e-4)
        assert (await setpoint.read_value()) == pytest.approx(target)

        register_image = plc.holding_registers(0, 5)
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await setpoint.write_value(ua.DataValue(ua.Variant(95.0, ua.VariantType.Double)))  # limit 90 °C
        with pytest.raises(ua.uaerrors.BadTypeMismatch):
            await setpoint.write_value(ua.DataValue(ua.Variant("hot", ua.VariantType.String)))
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await setpoint.write_value(ua.DataValue(ua.Variant(float("nan"), ua.VariantType.Double)))
        measured = await _tag(client, idx, "feed_tank", "temperature")
        with pytest.raises(ua.uaerrors.BadNotWritable):
            await measured.write_value(ua.DataValue(ua.Variant(50.0, ua.VariantType.Double)))
        assert plc.holding_registers(0, 5) == register_image
        assert (await setpoint.read_value()) == pytest.approx(target)


@pytest.mark.slow
async def test_plant_responds_to_jacket_setpoint():
    # a 30 s request timeout: on a loaded 2-core machine a guarded write (the PLC's answer awaited) once took over
    # the default 10 s, and asyncua's client drops its connection when a request times out
    async with live_pilot_line(speed=100.0, without=("capture_column",)) as line, \
            client_as(line.url, OPERATOR, timeout=30.0) as client:  # the feed tank alone is looked at
        idx = await client.get_namespace_index(NAMESPACE)
        temperature = await _tag(client, idx, "feed_tank", "temperature")
        setpoint = await _tag(client, idx, "feed_tank", "jacket_temperature_setpoint")
        await wait_until(lambda: _is_good(temperature), what="temperature Good")
        await wait_until(lambda: _is_good(setpoint), what="setpoint read back")
        start = await temperature.read_value()
        current = await setpoint.read_value()
        # Ramp the jacket up to 80 °C in steps the 20 °C/s rate limit accepts.
        while current < 80.0:
            step = min(80.0, current + 10.0)
            await wait_until(lambda s=step: _write_ok(setpoint, s), timeout_s=5, what=f"setpoint {step}")
            current = step

        async def warmed() -> bool:
            return (await temperature.read_value()) > start + 2.0

        await wait_until(warmed, timeout_s=30, what="tank temperature rising toward the 80 °C jacket")


async def test_comms_loss_turns_only_that_unit_bad_and_recovers():
    async with live_pilot_line(scan_period_s=0.1) as line, Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        runtime = line.twin.runtime
        cryst_temp = await _tag(client, idx, "crystallizer", "temperature")
        cryst_sp = await _tag(client, idx, "crystallizer", "jacket_temperature_setpoint")
        tank_level = await _tag(client, idx, "feed_tank", "level")
        column_uv = await _tag(client, idx, "capture_column", "outlet_uv_absorbance")
        connected = client.get_node(ua.NodeId("pilot_line.crystallizer.plc_connected", idx))
        for node in (cryst_temp, tank_level, column_uv):
            await wait_until(lambda n=node: _is_good(n), what="all Good before the outage")

        adapter = runtime.adapters["crystallizer"]
        scans_at_stop = adapter.stats.scans
        await line.bench.plc("crystallizer").stop()

        async def cryst_bad() -> bool:  # the last usable value, flagged: see test_last_usable_value.py
            values = [await n.read_data_value(raise_on_bad_status=False) for n in (cryst_temp, cryst_sp)]
            return all(dv.StatusCode.value == ua.StatusCodes.UncertainNoCommunicationLastUsableValue
                       and dv.Value.Value is not None for dv in values)

        await wait_until(cryst_bad, timeout_s=5, poll_s=0.005,
                         what="crystallizer tags Uncertain_NoCommunicationLastUsableValue")
        assert adapter.stats.scans - scans_at_stop <= 2, "Bad within 2 scans of the PLC going away"
        assert await connected.read_value() is False
        assert await _is_good(tank_level) and await _is_good(column_uv), "other units stay Good"

        await line.bench.plc("crystallizer").start()  # same port: a PLC power-cycle
        await wait_until(lambda: _is_good(cryst_temp), timeout_s=15, what="crystallizer Good again")
        await wait_until(lambda: _is_good(cryst_sp), timeout_s=5, what="setpoint Good again")
        assert await connected.read_value() is True
        assert adapter.stats.reconnects >= 1


async def _is_good(node) -> bool:
    dv = await node.read_data_value(raise_on_bad_status=False)
    return dv.StatusCode.is_good()


async def _write_ok(node, value: float) -> bool:
    """Write; True when accepted. A rate-limit refusal right after a read-back, or a refusal while the PLC link is
    briefly down (an event loop stalled by a loaded machine misses the adapter's 1 s answer deadline), is retried by
    the caller."""
    try:
        await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
    except (ua.uaerrors.BadOutOfRange, ua.uaerrors.BadCommunicationError):
        await asyncio.sleep(0.2)  # back-off between retries of a rate-limited write (not synchronisation)
        return False
    return True
