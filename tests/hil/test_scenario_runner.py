"""run_scenario operates a batch over OPC UA (contract nodes only) against a stand-in twin and a real virtual PLC.

The twin side here is tests/hil/contract_twin.py, a STAND-IN exposing the control contract with a recipe ramp
(the real twin control loop is tested end to end in tests/twin_server once it exists).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from hil.bench import HilBench
from hil.faults import Fault, FaultKind
from hil.plant import make_plant
from hil.scenario import load_scenario
from hil.scenario_runner import ScenarioRunError, run_scenario
from hil.virtual_plc import VirtualPlc
from tests.conftest import REPO_ROOT, free_tcp_port
from tests.hil.contract_twin import ContractTwin
from tests.hil.hil_helpers import loopback, pilot_line_unit

NAMESPACE = "urn:linetwin:pilot_line"


def bench_for(plant_overrides: dict, speed: float, seed: int = 1) -> HilBench:
    kind, model, tags = pilot_line_unit("crystallizer")
    plant = make_plant(kind, {**model, **plant_overrides}, seed=seed)
    return HilBench([VirtualPlc("crystallizer", loopback(), tags, plant, speed=speed, step_s=1.0)])


async def test_runner_operates_a_batch_with_faults_and_writes_report_and_plot(tmp_path: Path, capsys) -> None:
    scenario = load_scenario(REPO_ROOT / "examples" / "scenarios" / "nominal_linear_cooling.toml")
    scenario = dataclasses.replace(
        scenario, batch_duration_s=900.0, speed=300.0, sample_interval_s=30.0,
        faults=(Fault(FaultKind.MEASUREMENT_DROPOUT, 300.0, 450.0, tag="solute_concentration"),
                Fault(FaultKind.PLC_DISCONNECT, 600.0, 700.0)))
    _, _, tags = pilot_line_unit("crystallizer")
    async with bench_for(dict(scenario.plant), scenario.speed, scenario.seed) as bench:
        twin = ContractTwin("pilot_line", "crystallizer", NAMESPACE, tags, bench.plc("crystallizer").port,
                            start_c=40.0, end_c=25.0, batch_s=900.0, time_scale=scenario.speed, period_s=30.0)
        async with twin.running(free_tcp_port()) as endpoint:
            report = await run_scenario(scenario, bench, endpoint, NAMESPACE, "pilot_line",
                                        tmp_path / "report.json", tmp_path / "report.png", progress=True)
            target = await twin.nodes["target_d43"].read_value()  # type: ignore[attr-defined]
            assert (twin.starts, twin.stops, target) == (1, 1, 400.0)
            plc = bench.plc("crystallizer")
            assert plc.communicating and not plc.held_measurements  # faults cleared after the batch
    progress = capsys.readouterr().err
    # the first line comes at the first plant step seen (0.0 % or a step later), the last at the batch's end
    assert re.search(r"\[hil\] nominal_linear_cooling: +0\.\d % of batch", progress) and "100.0 % of batch" in progress
    timeline = report.timeline
    assert timeline[0].batch_time_s < 30.0 and timeline[-1].batch_time_s >= 900.0
    assert timeline[-1].jacket_setpoint_c < 30.0  # the stand-in's ramp reached the plant over Modbus
    assert timeline[-1].truth["d43_um"] > timeline[0].truth["d43_um"]
    assert any("measurement_dropout" in f for s in timeline for f in s.active_faults)
    events = [(e["fault"].split()[0], e["action"]) for e in report.fault_events]
    assert events == [("measurement_dropout", "start"), ("measurement_dropout", "end"),
                      ("plc_disconnect", "start"), ("plc_disconnect", "end")]
    kpis = report.kpis
    assert kpis["final_d43_um"] == timeline[-1].truth["d43_um"]
    assert kpis["setpoints_written"] >= 10 and kpis["solve_time_ms"]["count"] >= 10
    assert kpis["solve_time_ms"]["max"] >= kpis["solve_time_ms"]["median"] > 0
    assert report.final_csd is not None and len(report.final_csd["size_um"]) == 200
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["kpis"]["target_d43_um"] == 400.0 and data["scenario"]["mode"] == "auto"
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


async def test_runner_refuses_a_plant_without_truth() -> None:
    scenario = load_scenario(REPO_ROOT / "examples" / "scenarios" / "nominal_mpc.toml")
    async with bench_for({"plant_model": "standin"}, speed=1.0) as bench:
        with pytest.raises(ScenarioRunError, match='no truth\\(\\) for KPIs; use plant_model = "physics"'):
            await run_scenario(scenario, bench, "opc.tcp://127.0.0.1:1/", NAMESPACE, "pilot_line", None, None)


async def test_runner_names_missing_contract_nodes(tmp_path: Path) -> None:
    scenario = load_scenario(REPO_ROOT / "examples" / "scenarios" / "nominal_mpc.toml")
    _, _, tags = pilot_line_unit("crystallizer")
    async with bench_for({}, speed=1.0) as bench:
        twin = ContractTwin("pilot_line", "crystallizer", NAMESPACE, tags, bench.plc("crystallizer").port,
                            start_c=40.0, end_c=25.0, batch_s=900.0, time_scale=1.0)
        async with twin.running(free_tcp_port()) as endpoint:
            with pytest.raises(ScenarioRunError, match=r"other_line\.crystallizer\.control\.mode \(BadNodeIdUnknown\)"):
                await run_scenario(scenario, bench, endpoint, NAMESPACE, "other_line", None, None, progress=False)
