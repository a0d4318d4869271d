"""The crystallizer's closed loop over OPC UA: a HIL scenario of the mixed line (virtual OPC UA PLC, NMPC, the PLC
dropping off the network mid-batch), run as `linetwin hil run` runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linetwin_cli.main import main
from tests.conftest import REPO_ROOT, free_tcp_port

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "plc_disconnect_mpc_opcua.toml"


@pytest.mark.slow
def test_closed_loop_over_opcua_rides_through_a_plc_disconnect(tmp_path: Path) -> None:
    report = tmp_path / "opcua.json"
    assert main(["hil", "run", str(SCENARIO), "--speed", "400", "--report", str(report),
                 "--port", str(free_tcp_port())]) == 0
    data = json.loads(report.read_text())
    kpis = data["kpis"]
    events = [(e["fault"].split()[0], e["action"]) for e in data["fault_events"]]
    assert events == [("plc_disconnect", "start"), ("plc_disconnect", "end")]
    assert kpis["setpoints_written"] >= 20 and kpis["solves"] >= 20
    assert kpis["d43_error_percent"] < 5.0
    assert kpis["final_temperature_c"] < 27.0  # the cooling profile reached the plant over OPC UA
