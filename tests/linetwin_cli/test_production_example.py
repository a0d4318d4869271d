"""examples/production_line.toml is a complete production config: encrypted endpoints only, no anonymous access,
InfluxDB with store and forward, roles, alarms, metrics on — and ``linetwin check`` passes on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from linetwin_cli.main import main as linetwin
from twin_server.config import load_line_config

PRODUCTION = Path(__file__).resolve().parents[2] / "examples" / "production_line.toml"


def test_production_example_is_complete_and_passes_check(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("LINETWIN_INFLUX_TOKEN", "token-from-the-environment")
    config = load_line_config(PRODUCTION)
    assert not config.security.allow_none and config.security.anonymous == "off"
    assert config.security.policies and all(p.endswith("SignAndEncrypt") for p in config.security.policies)
    assert config.historian.backend == "influxdb" and config.historian.forward_buffer_samples > 0
    assert config.metrics.enabled and config.metrics.host == "127.0.0.1"
    assert any(unit.alarms.limits for unit in config.units), "limit alarms configured"
    assert linetwin(["check", str(PRODUCTION)]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_names_the_missing_influx_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("LINETWIN_INFLUX_TOKEN", raising=False)
    assert linetwin(["check", str(PRODUCTION)]) == 2
    assert "historian.token_env" in capsys.readouterr().err
