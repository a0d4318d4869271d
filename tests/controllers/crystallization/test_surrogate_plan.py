"""The crystallizer control plan with ``prediction_model = "surrogate"``: options checked, the NMPC predicts with
the surrogate artifact and falls back to physics."""

from __future__ import annotations

import pytest

from controllers.crystallization.control_options import REQUIRED_TAGS, parse_options
from controllers.crystallization.control_plan import build_crystallizer_plan
from controllers.surrogate_prediction import SurrogateFallbackNmpc
from process_models.surrogates.dataset import ModelSource, generate_dataset
from process_models.surrogates.design import InputRange, StateRange, TrainingDesign
from process_models.surrogates.pipeline import TrainingSettings, train_surrogate

pytestmark = pytest.mark.shares_module_fixture  # its module-scoped fixture is built once, on one worker

TAGS = set(REQUIRED_TAGS)


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    source = ModelSource("crystallizer", {"resolution": "moments"})
    state = {"solute_concentration": 0.33, "mu0": 1e6, "mu1": 150.0, "mu2": 0.023, "mu3": 3.4e-6, "mu4": 5e-10,
             "temperature": 313.15}
    design = TrainingDesign(base_state=state, base_inputs={}, start_s=0.0, until_s=1200.0, interval_s=120.0,
                            states=(StateRange("temperature", 0.99, 1.01),),
                            inputs=(InputRange("jacket_temperature", 300.0, 313.15, knots=3),))
    dataset = generate_dataset(source, design, 8, workers=1, progress=False)
    out = tmp_path_factory.mktemp("plan_surrogate")
    train_surrogate(source, design, 8, out, dataset=dataset, progress=False,
                    settings=TrainingSettings(hidden=(8,), epochs=2, window=3))
    return out


def test_surrogate_prediction_needs_an_artifact_path(tmp_path):
    _, issues = parse_options({"prediction_model": "surrogate"}, "units.c.control", TAGS)
    assert any(k == "units.c.control.surrogate_path" for k, _, _ in issues)
    _, issues = parse_options({"prediction_model": "surrogate", "surrogate_path": str(tmp_path)}, "units.c.control",
                              TAGS)
    assert any("surrogate.json" in expected for _, _, expected in issues)
    _, issues = parse_options({"prediction_model": "neural"}, "units.c.control", TAGS)
    assert issues and issues[0][0] == "units.c.control.prediction_model"


def test_plan_with_a_surrogate_uses_the_fallback_nmpc(artifact_dir):
    plan = build_crystallizer_plan({}, {"prediction_model": "surrogate", "surrogate_path": str(artifact_dir),
                                        "disagreement_threshold": 0.05}, "units.c.control", TAGS)
    assert isinstance(plan.nmpc, SurrogateFallbackNmpc)
    assert plan.nmpc.trust.disagreement_threshold == 0.05 and plan.nmpc.active == "surrogate"


def test_a_surrogate_of_another_model_is_refused(artifact_dir):
    with pytest.raises(ValueError, match="declaration changed"):
        build_crystallizer_plan({"parameters": {"growth_rate_constant": 1e-4}},
                                {"prediction_model": "surrogate", "surrogate_path": str(artifact_dir)},
                                "units.c.control", TAGS)
