"""The oracle strategy (hil/oracle.py): the MPC's NMPC built on the plant's true parameters and seed, each solve
from the true state. On a mismatched plant it reaches the target at least as closely as the MPC."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hil.oracle import oracle_knowledge
from hil.plant import make_plant
from hil.scenario import load_scenario
from hil.scenario_runner import ScenarioRunError
from hil.stepped_batch import run_stepped_batch
from tests.conftest import REPO_ROOT

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "mismatch_plus20_mpc.toml"


def test_the_oracle_knows_the_true_parameters_seed_and_state() -> None:
    plant = make_plant("crystallizer", {"plant_model": "physics", "growth_rate_factor": 1.3,
                                        "solubility_offset_kg_per_kg": 0.001, "seed_mean_size_um": 170.0}, seed=0)
    knowledge = oracle_knowledge(plant, "crystallizer", {"parameters": {"crystal_density": 2338.0}},
                                 {"target_d43_um": 400.0})
    params = knowledge.model_options["parameters"]
    assert params["crystal_density"] == 2338.0
    assert params["growth_rate_constant"] == pytest.approx(1.3 * plant.true_parameters["growth_rate_constant"] / 1.3)
    assert params["solubility_coefficient_0"] == pytest.approx(0.2087 + 0.001)
    assert knowledge.control_options["seed_mean_size_um"] == 170.0
    assert knowledge.control_options["estimate_parameters"] == [] and knowledge.control_options["target_d43_um"] == 400
    state = knowledge.true_state()
    assert set(state) == {"solute_concentration", "temperature", "mu0", "mu1", "mu2", "mu3", "mu4"}
    assert state["temperature"] == pytest.approx(313.15, abs=0.01)


def test_a_plant_without_truth_offers_no_oracle() -> None:
    with pytest.raises(ScenarioRunError, match="offers no oracle"):
        oracle_knowledge(object(), "crystallizer", {}, {})


def test_the_oracle_reaches_the_target_on_a_mismatched_plant_at_least_as_closely_as_the_mpc() -> None:
    scenario = replace(load_scenario(SCENARIO), batch_duration_s=600.0, target_d43_um=165.0)
    oracle = run_stepped_batch(scenario, strategy="oracle")
    mpc = run_stepped_batch(scenario, strategy="mpc")
    assert oracle.scenario["strategy"] == "oracle" and oracle.kpis["solves"] > 0
    assert oracle.kpis["failed_solves"] == 0
    assert abs(oracle.kpis["d43_error_percent"]) <= abs(mpc.kpis["d43_error_percent"]) + 0.1
    assert abs(oracle.kpis["d43_error_percent"]) < 1.0


def test_the_socket_runner_refuses_the_oracle_before_touching_the_bench() -> None:
    import asyncio

    from hil.scenario_runner import run_scenario

    scenario = load_scenario(SCENARIO).with_strategy("oracle")
    with pytest.raises(ScenarioRunError, match="stepped loop"):
        asyncio.run(run_scenario(scenario, None, "opc.tcp://127.0.0.1:1", "urn:none", "line",  # type: ignore[arg-type]
                                 None, None))
