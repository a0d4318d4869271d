"""The estimate of a run's uncertain parameters from UV and conductivity, its trust test, and the pooling loop's
fallback to fixed UV thresholds when the estimate cannot be trusted. The data come from the column model itself
(the coarse DG column), so the true parameters are known."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.chromatography.elution_estimator import (
    ElutionEstimator,
    EstimationError,
    EstimationSpec,
    true_outlet,
)
from controllers.chromatography.pooling_decision import PoolingError, PoolingSpec, threshold_cuts
from controllers.chromatography.pooling_loop import FALLBACK, PoolingLoop, PoolingLoopOptions
from process_models.chromatography.column import ChromatographyColumn, column_from_options
from process_models.chromatography.elution_method import ElutionMethod, MethodDeviation

TIMES = np.arange(0.0, 1000.0 + 1e-9, 2.0)
METHOD = ElutionMethod(feed_mol_per_m3={"cytochrome": 1.0, "ribonuclease": 0.3, "lysozyme": 0.3})
SPEC = PoolingSpec("cytochrome", ("ribonuclease", "lysozyme"), 0.95, 450.0, 1000.0)


@pytest.fixture(scope="module")
def column() -> ChromatographyColumn:
    return column_from_options({"case": "sma_load_wash_elute", "method": "dg", "polynomial_degree": 3,
                                "elements": 2, "particle_cells": 2})


def samples(column: ChromatographyColumn, deviation: MethodDeviation, seed: int) -> tuple[np.ndarray, np.ndarray]:
    truth = true_outlet(column, METHOD, TIMES, deviation)
    rng = np.random.default_rng(seed)
    return (truth["uv_mau"] + rng.normal(0, 0.5, TIMES.size),
            truth["conductivity_ms_per_cm"] + rng.normal(0, 0.05, TIMES.size))


def test_the_fit_finds_the_true_titre_gradient_and_isotherm(column: ChromatographyColumn) -> None:
    deviation = MethodDeviation(feed_factors={"cytochrome": 0.8}, adsorption_factors={"cytochrome": 0.9},
                                gradient_slope_factor=0.92)
    uv, cond = samples(column, deviation, seed=1)
    estimator = ElutionEstimator(column, METHOD, TIMES, EstimationSpec(ensemble_size=50, iterations=6))
    for k in np.flatnonzero(TIMES <= 700.0):
        estimator.add_sample(float(TIMES[k]), float(uv[k]), float(cond[k]))
    estimate = estimator.estimate(700.0)
    assert estimate.trusted, estimate.reason
    assert estimate.reduced_chi2 < 2.0
    theta = dict(zip(estimate.parameter_names, estimate.theta, strict=True))
    std = estimate.parameter_std()
    for name, true in (("ln_feed_titre_factor_cytochrome", np.log(0.8)),
                       ("ln_adsorption_factor_cytochrome", np.log(0.9)), ("gradient_slope_deviation", -0.08)):
        assert abs(theta[name] - true) < max(4 * std[name], 0.01), name
        assert std[name] < 0.3 * EstimationSpec().prior_std()[estimate.parameter_names.index(name)]
    # the ensemble is centred on the truth and spreads by the remaining uncertainty
    truth = true_outlet(column, METHOD, TIMES, deviation)["cytochrome"]
    members = estimate.ensemble["cytochrome"]
    assert members.shape == (50, TIMES.size)
    assert np.linalg.norm(members.mean(axis=0) - truth) < 0.05 * np.linalg.norm(truth)
    # the linearised update takes the later samples without a model run and stays on the truth, more certain
    runs = estimator.model_runs
    for k in np.flatnonzero((TIMES > 700.0) & (TIMES <= 780.0)):
        estimator.add_sample(float(TIMES[k]), float(uv[k]), float(cond[k]))
    updated = estimator.update(780.0)
    assert estimator.model_runs == runs and updated.trusted and updated.samples == estimate.samples + 40
    theta, new_std = dict(zip(updated.parameter_names, updated.theta, strict=True)), updated.parameter_std()
    for name, true in (("ln_feed_titre_factor_cytochrome", np.log(0.8)),
                       ("ln_adsorption_factor_cytochrome", np.log(0.9)), ("gradient_slope_deviation", -0.08)):
        assert abs(theta[name] - true) < max(4 * new_std[name], 0.01), name
        assert new_std[name] <= std[name] * (1 + 1e-9), name
    assert np.linalg.norm(updated.ensemble["cytochrome"].mean(axis=0) - truth) < 0.05 * np.linalg.norm(truth)


def test_a_signal_the_model_cannot_explain_is_not_trusted_and_the_loop_falls_back(
        column: ChromatographyColumn) -> None:
    uv, cond = samples(column, MethodDeviation(), seed=2)
    uv = uv + np.where((TIMES > 300.0) & (TIMES < 420.0), 60.0, 0.0)  # a foreign peak: an air bubble, a sensor fault
    loop = PoolingLoop(SPEC, ElutionEstimator(column, METHOD, TIMES, EstimationSpec(ensemble_size=50, iterations=2)),
                       PoolingLoopOptions(start_level_mau=80.0, stop_level_mau=35.0, replan_interval_s=250.0))
    sources = [loop.step(float(t), float(u), float(c)).source for t, u, c in zip(TIMES, uv, cond, strict=True)]
    assert loop.plans and all(plan is None for _, plan, _ in loop.plans)
    assert all("reduced chi-square" in reason for _, _, reason in loop.plans)
    assert set(sources[np.searchsorted(TIMES, 450.0):]) == {FALLBACK}
    assert loop.cuts() == threshold_cuts(TIMES, uv, SPEC, 80.0, 35.0)


def test_an_estimate_far_outside_its_prior_is_not_trusted(column: ChromatographyColumn) -> None:
    uv, cond = samples(column, MethodDeviation(feed_factors={"cytochrome": 0.5}), seed=3)
    # a prior that holds the titre within ~10 %: the data say -50 %, far beyond 4 prior standard deviations
    estimator = ElutionEstimator(column, METHOD, TIMES, EstimationSpec(titre_prior_std=0.1, ensemble_size=20))
    for k in np.flatnonzero(TIMES <= 700.0):
        estimator.add_sample(float(TIMES[k]), float(uv[k]), float(cond[k]))
    estimate = estimator.estimate(700.0)
    assert not estimate.trusted
    assert "'ln_feed_titre_factor_cytochrome'" in estimate.reason and "beyond 4 prior" in estimate.reason


def test_bad_options_and_samples_are_refused(column: ChromatographyColumn) -> None:
    with pytest.raises(EstimationError, match="'uv_noise_mau' = 0"):
        EstimationSpec(uv_noise_mau=0)
    with pytest.raises(EstimationError, match="'ensemble_size' = 0"):
        EstimationSpec(ensemble_size=0)
    with pytest.raises(PoolingError, match="purity_margin = 0.6"):
        PoolingLoopOptions(start_level_mau=80.0, stop_level_mau=35.0, purity_margin=0.6)
    with pytest.raises(PoolingError, match="replan_interval_s = 0"):
        PoolingLoopOptions(start_level_mau=80.0, stop_level_mau=35.0, replan_interval_s=0)
    with pytest.raises(PoolingError, match=r"update_interval_s = 40.0, expected None or 0 < value <= replan"):
        PoolingLoopOptions(start_level_mau=80.0, stop_level_mau=35.0, replan_interval_s=30.0, update_interval_s=40.0)
    with pytest.raises(EstimationError, match=r"isotherm_components \['insulin'\]"):
        ElutionEstimator(column, METHOD, TIMES, EstimationSpec(isotherm_components=("insulin",)))
    estimator = ElutionEstimator(column, METHOD, TIMES)
    with pytest.raises(EstimationError, match="no samples yet"):
        estimator.estimate(0.0)
    estimator.add_sample(10.0, 0.0, 6.3)
    with pytest.raises(EstimationError, match="not after the last"):
        estimator.add_sample(10.0, 0.0, 6.3)
    with pytest.raises(EstimationError, match="outside the model grid"):
        estimator.add_sample(2000.0, 0.0, 6.3)
