"""Training: the pipeline end to end, determinism with a seed, artifacts, refusal of a changed declaration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from linetwin_cli.surrogate import cli_surrogate
from process_models.crystallization.crystallizer import crystallizer_model
from process_models.declaration import compile_model
from process_models.instruments import fbrm_instruments, with_instruments
from process_models.surrogates.artifact import SurrogateArtifactError, SurrogateMismatchError, load_artifact
from process_models.surrogates.pipeline import TrainingSettings, evaluate_artifact, train_surrogate
from process_models.surrogates.state_transition import train_state_transition

pytestmark = pytest.mark.shares_module_fixture  # its module-scoped fixture is built once, on one worker

TINY = TrainingSettings(hidden=(8,), epochs=3, window=4, batch_size=32, seed=0)


@pytest.fixture(scope="module")
def artifact_dir(moments_source, moments_design, moments_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("surrogate")
    train_surrogate(moments_source, moments_design, 10, out, settings=TINY, progress=False, dataset=moments_dataset)
    return out


def test_pipeline_writes_a_complete_artifact(artifact_dir):
    names = {p.name for p in artifact_dir.iterdir()}
    assert {"surrogate.json", "weights.pt", "arrays.npz", "report.png", "dataset"} <= names
    meta = json.loads((artifact_dir / "surrogate.json").read_text())
    assert meta["kind"] == "state_transition"
    assert meta["dataset"]["sample_count"] == 10 and meta["dataset"]["seed"] == 3
    assert set(meta["metrics"]["test_nrmse"]) >= {"d43", "mu3", "temperature"}
    assert all(np.isfinite(v) for v in meta["metrics"]["test_nrmse"].values())
    assert meta["architecture"]["mlp"]["hidden"] == [8]
    assert len(meta["declaration_hash"]) == 64 and meta["version"]
    assert (artifact_dir / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_measures_nrmse_and_speed_against_physics(artifact_dir, capsys):
    artifact, ev = evaluate_artifact(artifact_dir)
    assert ev.runs == len(artifact.metadata["split"]["test"])
    assert ev.physics_wall_s > 0 and ev.surrogate_wall_s > 0
    stored = artifact.metadata["metrics"]["test_nrmse"]
    for name, value in ev.test_nrmse.items():  # physics re-simulated now reproduces the stored test data
        assert value == pytest.approx(stored[name], rel=1e-6, abs=1e-9)
    assert cli_surrogate(["evaluate", str(artifact_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["speedup"] > 0 and "d43" in doc["test_nrmse"]
    assert doc["envelope"]["features"][0] == "solute_concentration"


def test_training_is_deterministic_given_the_seed(moments_dataset):
    a, *_ = train_state_transition(moments_dataset, hidden=(8,), epochs=2, window=3, seed=5, progress=False)
    b, *_ = train_state_transition(moments_dataset, hidden=(8,), epochs=2, window=3, seed=5, progress=False)
    c, *_ = train_state_transition(moments_dataset, hidden=(8,), epochs=2, window=3, seed=6, progress=False)
    for key, value in a.network.state_dict().items():
        assert torch.equal(value, b.network.state_dict()[key])
    assert not all(torch.equal(v, c.network.state_dict()[k]) for k, v in a.network.state_dict().items())


def test_artifact_round_trip_predicts_the_same(artifact_dir, moments_case, moments_dataset):
    artifact = load_artifact(artifact_dir, moments_case.model)
    again = load_artifact(artifact_dir, moments_case.model)
    x = moments_dataset.arrays["states"][:3, :, 0]
    u = moments_dataset.arrays["interval_inputs"][:3]
    p = moments_dataset.arrays["parameters"][:3]
    assert np.array_equal(artifact.surrogate.rollout(x, u, p), again.surrogate.rollout(x, u, p))
    assert artifact.version == json.loads((artifact_dir / "surrogate.json").read_text())["version"]


def test_added_outputs_are_accepted_but_changed_dynamics_are_refused(artifact_dir, moments_source):
    options = dict(moments_source.options)
    base = crystallizer_model(options)
    load_artifact(artifact_dir, compile_model(with_instruments(base, fbrm_instruments())))  # outputs only: same
    changed = replace(base, parameters=tuple(replace(p, value=p.value * 1.1) if p.name == "growth_rate_constant"
                                             else p for p in base.parameters))
    with pytest.raises(SurrogateMismatchError, match="declaration changed"):
        load_artifact(artifact_dir, compile_model(changed))


def test_tampered_weights_are_refused(artifact_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(artifact_dir, copy)
    state = torch.load(copy / "weights.pt", weights_only=True)
    state["0.bias"] = state["0.bias"] + 1.0
    torch.save(state, copy / "weights.pt")
    with pytest.raises(SurrogateArtifactError, match="do not match version"):
        load_artifact(copy)


def test_cli_train_refuses_bad_input(tmp_path, capsys):
    assert cli_surrogate(["train", str(tmp_path / "missing.toml"), "--samples", "8"]) == 2
    assert "missing.toml" in capsys.readouterr().err


def test_cli_trains_over_a_line_units_control_regime(tmp_path, capsys):
    line = Path(__file__).resolve().parents[3] / "examples" / "pilot_line.toml"
    out = tmp_path / "crystallizer"
    assert cli_surrogate(["train", "--config", str(line), "--unit", "crystallizer", "--samples", "6", "--epochs", "1",
                          "--hidden", "4", "--until", "600", "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "surrogate.json").read_text())
    design = meta["dataset"]["design"]
    assert design["inputs"][0]["name"] == "jacket_temperature" and design["inputs"][0]["interpolation"] == "zoh"
    assert [p["name"] for p in design["parameters"]] == ["growth_rate_constant", "secondary_nucleation_rate_constant"]
    assert "written to" in capsys.readouterr().out
    assert cli_surrogate(["train", "--config", str(line), "--unit", "feed_tank", "--samples", "6"]) == 2
    assert "no [control] table" in capsys.readouterr().err
