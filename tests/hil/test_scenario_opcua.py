"""The crystallizer's closed loop over OPC UA: a HIL scenario of the mixed line (virtual OPC UA PLC, NMPC, the PLC
dropping off the network mid-batch), run as `linetwin hil run` runs it, over real sockets.

The mechanism only, on a shortened batch (40 min, the 2 min disconnect at 20 min) at the scenario's 200×: the
KPIs of the shipped 2 h scenario are asserted on the stepped loop (tests/hil/test_stepped_batch.py), which agrees
with the socket path (tests/twin_server/test_hil_scenarios.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linetwin_cli.main import main
from tests.conftest import REPO_ROOT, free_tcp_port

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "plc_disconnect_mpc_opcua.toml"


def shortened(tmp_path: Path) -> Path:
    """The shipped scenario with a 2400 s batch and the disconnect at 1200..1320 s (line path made absolute)."""
    text = SCENARIO.read_text()
    for old, new in (("batch_duration_s = 7200", "batch_duration_s = 2400"), ("start_s = 3600", "start_s = 1200"),
                     ("end_s = 3720", "end_s = 1320"),
                     ('line = "../mixed_line.toml"', f'line = "{SCENARIO.parents[1] / "mixed_line.toml"}"')):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "plc_disconnect_mpc_opcua_short.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.serial  # a wall-paced socket batch: not beside another heavy test under xdist
def test_closed_loop_over_opcua_rides_through_a_plc_disconnect(tmp_path: Path) -> None:
    report = tmp_path / "opcua.json"
    assert main(["hil", "run", str(shortened(tmp_path)), "--speed", "200", "--report", str(report),
                 "--port", str(free_tcp_port())]) == 0
    data = json.loads(report.read_text())
    kpis = data["kpis"]
    events = [(e["fault"].split()[0], e["action"]) for e in data["fault_events"]]
    assert events == [("plc_disconnect", "start"), ("plc_disconnect", "end")]
    # 21 decisions in 40 min, one while down; a loaded machine skips some (the old 2 h test asked for 20 of 60)
    assert kpis["setpoints_written"] >= 7 and kpis["solves"] >= 7
    after = [s for s in data["timeline"] if s["batch_time_s"] > 1500.0]
    assert after and after[-1]["twin"]["setpoints_written"] > max(
        s["twin"]["setpoints_written"] or 0 for s in data["timeline"] if s["batch_time_s"] < 1320.0)  # resumed
    assert kpis["final_temperature_c"] < 36.0  # the NMPC's cooling profile reached the plant over OPC UA
