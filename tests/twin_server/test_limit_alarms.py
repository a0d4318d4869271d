"""Limit alarms (ExclusiveLimitAlarmType): the HH/H/L/LL state machine with deadband and on-delay, `[alarms]`
config validation, and end to end — an operator drives the HIL feed tank past its high limit, an event
subscriber sees the High alarm and acknowledges it."""

from __future__ import annotations

import dataclasses

import pytest
from asyncua import ua

from tests.conftest import free_tcp_port, wait_until
from tests.security_helpers import OPERATOR, add_operator, client_as
from tests.twin_server.line_fixture import NAMESPACE, PILOT
from tests.twin_server.security.test_security_roles import audit_rows
from twin_server.alarms.limits import LimitAlarmSpec, LimitMonitor
from twin_server.bench_launcher import build_bench, config_for_bench
from twin_server.config import ConfigError, load_line_config, parse_line_config
from twin_server.server import TwinServer


def test_monitor_levels_deadband_and_on_delay() -> None:
    now = [0.0]
    spec = LimitAlarmSpec("u", "t", high_high=90.0, high=80.0, low=10.0, deadband=2.0, on_delay_s=1.0)
    m = LimitMonitor(spec, clock=lambda: now[0])
    assert not m.update(50.0) and m.state is None
    assert not m.update(81.0) and m.state is None  # on-delay running
    now[0] = 0.5
    assert not m.update(81.0)
    now[0] = 1.2
    assert m.update(81.0) and m.state == "high" and m.severity() == 700
    assert m.update(95.0) and m.state == "high_high" and m.severity() == 800  # escalation on the same side
    assert not m.update(89.0) and m.state == "high_high"  # deadband holds HH at 89 ≥ 88
    assert m.update(87.0) and m.state == "high"
    assert not m.update(78.5) and m.state == "high"  # deadband: 78.5 ≥ 80 - 2
    assert m.update(77.0) and m.state is None
    assert not m.update(None) and m.state is None  # a Bad value changes nothing
    assert not m.update(5.0)  # low side: on-delay again
    now[0] = 3.0
    assert m.update(5.0) and m.state == "low"


def test_alarms_table_is_validated() -> None:
    raw = {"line": {"name": "l"}, "server": {},
           "units": {"tank": {"kind": "mixing_tank", "plc": {"host": "127.0.0.1", "port": 502},
                              "tags": {"level": {"direction": "measured", "unit": "MTR", "eu_range": [0, 2],
                                                 "table": "input", "address": 0, "data_type": "int16"}}}},
           "alarms": {"tank": {"level": {"high": 1.0, "high_high": 0.5, "colour": 1},
                               "flow": {"high": 1.0}},
                      "pump": {}}}
    with pytest.raises(ConfigError) as err:
        parse_line_config(raw, source="line.toml")
    text = str(err.value)
    assert "line.toml: alarms.tank.level.colour: got an unknown key" in text
    assert "line.toml: alarms.tank.level: got {'high_high': 0.5, 'high': 1.0}; expected low_low < low < high < " \
           "high_high" in text
    assert "line.toml: alarms.tank.flow: got 'flow'; expected a tag of unit tank: level" in text
    assert "line.toml: alarms.pump: got 'pump'; expected a unit of the line: tank" in text


async def test_operator_drives_feed_tank_past_high_limit_and_acknowledges_the_alarm():
    add_operator()
    base = load_line_config(PILOT)
    config = dataclasses.replace(base, scan_period_s=0.1, units=tuple(u for u in base.units if u.name == "feed_tank"))
    bench = build_bench(config, speed=100.0, free_ports=True)
    await bench.start()
    start_temperature = bench.plc("feed_tank").read_tag("temperature")
    limit = start_temperature + 1.0
    config = dataclasses.replace(config, alarms=(LimitAlarmSpec("feed_tank", "temperature", high=limit,
                                                                deadband=0.2, severity=600),))
    twin = TwinServer(config_for_bench(config, bench), endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/")
    try:
        await twin.start()
        async with client_as(twin.endpoint, OPERATOR) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            events: list[object] = []

            class Handler:
                def event_notification(self, event: object) -> None:
                    events.append(event)

            sub = await client.create_subscription(50, Handler())
            await sub.subscribe_events(client.nodes.server,
                                       client.get_node(ua.NodeId(ua.ObjectIds.ExclusiveLimitAlarmType)))
            setpoint = client.get_node(ua.NodeId("pilot_line.feed_tank.jacket_temperature_setpoint", idx))

            async def good() -> bool:
                return (await setpoint.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()

            await wait_until(good, what="setpoint read back")
            current = await setpoint.read_value()
            while current < 80.0:  # ramp in steps the rate limit accepts
                step = min(80.0, current + 10.0)
                try:
                    await setpoint.write_value(ua.DataValue(ua.Variant(step, ua.VariantType.Double)))
                    current = step
                except ua.uaerrors.BadOutOfRange:
                    await wait_until(good, what="setpoint settled")  # rate limit: try the step again
            await wait_until(lambda: events, timeout_s=60, what="High limit alarm")
            alarm = events[-1]
            assert alarm.SourceName == "feed_tank"
            assert getattr(alarm, "ActiveState/Id") is True and alarm.Severity == 600
            assert getattr(alarm, "LimitState/CurrentState").Text == "High"
            assert alarm.HighLimit == pytest.approx(limit)
            condition = client.get_node(ua.NodeId("pilot_line.feed_tank.temperature_limit_alarm", idx))
            await condition.call_method(ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
                                        ua.Variant(alarm.EventId, ua.VariantType.ByteString),
                                        ua.LocalizedText("jacket test, expected"))
            await wait_until(lambda: getattr(events[-1], "AckedState/Id") is True, what="acknowledged event")
            await sub.delete()
    finally:
        await twin.stop()
        await bench.stop()
    acks = audit_rows("acknowledge")
    assert acks[0]["node"] == "pilot_line.feed_tank.temperature_limit_alarm"
    assert acks[0]["reason"] == "jacket test, expected" and acks[0]["user"] == "operator"
