"""Small datasets of the shipped crystallizer (method of moments) case, shared by the surrogate tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from process_models.case_file import load_case
from process_models.surrogates.dataset import ModelSource, TrainingDataset, generate_dataset
from process_models.surrogates.design import TrainingDesign, design_for_case

CASE = Path(__file__).resolve().parents[3] / "examples" / "cases" / "crystallizer_kdp_moments.toml"


@pytest.fixture(scope="session")
def moments_case():
    return load_case(CASE)


@pytest.fixture(scope="session")
def moments_source() -> ModelSource:
    return ModelSource("crystallizer", tomllib.loads(CASE.read_text())["model"])


@pytest.fixture(scope="session")
def moments_design(moments_case) -> TrainingDesign:
    c = moments_case
    # 30 min on a 2-min grid keeps every run short
    return design_for_case(c.model, c.initial_state, c.inputs, 0.0, 1800.0, 120.0, input_knots=3, seed=3)


@pytest.fixture(scope="session")
def moments_dataset(moments_source, moments_design) -> TrainingDataset:
    return generate_dataset(moments_source, moments_design, 10, workers=1, progress=False)
