"""The skid's pooling loop on the HIL bench over real sockets: the physics column runs the method with a feed-titre
mismatch behind a Modbus virtual PLC, the twin mirrors UV, conductivity and run time, pools the product peak
model-based and writes the cut setpoints through the guarded write path; an OPC UA client reads the twin's nodes.

The skid's PLC runs in lockstep (``VirtualPlcBase.lockstep``): the runner advances the plant 5 s, then waits on the
twin's ``run_time_s`` node (a condition with a stall limit, never a sleep) until the twin took that sample, planned
and wrote its cuts — so the run is the same on an idle and on a loaded machine (the wall-paced bench lets the
twin's latency, several wall seconds per estimate on a loaded machine, land cuts late).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import Client, ua

from hil.pooling_runner import run_pooling_scenario
from hil.pooling_scenario import PoolingScenarioError, load_pooling_scenario
from linetwin_cli.bench_launcher import build_bench, config_for_bench, pooling_line_config
from linetwin_cli.main import main
from tests.conftest import REPO_ROOT, free_tcp_port
from tests.security_helpers import add_user, client_as
from twin_server.audit import AuditEntry, AuditOutcome
from twin_server.security.roles import Role
from twin_server.server import TwinServer

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "pooling_feed_titre_model_based.toml"
NAMESPACE = "urn:linetwin:pilot_line"
LOCKSTEP_S = 5.0
"""Plant seconds per lockstep: the twin samples every 5 s of run time."""


@pytest.mark.slow
@pytest.mark.serial  # a wall-paced socket run: not beside another heavy test under xdist
async def test_model_based_pooling_over_sockets_meets_the_purity_spec() -> None:
    scenario = load_pooling_scenario(SCENARIO)
    config = pooling_line_config(scenario)
    bench = build_bench(config, speed=scenario.speed, free_ports=True, seed=scenario.seed,
                        step_s=scenario.plant_step_s)
    bench.plc(scenario.unit).lockstep = True
    await bench.start()
    engineer = add_user("engineer", Role.ENGINEER, "engineer-test-password")
    twin = TwinServer(config_for_bench(config, bench), endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/")
    audited: list[AuditEntry] = []
    try:
        await twin.start()
        twin.audit.sinks.append(audited.append)
        report = await run_pooling_scenario(scenario, bench, twin.endpoint, NAMESPACE, config.name,
                                            lockstep_s=LOCKSTEP_S)
        async with Client(twin.endpoint) as viewer:  # anonymous = viewer: may read, may not change the strategy
            idx = await viewer.get_namespace_index(NAMESPACE)
            strategy = viewer.get_node(ua.NodeId(f"{config.name}.{scenario.unit}.control.strategy", idx))
            with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                await strategy.write_value(ua.DataValue(ua.Variant("threshold", ua.VariantType.String)))
            assert await strategy.read_value() == "model_based"
        async with client_as(twin.endpoint, engineer) as client:  # an engineer may: for the next run, audited
            idx = await client.get_namespace_index(NAMESPACE)
            strategy = client.get_node(ua.NodeId(f"{config.name}.{scenario.unit}.control.strategy", idx))
            await strategy.write_value(ua.DataValue(ua.Variant("threshold", ua.VariantType.String)))
            assert await strategy.read_value() == "threshold"
        events = list(twin.pooling_loops[scenario.unit].events)
    finally:
        await twin.stop()
        await bench.stop()
    kpis, nodes = report["kpis"], report["twin"]
    why = f"{report}\nevents: {events}"
    # the valve was commanded through the PLC: its cut registers hold what the twin planned, and the plant's valve
    # opened and closed there (one 1-s PLC step of resolution)
    assert nodes["setpoints_written"] >= 2 and nodes["writes_failed"] == 0, why
    assert kpis["plc_cut_start_s"] == pytest.approx(nodes["planned_cut_start_s"], abs=1e-3), why
    assert kpis["plc_cut_stop_s"] == pytest.approx(nodes["planned_cut_stop_s"], abs=1e-3), why
    assert kpis["valve_opened_s"] == pytest.approx(kpis["plc_cut_start_s"], abs=1.0), why
    assert kpis["valve_closed_s"] == pytest.approx(kpis["plc_cut_stop_s"], abs=1.0), why
    assert 450.0 <= kpis["valve_opened_s"] < kpis["valve_closed_s"] <= 1000.0, why
    # the model decided (no fallback) and the true pool met the spec
    assert nodes["strategy_in_use"] == "model" and nodes["replans"] >= 3, why
    assert kpis["spec_met"] and kpis["pool_purity"] >= 0.95, why
    assert kpis["pool_yield"] > 0.7, why  # the oracle's cut reaches 84 % (hil/pooling_stepped.py)
    # the nodes show the planned cuts and the predictions with their uncertainty
    assert nodes["predicted_pool_purity"] >= 0.95 and 0.0 <= nodes["predicted_pool_purity_std"] < 0.02, why
    assert 0.5 < nodes["predicted_pool_yield"] <= 1.0 and nodes["predicted_pool_yield_std"] >= 0.0, why
    assert nodes["planned_cut_start_s"] < nodes["predicted_peak_time_s"] < nodes["planned_cut_stop_s"], why
    assert nodes["predicted_peak_concentration"] > 0.0, why
    # the skid's PLC ran the scenario's steps: at run time 1005 s it is in step 3 of 5, which the twin names
    assert bench.plc(scenario.unit).read_tag("method_step") == 3.0, why
    assert nodes["method_step_name"] == "elute", why
    changes = [(e.user, e.outcome, e.new_value) for e in audited if e.action == "strategy_change"]
    assert changes == [("anonymous", AuditOutcome.REFUSED, "threshold"),
                       ("engineer", AuditOutcome.ACCEPTED, "threshold")]


def test_a_pooling_scenario_names_every_problem(tmp_path: Path) -> None:
    text = SCENARIO.read_text().replace('strategy = "model_based"', 'strategy = "best"').replace(
        "purity_min = 0.95", "purity_min = 1.5").replace("feed_factors = { cytochrome = 0.7 }",
                                                          "feed_factors = { cytochrome = -1 }")
    text = text.replace('line = "../pilot_line.toml"', f'line = "{REPO_ROOT / "examples" / "pilot_line.toml"}"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(PoolingScenarioError) as info:
        load_pooling_scenario(bad)
    errors = "\n".join(info.value.errors)
    assert "scenario.strategy" in errors and "best" in errors
    assert "purity_min" in errors
    assert "plant" in errors and "feed_factors" in errors


def test_hil_run_names_the_problems_of_a_pooling_scenario(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.read_text().replace("window_end_s = 1000.0", "window_end_s = -5.0").replace(
        'line = "../pilot_line.toml"', f'line = "{REPO_ROOT / "examples" / "pilot_line.toml"}"'))
    assert main(["hil", "run", str(bad), "--stepped", "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: control: got" in err and "window [450.0, -5.0] s" in err
