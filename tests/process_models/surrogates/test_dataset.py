"""Training data: seeded space-filling designs, parallel generation, versioned dataset directories."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.surrogates.dataset import DatasetError, concatenate_datasets, generate_dataset, load_dataset
from process_models.surrogates.design import DesignError, InputRange, TrainingDesign


def test_design_points_are_seeded_and_inside_ranges(moments_design, moments_case):
    a, b = moments_design.sample(16), moments_design.sample(16)
    assert np.array_equal(a, b)
    other = TrainingDesign.from_json({**moments_design.to_json(), "seed": 4}).sample(16)
    assert not np.array_equal(a, other)
    jacket = next(r for r in moments_design.inputs if r.name == "jacket_temperature")
    for point in a:
        state, inputs, _ = moments_design.run_from_point(point)
        values = np.asarray(inputs["jacket_temperature"].values)
        assert np.all((values >= jacket.low) & (values <= jacket.high))
        base = moments_case.initial_state["temperature"]
        assert abs(state["temperature"] / base - 1) <= 0.01 + 1e-12


def test_rate_limit_bounds_every_programme_change(moments_design):
    limited = TrainingDesign.from_json({**moments_design.to_json(), "inputs": [
        {**InputRange("jacket_temperature", 290.0, 310.0, knots=4, max_rate_per_s=1e-3).__dict__}]})
    for point in limited.sample(8):
        prog = limited.run_from_point(point)[1]["jacket_temperature"]
        rates = np.abs(np.diff(prog.values)) / np.diff(prog.times_s)
        assert np.all(rates <= 1e-3 + 1e-12)


def test_design_naming_an_unknown_input_is_refused(moments_design, moments_case):
    bad = TrainingDesign.from_json({**moments_design.to_json(), "inputs": [
        {**InputRange("coolant_flow", 0.0, 1.0).__dict__}]})
    with pytest.raises(DesignError, match="coolant_flow"):
        bad.validate(moments_case.model)


def test_parallel_generation_equals_serial_and_round_trips(moments_source, moments_design, moments_dataset,
                                                           tmp_path):
    parallel = generate_dataset(moments_source, moments_design, 10, workers=2, progress=False)
    assert parallel.hash == moments_dataset.hash
    meta = moments_dataset.metadata
    assert meta["sample_count"] == 10 and meta["seed"] == 3 and meta["model_kind"] == "crystallizer"
    assert len(meta["declaration_hash"]) == 64
    assert moments_dataset.arrays["states"].shape == (10, 7, 16)
    loaded = load_dataset(moments_dataset.save(tmp_path / "ds"))
    assert loaded.hash == moments_dataset.hash
    assert loaded.design == moments_design


def test_slices_of_a_design_join_to_the_whole(moments_source, moments_design, moments_dataset):
    parts = [generate_dataset(moments_source, moments_design, 10, first=f, count=5, workers=1, progress=False)
             for f in (5, 0)]
    assert concatenate_datasets(parts).hash == moments_dataset.hash


def test_a_changed_dataset_file_is_refused(moments_dataset, tmp_path):
    path = moments_dataset.save(tmp_path / "ds")
    arrays = dict(np.load(path / "arrays.npz"))
    arrays["states"] = arrays["states"] * 1.01
    np.savez_compressed(path / "arrays.npz", **arrays)
    with pytest.raises(DatasetError, match="do not match the hash"):
        load_dataset(path)
