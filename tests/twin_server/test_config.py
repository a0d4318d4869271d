"""Line configuration: the demo line loads; broken configs yield every error at once with file and key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from linetwin_cli.main import main
from plc_adapters.tag_map import ByteOrder, DataType, Direction, RegisterTable, WordOrder
from twin_server.config import ConfigError, load_line_config, parse_line_config

PILOT = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"


def pilot_data() -> dict:
    return tomllib.loads(PILOT.read_text())


def test_demo_line_loads_with_all_units_and_typed_tags():
    config = load_line_config(PILOT)
    assert [u.kind for u in config.units] == ["mixing_tank", "crystallizer", "chromatography_column"]
    level = config.unit("feed_tank").tag("level")
    assert level.data_type is DataType.INT16 and level.scale == pytest.approx(0.001)
    assert level.direction is Direction.MEASURED and level.table is RegisterTable.INPUT
    jacket = config.unit("feed_tank").tag("jacket_temperature_setpoint")
    assert (jacket.byte_order, jacket.word_order) == (ByteOrder.LITTLE, WordOrder.LITTLE)
    assert jacket.effective_write_limits.high == 90.0 and jacket.max_rate == 20.0
    assert config.server.port == 4840 and config.scan_period_s == 0.5


def test_every_error_is_reported_at_once_with_file_key_got_expected():
    data = pilot_data()
    data["units"]["feed_tank"]["tags"]["level"]["data_type"] = "int12"
    data["units"]["feed_tank"]["tags"]["temperature"]["address"] = 8  # overlaps agitator_power (7..8)
    data["units"]["crystallizer"]["kind"] = "reactor"
    data["units"]["crystallizer"]["tags"]["temperature"]["unit"] = "degC"
    data["units"]["capture_column"]["tags"]["flow_rate_setpoint"]["write_limits"] = [0.0, 50.0]
    data["units"]["capture_column"]["tags"]["flow_rate"]["direction"] = "commanded"  # on an input register
    data["server"]["endpoint"] = "http://localhost"
    data["line"]["scan_period"] = 1.0  # misspelt key
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="broken.toml")
    keys = {i.key for i in err.value.issues}
    assert keys == {
        "units.feed_tank.tags.level.data_type",
        "units.feed_tank.tags.temperature.address",
        "units.crystallizer.kind",
        "units.crystallizer.tags.temperature.unit",
        "units.capture_column.tags.flow_rate_setpoint.write_limits",
        "units.capture_column.tags.flow_rate.table",
        "server.endpoint",
        "line.scan_period",
    }
    assert all(i.file == "broken.toml" for i in err.value.issues)
    text = str(err.value)
    assert "got 'int12'; expected one of int16, uint16, int32, uint32, float32, float64, bool" in text
    assert "no overlap with tag 'agitator_power'" in text


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].pop("eu_range"), "units.feed_tank.tags.level.eu_range"),
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].__setitem__("eu_range", [5, 1]),
         "units.feed_tank.tags.level.eu_range"),
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].__setitem__("table", "coil"),
         "units.feed_tank.tags.level.data_type"),
        (lambda d: d["units"]["feed_tank"]["plc"].__setitem__("port", 70000), "units.feed_tank.plc.port"),
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].__setitem__("max_rate", 1.0),
         "units.feed_tank.tags.level.write_limits"),
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].__setitem__("scale", 0),
         "units.feed_tank.tags.level.scale"),
        (lambda d: d["units"]["feed_tank"]["tags"]["level"].update(address=65535, data_type="float32"),
         "units.feed_tank.tags.level.address"),
    ],
)
def test_single_mistakes_name_their_key(mutate, key):
    data = copy.deepcopy(pilot_data())
    mutate(data)
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="x.toml")
    assert key in {i.key for i in err.value.issues}, str(err.value)


def test_syntax_error_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[line\nname = 1\n")
    with pytest.raises(ConfigError) as err:
        load_line_config(bad)
    assert err.value.issues[0].key == "<syntax>" and str(bad) in str(err.value)
    with pytest.raises(ConfigError):
        load_line_config(tmp_path / "missing.toml")


def test_check_command_prints_errors_and_fails(tmp_path, capsys):
    text = PILOT.read_text().replace('data_type = "int16"\nscale = 0.001', 'data_type = "int99"\nscale = 0.001', 1)
    broken = tmp_path / "broken.toml"
    broken.write_text(text)
    assert main(["check", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: units.feed_tank.tags.level.data_type: got 'int99'" in err
    assert main(["check", str(PILOT)]) == 0
    assert "OK" in capsys.readouterr().out


def test_control_table_errors_are_reported_with_the_rest():
    data = pilot_data()
    control = data["units"]["crystallizer"]["control"]
    control["initial_mode"] = "autopilot"
    control["controller_period_s"] = 90.0  # not a multiple of the 60 s estimator period
    control["jacket_limits_c"] = [30.0, 20.0]
    control["measurment_std"] = {}
    data["units"]["feed_tank"]["control"] = {"strategy": "linear_cooling"}
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="line.toml")
    keys = {i.key for i in err.value.issues}
    assert keys == {
        "units.crystallizer.control.initial_mode",
        "units.crystallizer.control.controller_period_s",
        "units.crystallizer.control.jacket_limits_c",
        "units.crystallizer.control.measurment_std",
        "units.feed_tank.control",
    }
    assert "got 'autopilot'; expected one of manual, auto, mpc" in str(err.value)
