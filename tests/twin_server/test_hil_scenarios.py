"""HIL scenarios end to end over real sockets, as `linetwin hil run` runs them: physics plant with mismatched
"true" kinetics behind a virtual PLC, the twin's EKF + NMPC + supervisor, the runner as operator over OPC UA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linetwin_cli.main import main
from tests.conftest import free_tcp_port

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SPEED = "400"


def run(name: str, tmp_path: Path) -> dict:
    report = tmp_path / f"{name}.json"
    assert main(["hil", "run", str(SCENARIOS / f"{name}.toml"), "--speed", SPEED, "--report", str(report),
                 "--port", str(free_tcp_port())]) == 0
    assert report.with_suffix(".png").stat().st_size > 10_000
    return json.loads(report.read_text())["kpis"]


@pytest.mark.slow
def test_mpc_beats_linear_cooling_under_plus_20_percent_kinetic_mismatch(tmp_path):
    mpc = run("mismatch_plus20_mpc", tmp_path)
    linear = run("mismatch_plus20_linear_cooling", tmp_path)
    assert mpc["d43_error_percent"] < linear["d43_error_percent"]
    assert mpc["d43_error_percent"] < 2.0
    assert mpc["setpoints_written"] > 20 and mpc["solves"] > 20
    assert mpc["solve_time_ms"]["median"] > 0
    assert mpc["final_cv"] <= linear["final_cv"] + 0.01
    assert linear["setpoints_written"] > 20 and linear["fallbacks_used"] == 0
