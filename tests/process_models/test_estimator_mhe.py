"""Moving-horizon estimator on a small declared model: convergence from a wrong guess, dropout, failure."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.declaration import Equations, Input, ModelDeclaration, Parameter, Symbols, Variable, compile_model
from process_models.estimator import EstimatorError
from process_models.moving_horizon import MovingHorizonEstimator
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


def _jacket(k: int) -> float:
    return 340.0 if (k // 10) % 2 == 0 else 300.0


def test_mhe_estimates_state_and_parameter_from_wrong_guess_and_survives_dropout():
    model = _tank()
    rng = np.random.default_rng(5)
    mhe = MovingHorizonEstimator(model, ["temperature_celsius"], SAMPLE_S, horizon=10,
                                 process_noise={"temperature": 0.01, "time_constant": 0.05},
                                 measurement_noise={"temperature_celsius": 0.1},
                                 estimate_parameters=["time_constant"], parameters={"time_constant": 60.0})
    mhe.initialize({"temperature": 310.0}, {"temperature": 10.0, "time_constant": 60.0})
    x = 293.15
    for k in range(80):
        u = _jacket(k)
        x = float(simulate(model, {"temperature": x}, [k * SAMPLE_S, (k + 1) * SAMPLE_S], {"jacket_temperature": u},
                           parameters={"time_constant": 150.0}).states[0, -1])
        y = None if 40 <= k < 45 else x - 273.15 + rng.normal(0.0, 0.1)
        estimate = mhe.step({"jacket_temperature": u}, {"temperature_celsius": y})
        assert mhe.last_status == "Solve_Succeeded", (k, mhe.last_status)
    assert estimate.time_s == pytest.approx(800.0)
    assert abs(estimate.states["temperature"] - x) < 0.3
    assert abs(estimate.parameters["time_constant"] - 150.0) < 0.1 * 150.0
    assert abs(estimate.parameters["time_constant"] - 150.0) < 3 * estimate.parameter_std["time_constant"]


def test_mhe_requires_initialize_and_falls_back_to_ekf_when_the_solver_fails():
    model = _tank()
    mhe = MovingHorizonEstimator(model, ["temperature_celsius"], SAMPLE_S, horizon=5,
                                 process_noise={"temperature": 0.01}, measurement_noise={"temperature_celsius": 0.1},
                                 max_iter=0)
    with pytest.raises(EstimatorError, match="initialize"):
        mhe.step({"jacket_temperature": 300.0}, {"temperature_celsius": 20.0})
    mhe.initialize({"temperature": 293.15}, {"temperature": 1.0})
    estimate = mhe.step({"jacket_temperature": 300.0}, {"temperature_celsius": 20.5})
    assert "EKF estimate used" in mhe.last_status
    assert np.isfinite(estimate.states["temperature"])
