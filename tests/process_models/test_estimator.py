"""Extended Kalman filter on a small declared model: convergence, parameter augmentation, dropout, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.declaration import (
    Equations,
    Input,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
    compile_model,
)
from process_models.estimator import EstimatorError, ExtendedKalmanFilter
from process_models.simulator import simulate

SAMPLE_S = 10.0


def _tank():
    """First-order thermal tank dT/dt = (T_j - T)/tau (Newton cooling; illustrative time constant)."""

    def equations(s: Symbols) -> Equations:
        t = s.x["temperature"]
        return Equations(derivatives={"temperature": (s.u["jacket_temperature"] - t) / s.p["time_constant"]},
                         outputs={"temperature_celsius": t - 273.15})

    return compile_model(ModelDeclaration(
        name="tank", description="first-order thermal tank",
        states=(Variable("temperature", "K", "liquid temperature", lower=200.0, upper=500.0),),
        inputs=(Input("jacket_temperature", "K", "jacket temperature", lower=250.0, upper=420.0),),
        parameters=(Parameter("time_constant", "s", 120.0, "thermal time constant", lower=1.0, upper=1e4,
                              source="illustrative"),),
        outputs=(Variable("temperature_celsius", "degC", "liquid temperature"),),
        equations=equations))


def _jacket_program(k: int) -> float:
    """Square wave 300 K / 340 K with a 200 s period: keeps the time constant observable."""
    return 340.0 if (k // 10) % 2 == 0 else 300.0


def _run(model, ekf, n_steps, true_tau, rng, noise_sd=0.1, drop=lambda k: False):
    x = {"temperature": 293.15}
    estimates = []
    truth = []
    for k in range(n_steps):
        u = _jacket_program(k)
        sim = simulate(model, x, [k * SAMPLE_S, (k + 1) * SAMPLE_S], {"jacket_temperature": u},
                       parameters={"time_constant": true_tau})
        x = {"temperature": float(sim.states[0, -1])}
        y = x["temperature"] - 273.15 + rng.normal(0.0, noise_sd)
        estimates.append(ekf.step({"jacket_temperature": u}, {"temperature_celsius": None if drop(k) else y}))
        truth.append(x["temperature"])
    return estimates, truth


def test_converges_from_wrong_state_and_parameter_with_true_values_inside_3_sigma():
    model = _tank()
    rng = np.random.default_rng(7)
    ekf = ExtendedKalmanFilter(model, ["temperature_celsius"], SAMPLE_S,
                               process_noise={"temperature": 0.01, "time_constant": 0.05},
                               measurement_noise={"temperature_celsius": 0.1},
                               estimate_parameters=["time_constant"], parameters={"time_constant": 60.0})
    first = ekf.initialize({"temperature": 310.0}, {"temperature": 10.0, "time_constant": 60.0})
    assert first.parameters == {"time_constant": 60.0}
    estimates, truth = _run(model, ekf, 120, 150.0, rng)
    final = estimates[-1]
    assert final.time_s == pytest.approx(120 * SAMPLE_S)
    assert abs(final.states["temperature"] - truth[-1]) < 0.3
    assert abs(final.states["temperature"] - truth[-1]) < 3 * final.std["temperature"]
    assert abs(final.parameters["time_constant"] - 150.0) < 0.1 * 150.0
    assert abs(final.parameters["time_constant"] - 150.0) < 3 * final.parameter_std["time_constant"]
    assert final.parameter_std["time_constant"] < 0.2 * 60.0  # uncertainty shrank from its initial 60 s
    tau_errors = [abs(e.parameters["time_constant"] - 150.0) for e in estimates]
    assert np.mean(tau_errors[-20:]) < 0.1 * abs(first.parameters["time_constant"] - 150.0)


def test_dropout_is_predict_only_and_grows_uncertainty():
    model = _tank()
    rng = np.random.default_rng(3)
    ekf = ExtendedKalmanFilter(model, ["temperature_celsius"], SAMPLE_S, process_noise={"temperature": 0.05},
                               measurement_noise={"temperature_celsius": 0.1})
    ekf.initialize({"temperature": 293.15}, {"temperature": 1.0})
    estimates, truth = _run(model, ekf, 30, 120.0, rng, drop=lambda k: 20 <= k < 25)
    for k in range(20, 25):
        assert estimates[k].predict_only and estimates[k].innovation == {}
        assert estimates[k].std["temperature"] > estimates[k - 1].std["temperature"]
        # the model prediction alone still tracks the true (same-parameter) tank
        assert abs(estimates[k].states["temperature"] - truth[k]) < 1.0
    assert not estimates[25].predict_only
    assert estimates[25].std["temperature"] < estimates[24].std["temperature"]
    # NaN (a Bad-quality sample) is treated like a missing one
    nan_step = ekf.step({"jacket_temperature": 300.0}, {"temperature_celsius": float("nan")})
    assert nan_step.predict_only


def test_bad_configuration_and_calls_name_the_key():
    model = _tank()
    with pytest.raises(EstimatorError, match="level"):
        ExtendedKalmanFilter(model, ["level"], SAMPLE_S, {}, {"level": 1.0})
    with pytest.raises(EstimatorError, match="temperature_celsius"):
        ExtendedKalmanFilter(model, ["temperature_celsius"], SAMPLE_S, {}, {})
    with pytest.raises(EstimatorError, match="heat_capacity"):
        ExtendedKalmanFilter(model, ["temperature_celsius"], SAMPLE_S, {}, {"temperature_celsius": 0.1},
                             estimate_parameters=["heat_capacity"])
    ekf = ExtendedKalmanFilter(model, ["temperature_celsius"], SAMPLE_S, {}, {"temperature_celsius": 0.1},
                               estimate_parameters=["time_constant"])
    with pytest.raises(EstimatorError, match="initialize"):
        ekf.step({"jacket_temperature": 300.0}, {})
    with pytest.raises(EstimatorError, match="time_constant"):
        ekf.initialize({"temperature": 300.0}, {"temperature": 1.0})
    ekf.initialize({"temperature": 300.0}, {"temperature": 1.0, "time_constant": 10.0})
    with pytest.raises(EstimatorError, match="pressure"):
        ekf.step({"jacket_temperature": 300.0}, {"pressure": 1.0})
