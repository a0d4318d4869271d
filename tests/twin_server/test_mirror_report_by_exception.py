"""The mirror's report by exception (twin_server.runtime, issue 20): a real pymodbus PLC, the twin scanning it, real
asyncua clients. An unchanged value is not written again (its source timestamp stays, no history row), a change of
quality goes out with the same value, a tag's ``report_deadband`` holds small moves back, one scan's changes reach a
viewer's subscription through the batch write, the write guard still refuses a viewer's write, and a bad
``report_deadband`` is refused at load with the key named."""

from __future__ import annotations

import math
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asyncua import ua

from plc_adapters.asyncua_seam import address_space
from plc_adapters.modbus_codec import encode
from plc_adapters.tag import Range
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, RegisterTable, TagSpec
from tests.conftest import free_tcp_port, wait_until
from tests.plc_adapters.conftest import ModbusTestServer
from tests.security_helpers import add_operator, connected
from twin_server.alarms.alarm_config import UnitAlarmConfig
from twin_server.alarms.limits import LimitAlarmConfig
from twin_server.config import ConfigError, LineConfig, ServerConfig, UnitConfig, parse_line_config
from twin_server.mirror_settings import MirrorSettings
from twin_server.runtime import UnitHealth
from twin_server.security.settings import SecuritySettings
from twin_server.server import TwinServer

LINE, UNIT = "rbe", "tank"
NS = "urn:linetwin:test:rbe"
DEADBAND = 0.5
HIGH = 150.0
"""temperature's High limit (0.5 s on-delay)"""
ON_DELAYED_HIGH = LimitAlarmConfig(high=HIGH, on_delay_s=0.5)
PILOT = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"


def _tag(name: str, address: int, direction: Direction = Direction.MEASURED) -> TagSpec:
    return TagSpec(name=name, direction=direction, unit_code="CEL", eu_range=Range(-50.0, 200.0),
                   table=RegisterTable.HOLDING, address=address, data_type=DataType.FLOAT32)


TAGS = (_tag("level", 0), _tag("temperature", 2), _tag("jacket_setpoint", 4, Direction.COMMANDED))


@dataclass
class Line:
    plc: ModbusTestServer
    twin: TwinServer

    @property
    def health(self) -> UnitHealth:
        assert self.twin.runtime is not None
        return self.twin.runtime.health[UNIT]

    def node(self, tag: str) -> ua.NodeId:
        assert self.twin.space is not None
        return self.twin.space.tag_nodes[(UNIT, tag)].node_id

    async def set(self, tag: str, value: float) -> None:
        spec = next(t for t in TAGS if t.name == tag)
        registers = encode(spec, value) if math.isfinite(value) else [0x7FC0, 0]  # float32 quiet NaN
        await self.plc.set(RegisterTable.HOLDING, spec.address, registers)

    async def scans(self, n: int) -> None:
        """Wait until the twin has mirrored ``n`` more scans (every tag of each)."""
        target = self.health.samples_mirrored + n * len(TAGS)
        await wait_until(lambda: self.health.samples_mirrored >= target, 20.0, what=f"{n} more scans")

    async def history_settled(self) -> None:
        assert self.twin.historian is not None
        recorder = self.twin.historian.recorder
        await wait_until(lambda: recorder.queue_depth() == 0, 20.0, what="the historian's queue written")

    def history_rows(self, tag: str) -> int:
        assert self.twin.historian is not None
        return len(self.twin.historian.backend.read_raw(str(self.node(tag).Identifier), 0, 2**62))


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    plc = ModbusTestServer()
    await plc.start()
    add_operator()
    config = LineConfig(
        name=LINE, description="", scan_period_s=0.05,
        server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/rbe/", namespace=NS),
        units=(UnitConfig(name=UNIT, kind="mixing_tank", description="", model={}, plant={},
                          connection=ModbusConnection("127.0.0.1", plc.port, timeout_s=2.0), tags=TAGS,
                          alarms=UnitAlarmConfig(limits={"temperature": ON_DELAYED_HIGH})),),
        security=SecuritySettings(allow_none=True),
        mirror=MirrorSettings({(UNIT, "level"): DEADBAND}))
    lt = Line(plc, TwinServer(config))
    for tag, value in (("level", 20.0), ("temperature", 60.0), ("jacket_setpoint", 30.0)):
        await lt.set(tag, value)
    await lt.twin.start()
    try:
        await wait_until(lambda: lt.health.connected and lt.health.values_published >= len(TAGS), 20.0,
                         what="the first values published")
        yield lt
    finally:
        await lt.twin.stop()
        await plc.stop()


async def test_an_unchanged_value_is_not_written_again_nor_historized(line: Line):
    async with connected(line.twin.endpoint) as client:
        node = client.get_node(line.node("temperature"))
        first = await node.read_data_value()
        assert first.Value.Value == pytest.approx(60.0) and first.StatusCode.is_good()
        await line.history_settled()
        rows, published = line.history_rows("temperature"), line.health.values_published
        await line.scans(5)
        await line.history_settled()
        again = await node.read_data_value()
        assert again.SourceTimestamp == first.SourceTimestamp  # not re-written: the time of its last change
        assert line.history_rows("temperature") == rows
        assert line.health.values_published == published
        await line.set("temperature", 61.5)
        await wait_until(lambda: line.health.values_published == published + 1, 20.0, what="the one change")
        changed = await node.read_data_value()
        assert changed.Value.Value == pytest.approx(61.5) and changed.SourceTimestamp > first.SourceTimestamp
        await line.history_settled()
        assert line.history_rows("temperature") == rows + 1


async def test_a_change_of_quality_goes_out_with_the_same_value(line: Line):
    seen: list[ua.DataValue] = []

    class Handler:
        def datachange_notification(self, node: object, val: object, data: object) -> None:
            seen.append(data.monitored_item.Value)  # type: ignore[attr-defined]

    async with connected(line.twin.endpoint) as client:
        subscription = await client.create_subscription(20, Handler())
        await subscription.subscribe_data_change(client.get_node(line.node("temperature")))
        await wait_until(lambda: len(seen) == 1, 20.0, what="the initial value")
        await line.set("temperature", math.nan)  # the PLC's failed input: Bad in the twin, last value kept
        await wait_until(lambda: len(seen) == 2, 20.0, what="the change of quality")
        assert seen[1].StatusCode.value == ua.StatusCodes.UncertainLastUsableValue
        assert seen[1].Value.Value == pytest.approx(60.0)
        await line.set("temperature", 60.0)  # the same value, Good again: goes out too
        await wait_until(lambda: len(seen) == 3, 20.0, what="Good again")
        assert seen[2].StatusCode.is_good() and seen[2].Value.Value == pytest.approx(60.0)


async def test_an_alarm_on_delay_runs_out_on_a_value_published_once(line: Line):
    """A value that crosses a limit and then stays constant is published once; the alarm still becomes active when
    its on-delay is over (the held value is fed to the limit on every scan while it waits)."""
    assert line.twin.alarms is not None
    condition = line.twin.alarms.conditions[ua.NodeId(f"{LINE}.{UNIT}.alarms.temperature_limit",
                                                      line.twin.space.namespace_index)]  # type: ignore[union-attr]
    published = line.health.values_published
    await line.set("temperature", HIGH + 10.0)
    await wait_until(lambda: condition.state.active, 20.0, what="the High alarm after its on-delay")
    assert line.health.values_published == published + 1
    assert condition.state.limit_state == "High"


async def test_the_report_deadband_holds_back_moves_within_it(line: Line):
    async with connected(line.twin.endpoint) as client:
        node = client.get_node(line.node("level"))
        assert await node.read_value() == pytest.approx(20.0)
        await line.set("level", 20.0 + 0.8 * DEADBAND)
        await line.scans(4)
        assert await node.read_value() == pytest.approx(20.0)  # within the deadband of the last published value
        await line.set("level", 20.0 + 1.6 * DEADBAND)
        await wait_until(lambda: _close(line, "level", 20.0 + 1.6 * DEADBAND), 20.0, what="the move past the band")
        await line.set("level", 20.0 + 0.8 * DEADBAND)  # 0.8 band from the published 20.8: held back again
        await line.scans(4)
        assert await node.read_value() == pytest.approx(20.0 + 1.6 * DEADBAND)


def _close(line: Line, tag: str, value: float) -> bool:
    """Whether the twin's node of ``tag`` holds ``value`` now."""
    current = address_space(line.twin.server).read(line.node(tag), ua.AttributeIds.Value).Value.Value
    return current is not None and abs(current - value) < 1e-4


async def test_every_change_of_a_scan_reaches_a_viewer_and_the_write_guard_still_refuses_viewers(line: Line):
    """The batch write: a viewer's subscription sees every new value of one scan; a viewer's write of the
    commanded tag is refused (BadUserAccessDenied) and the PLC's register is untouched."""
    latest: dict[str, float] = {}
    names = {line.node(t.name): t.name for t in TAGS}

    class Handler:
        def datachange_notification(self, node: object, val: float, data: object) -> None:
            latest[names[node.nodeid]] = val  # type: ignore[attr-defined]

    async with connected(line.twin.endpoint) as viewer:  # anonymous: the viewer role
        subscription = await viewer.create_subscription(20, Handler())
        await subscription.subscribe_data_change([viewer.get_node(n) for n in names])
        await wait_until(lambda: len(latest) == len(TAGS), 20.0, what="the initial values")
        targets = {"level": 42.0, "temperature": 84.0, "jacket_setpoint": 33.0}
        for tag, value in targets.items():
            await line.set(tag, value)
        await wait_until(lambda: all(abs(latest.get(t, math.inf) - v) < 1e-4 for t, v in targets.items()), 20.0,
                         what="every new value at the viewer")
        before = await line.plc.get(RegisterTable.HOLDING, 4, 2)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await viewer.get_node(line.node("jacket_setpoint")).write_value(
                ua.DataValue(ua.Variant(35.0, ua.VariantType.Double)))
        assert await line.plc.get(RegisterTable.HOLDING, 4, 2) == before


def _pilot_with(tag_key: str, value: object) -> dict:
    data = tomllib.loads(PILOT.read_text())
    unit = next(iter(data["units"]))
    tag = next(iter(data["units"][unit]["tags"]))
    data["units"][unit]["tags"][tag][tag_key] = value
    return data


@pytest.mark.parametrize("value, expected", [
    (-0.1, "a finite number >= 0"),
    ("0.5", "a finite number >= 0"),
    (True, "a finite number >= 0"),
    (math.inf, "a finite number >= 0"),
    (1e9, "smaller than the width of the tag's eu_range"),
])
def test_a_bad_report_deadband_is_refused_with_its_key_named(value: object, expected: str):
    data = _pilot_with("report_deadband", value)
    unit = next(iter(data["units"]))
    tag = next(iter(data["units"][unit]["tags"]))
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="line.toml")
    issues = {i.key: str(i) for i in err.value.issues}
    key = f"units.{unit}.tags.{tag}.report_deadband"
    assert list(issues) == [key]
    assert issues[key].startswith(f"line.toml: {key}: got ") and expected in issues[key]


def test_a_report_deadband_is_read_per_tag():
    data = _pilot_with("report_deadband", 0.25)
    unit = next(iter(data["units"]))
    tag = next(iter(data["units"][unit]["tags"]))
    config = parse_line_config(data, source="line.toml")
    assert config.mirror.report_deadband(unit, tag) == 0.25
    assert config.mirror.report_deadband(unit, "no_such_tag") == 0.0
