"""Alarm keys in the line config: parsed into the unit's alarms, every mistake reported as FILE: KEY: got; expected."""

from __future__ import annotations

import copy
import tomllib

import pytest

from tests.twin_server.line_fixture import PILOT
from twin_server.alarms.limits import LimitAlarmConfig
from twin_server.config import ConfigError, parse_line_config

RAW = tomllib.loads(PILOT.read_text())


def _with(tag_alarms: object = None, unit_alarms: object = None) -> dict:
    raw = copy.deepcopy(RAW)
    unit = raw["units"]["feed_tank"]
    if tag_alarms is not None:
        unit["tags"]["temperature"]["alarms"] = tag_alarms
    if unit_alarms is not None:
        unit["alarms"] = unit_alarms
    return raw


def _issues(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_line_config(raw, source="line.toml")
    return [str(i) for i in exc.value.issues]


def test_alarm_tables_are_parsed():
    config = parse_line_config(_with(
        {"high_high": 80.0, "high": 70.0, "low": 10, "deadband": 0.5, "on_delay_s": 2.0, "severity": 700},
        {"comms_loss_severity": 900, "surrogate_drift_severity": 650, "innovation_bounds": {"concentration": 5.0}}))
    alarms = config.unit("feed_tank").alarms
    assert alarms.limits["temperature"] == LimitAlarmConfig(high_high=80.0, high=70.0, low=10.0, deadband=0.5,
                                                            on_delay_s=2.0, severity=700)
    assert set(alarms.limits) == {"temperature", "level"}, "the pilot line's own level alarm (README demo) stays"
    assert alarms.comms_loss and alarms.comms_loss_severity == 900
    assert alarms.surrogate_drift_severity == 650 and config.unit("crystallizer").alarms.surrogate_drift_severity == 500
    assert alarms.innovation_bounds == {"concentration": 5.0}
    assert config.unit("crystallizer").alarms.limits == {}


def test_every_alarm_mistake_is_reported_with_file_key_got_expected():
    issues = _issues(_with({"high": 70.0, "high_high": 60.0, "low": 500.0, "deadband": -1, "severity": 0,
                            "on_delay": 2}, {"comms_loss": "yes", "innovation_bounds": {"nope": 1.0},
                                             "surrogate_drift_severity": 2000}))
    p = "line.toml: units.feed_tank.tags.temperature.alarms"
    assert f"{p}.on_delay: got an unknown key; expected one of deadband, high, high_high, low, low_low, " \
           "on_delay_s, severity" in issues
    assert f"{p}.low: got 500.0; expected a limit inside eu_range [0.0, 120.0]" in issues
    assert f"{p}.high_high: got 60.0; expected a limit above high (70.0): low_low < low < high < high_high" in issues
    assert f"{p}.deadband: got -1; expected a finite number >= 0" in issues
    assert f"{p}.severity: got 0; expected an integer severity in [1, 1000]" in issues
    assert "line.toml: units.feed_tank.alarms.comms_loss: got 'yes'; expected true or false" in issues
    assert "line.toml: units.feed_tank.alarms.surrogate_drift_severity: got 2000; expected an integer severity in " \
           "[1, 1000]" in issues
    assert any(i.startswith("line.toml: units.feed_tank.alarms.innovation_bounds.nope: got 'nope'; expected a tag")
               for i in issues)


def test_an_alarm_table_without_limits_or_not_a_table_is_refused():
    assert "line.toml: units.feed_tank.tags.temperature.alarms: got 'no limit'; expected at least one of " \
           "high_high, high, low, low_low" in _issues(_with({"deadband": 1.0}))
    assert any(i.startswith("line.toml: units.feed_tank.tags.temperature.alarms: got 70.0; expected a table")
               for i in _issues(_with(70.0)))
