"""The unscented forecast on a first-order tank whose answer is known in closed form: exact mean and spread for
uncertainty in the state (the model is linear in it), the spread a time-constant uncertainty adds, bounds kept, and
bad input named; the band calibration learnt from past batches' normalised errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from process_models.forecast import Z_95, BandCalibration, ForecastError, sigma_points, unscented_forecast
from tests.process_models.test_estimator import _tank

JACKET_K = 300.0
TAU_S = 120.0


def test_sigma_points_reproduce_mean_and_covariance():
    mean = np.array([350.0, 1e12, 0.2])
    cov = np.array([[4.0, 1e11, 0.0], [1e11, 1e22, 0.0], [0.0, 0.0, 1e-6]])
    points, w_mean, w_cov = sigma_points(mean, cov)
    assert points.shape == (7, 3) and w_mean.sum() == pytest.approx(1.0)
    avg = w_mean @ points
    dev = points - avg
    assert avg == pytest.approx(mean)
    assert (dev.T * w_cov) @ dev == pytest.approx(cov, rel=1e-9)


def test_state_uncertainty_of_a_linear_tank_propagates_exactly():
    model = _tank()
    sd0 = 2.0
    times = np.linspace(0.0, 600.0, 11)
    band = unscented_forecast(model, np.array([340.0]), np.array([[sd0**2]]), (), times,
                              {"jacket_temperature": JACKET_K}, ["temperature_celsius"])
    decay = np.exp(-times / TAU_S)
    expected = JACKET_K + (340.0 - JACKET_K) * decay - 273.15
    assert band.mean["temperature_celsius"] == pytest.approx(expected, rel=1e-6)
    assert band.std["temperature_celsius"] == pytest.approx(sd0 * decay, rel=1e-5, abs=1e-9)
    assert band.high("temperature_celsius")[0] - band.low("temperature_celsius")[0] == \
        pytest.approx(2 * Z_95 * sd0, rel=1e-6)
    assert band.sigma_points == 3


def test_an_uncertain_time_constant_widens_the_band_where_it_matters():
    model = _tank()
    times = np.array([0.0, 60.0, 120.0, 600.0, 3000.0])
    cov = np.diag([1e-12, (0.1 * TAU_S) ** 2])
    band = unscented_forecast(model, np.array([340.0, TAU_S]), cov, ("time_constant",), times,
                              {"jacket_temperature": JACKET_K}, ["temperature_celsius"])
    std = band.std["temperature_celsius"]
    # d T / d tau = -(T0 - Tj) t / tau^2 e^{-t/tau}: largest at t = tau, vanishing at 0 and at steady state
    linear = 40.0 * times / TAU_S**2 * np.exp(-times / TAU_S) * 0.1 * TAU_S
    assert std[2] == pytest.approx(linear[2], rel=0.05)
    assert std[0] < 1e-5 and std[-1] < 0.01 * std[2]


def test_sigma_points_stay_inside_the_parameter_bounds_and_bad_input_is_named():
    model = _tank()
    wide = np.diag([1e-12, 1e8])  # a 1e4 s sigma of the time constant would put sigma points below 1 s
    band = unscented_forecast(model, np.array([340.0, TAU_S]), wide, ("time_constant",), [0.0, 60.0],
                              {"jacket_temperature": JACKET_K}, ["temperature_celsius"],
                              parameter_bounds={"time_constant": (60.0, 240.0)})
    fastest = JACKET_K + 40.0 * math.exp(-1.0) - 273.15
    assert band.mean["temperature_celsius"][-1] >= fastest - 1e-6
    with pytest.raises(ForecastError, match="outputs \\['d43'\\] unknown"):
        unscented_forecast(model, np.array([340.0]), np.eye(1), (), [0.0, 1.0], {"jacket_temperature": 300.0},
                           ["d43"])
    with pytest.raises(ForecastError, match="expected 1 states \\+ 1 parameters"):
        unscented_forecast(model, np.array([340.0]), np.eye(1), ("time_constant",), [0.0, 1.0],
                           {"jacket_temperature": 300.0}, ["temperature_celsius"])


def test_a_band_calibration_is_the_rms_of_past_normalised_errors_with_students_t():
    assert BandCalibration().quantile == Z_95 and BandCalibration().is_identity
    learnt = BandCalibration.learn([0.3, -0.4, 0.0, 0.5])
    assert learnt.scale == pytest.approx(math.sqrt((0.09 + 0.16 + 0.25) / 4)) and learnt.batches == 4
    assert learnt.quantile == pytest.approx(2.776445, abs=1e-6)   # t(0.975, 4): a scale from 4 batches is uncertain
    assert BandCalibration(0.5, 1000).quantile == pytest.approx(Z_95, abs=0.005)
    for bad in ([], [0.0, 0.0], [math.nan]):
        with pytest.raises(ForecastError, match="learn: need finite normalised errors"):
            BandCalibration.learn(bad)
    with pytest.raises(ForecastError, match="scale must be a finite number > 0"):
        BandCalibration(0.0, 3)
