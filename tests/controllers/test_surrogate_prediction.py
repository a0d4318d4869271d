"""NMPC with a surrogate prediction model falls back to the physics model when the surrogate is not trusted."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from controllers.crystallization.objective import CrystallizationObjective, crystallizer_nmpc_config
from controllers.nmpc import HorizonMode
from controllers.surrogate_prediction import SWITCHES_KEPT, SurrogateFallbackNmpc, TrustSettings, prediction_switches
from process_models.case_file import load_case
from process_models.surrogates.dataset import ModelSource, generate_dataset
from process_models.surrogates.design import design_for_case
from process_models.surrogates.pipeline import TrainingSettings, train_surrogate

pytestmark = pytest.mark.shares_module_fixture  # its module-scoped fixture is built once, on one worker

CASE = Path(__file__).resolve().parents[2] / "examples" / "cases" / "crystallizer_kdp_moments.toml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    case = load_case(CASE)
    source = ModelSource("crystallizer", tomllib.loads(CASE.read_text())["model"])
    design = design_for_case(case.model, case.initial_state, case.inputs, 0.0, 1200.0, 120.0, input_knots=3,
                             seed=1)
    dataset = generate_dataset(source, design, 10, workers=1, progress=False)
    artifact = train_surrogate(source, design, 10, tmp_path_factory.mktemp("sur"), dataset=dataset,
                               settings=TrainingSettings(hidden=(8,), epochs=3, window=4), progress=False)
    objective = CrystallizationObjective(target_d43_m=300e-6, seed_count_per_kg=case.initial_state["mu0"])
    config = crystallizer_nmpc_config(objective, 120.0, 3, 295.15, 306.15, 1.0, max_cpu_time_s=5.0,
                                      horizon_mode=HorizonMode.RECEDING)
    return case, artifact, config


def _controller(setup, threshold: float) -> SurrogateFallbackNmpc:
    case, artifact, config = setup
    return SurrogateFallbackNmpc(case.model, config, artifact, TrustSettings(threshold, recover_steps=2))


def _step(nmpc: SurrogateFallbackNmpc, state: dict, t: float = 0.0):
    return nmpc.step(t, state, {"jacket_temperature": 301.0}, references={"d43": 300e-6})


def test_inside_the_envelope_the_surrogate_predicts(setup):
    case = setup[0]
    nmpc = _controller(setup, threshold=math.inf)
    result = _step(nmpc, dict(case.initial_state))
    assert nmpc.last_in_envelope and result.status.startswith("surrogate")
    assert nmpc.active == "surrogate" and list(nmpc.events) == []


def test_state_leaving_the_envelope_switches_to_physics_and_back(setup):
    case = setup[0]
    nmpc = _controller(setup, threshold=math.inf)
    hot = {**case.initial_state, "temperature": case.initial_state["temperature"] + 25.0}
    result = _step(nmpc, hot)
    assert result.status.startswith("physics") and result.success
    assert nmpc.active == "physics" and not nmpc.last_in_envelope
    assert "envelope" in nmpc.events[-1].reason and nmpc.events[-1].used == "physics"
    _step(nmpc, dict(case.initial_state), 120.0)
    assert nmpc.active == "physics"  # one trusted step is not enough
    _step(nmpc, dict(case.initial_state), 240.0)
    assert nmpc.active == "surrogate" and "trust returned" in nmpc.events[-1].reason
    assert _step(nmpc, dict(case.initial_state), 360.0).status.startswith("surrogate")


def test_disagreement_beyond_the_threshold_uses_physics(setup):
    case = setup[0]
    nmpc = _controller(setup, threshold=0.0)  # an untrained net never agrees exactly
    result = _step(nmpc, dict(case.initial_state))
    assert result.status.startswith("physics") and nmpc.last_disagreement > 0
    assert "disagree" in nmpc.events[-1].reason


def test_switch_record_stays_at_its_bound_and_the_newest_are_found(setup):
    """Issue 21: a twin switching for months keeps the newest SWITCHES_KEPT switches, and the control loop, counting
    every switch, still gets exactly the new ones."""
    nmpc = _controller(setup, threshold=math.inf)
    n = SWITCHES_KEPT + 500
    for k in range(n):
        nmpc._switch(float(k), "physics" if k % 2 else "surrogate", f"switch {k}")
    assert len(nmpc.events) == SWITCHES_KEPT and nmpc.switch_count == n
    assert nmpc.events[0].reason == "switch 500" and nmpc.events[-1].reason == f"switch {n - 1}"
    new, seen = prediction_switches(nmpc, n - 2)
    assert [e.reason for e in new] == [f"switch {n - 2}", f"switch {n - 1}"] and seen == n
    assert prediction_switches(nmpc, n) == ([], n)
    old, seen = prediction_switches(nmpc, 0)  # the first 500 left the record: the kept ones, and all counted
    assert len(old) == SWITCHES_KEPT and seen == n
    assert prediction_switches(object(), 3) == ([], 3)  # a plain NMPC has none
