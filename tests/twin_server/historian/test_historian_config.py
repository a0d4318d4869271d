"""``[historian]`` and per-tag ``historize`` / ``deadband``: defaults, and every mistake reported with file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from twin_server.config import ConfigError, parse_line_config

PILOT = Path(__file__).resolve().parents[3] / "examples" / "pilot_line.toml"


def pilot_data() -> dict:
    return tomllib.loads(PILOT.read_text())


def test_defaults_historize_every_tag_in_sqlite_in_the_line_data_dir(tmp_path):
    config = parse_line_config(pilot_data(), source=str(PILOT))
    h = config.historian
    assert h.backend == "sqlite" and h.retention_days == 0 and h.flush_interval_s <= 1.0
    assert h.tag("feed_tank", "level").historize and h.tag("feed_tank", "level").deadband == 0
    assert h.resolved_data_dir(tmp_path) == tmp_path / "history"  # never beside the config


def test_per_tag_settings_and_influx_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("TEST_INFLUX_USER", "twin")
    monkeypatch.setenv("TEST_INFLUX_PASSWORD", "secret")
    data = pilot_data()
    data["units"]["feed_tank"]["tags"]["level"]["deadband"] = 0.01
    data["units"]["feed_tank"]["tags"]["temperature"]["historize"] = False
    data["historian"] = {"backend": "influxdb", "url": "http://127.0.0.1:8086", "database": "plant",
                         "username_env": "TEST_INFLUX_USER", "password_env": "TEST_INFLUX_PASSWORD",
                         "retention_days": 7, "data_dir": "/var/lib/linetwin"}
    h = parse_line_config(data, source="line.toml").historian
    assert h.tag("feed_tank", "level").deadband == 0.01
    assert not h.tag("feed_tank", "temperature").historize
    assert h.influx.database == "plant" and h.influx.username() == "twin" and h.influx.password() == "secret"
    assert h.resolved_data_dir(Path("/srv/data")) == Path("/var/lib/linetwin")  # absolute: as given


def test_mistakes_are_reported_with_file_key_got_expected(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    data = pilot_data()
    data["units"]["feed_tank"]["tags"]["level"]["deadband"] = -1
    data["units"]["feed_tank"]["tags"]["temperature"]["historize"] = "yes"
    data["historian"] = {"backend": "influxdb", "url": "ftp://x", "api": "v2", "org": "plant", "bucket": "twin",
                         "token_env": "NOT_SET_ANYWHERE", "token": "abc", "flush_interval_s": 5}
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="line.toml")
    text = str(err.value)
    for line in [
        "line.toml: units.feed_tank.tags.level.deadband: got -1; expected a number >= 0",
        "line.toml: units.feed_tank.tags.temperature.historize: got 'yes'; expected true or false",
        "line.toml: historian.url: got 'ftp://x'; expected an http(s) URL",
        "line.toml: historian.token_env: got \"'NOT_SET_ANYWHERE' (not set in the environment)\"; "
        "expected environment variable NOT_SET_ANYWHERE set to the credential",
        "line.toml: historian.token: got an unknown key",
        "line.toml: historian.flush_interval_s: got 5; expected a number >= 0.01 and <= 1",
    ]:
        assert line in text, text
    data["historian"] = {"backend": "mysql"}
    with pytest.raises(ConfigError, match=r"historian.backend: got 'mysql'; expected one of sqlite, influxdb"):
        parse_line_config(data, source="line.toml")


def test_the_data_loss_alarm_keys_have_defaults_and_are_checked():
    h = parse_line_config(pilot_data(), source=str(PILOT)).historian
    assert h.loss_alarm_clear_s == 60.0 and h.loss_alarm_severity == 800
    data = pilot_data()
    data["historian"] = {"loss_alarm_clear_s": 0, "loss_alarm_severity": 1001}
    with pytest.raises(ConfigError) as info:
        parse_line_config(data, source="line.toml")
    text = str(info.value)
    assert "line.toml: historian.loss_alarm_clear_s: got 0" in text
    assert "line.toml: historian.loss_alarm_severity: got 1001; expected an integer in [1, 1000]" in text
