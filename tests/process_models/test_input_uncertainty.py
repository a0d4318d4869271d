"""Errors in variables: the noise of a measured input, propagated into a fit's covariance, on a model whose answer is
known in closed form (``y = a u``: ``var(a) = (sigma_y^2 + a^2 sigma_u^2) / sum u^2``), its nuisance initial state
projected out, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.batch_fit_data import readback_noise_std
from process_models.declaration import Equations, Input, ModelDeclaration, Parameter, Variable, compile_model
from process_models.fitting import FitData, FitError, fit_parameters
from process_models.input_uncertainty import input_noise_covariance, with_input_uncertainty
from process_models.simulator import InputProgram

GAIN = 2.0
SIGMA_Y = 0.05
SIGMA_U = 0.02


@pytest.fixture(scope="module")
def gain_model():
    """``y = gain · u + x``, ``x' = 0`` (an offset state: the nuisance initial state of the second test)."""
    return compile_model(ModelDeclaration(
        name="static_gain", description="y = gain u + offset",
        states=(Variable("offset", "1", "constant offset", lower=-10.0, upper=10.0),),
        inputs=(Input("u", "1", "measured input"),),
        parameters=(Parameter("gain", "1", 1.0, "gain", lower=0.0, upper=10.0),),
        outputs=(Variable("y", "1", "measured output"),),
        equations=lambda s: Equations(derivatives={"offset": 0.0 * s.x["offset"]},
                                      outputs={"y": s.p["gain"] * s.u["u"] + s.x["offset"]}),
    ))


def _experiment(offset_free: bool = False) -> tuple[FitData, np.ndarray]:
    times = np.arange(0.0, 40.0)
    u = 1.0 + 0.5 * np.sin(times / 5.0)                  # the input as applied, read at the sample times
    rng = np.random.default_rng(3)
    y = GAIN * u + rng.normal(0.0, SIGMA_Y, times.size)
    measured_u = u + rng.normal(0.0, SIGMA_U, times.size)
    program = InputProgram(tuple(times), tuple(measured_u), "linear")
    return FitData(times, {"y": y}, {"u": program}, {"offset": 0.0}, name="gain test",
                   input_std={"u": np.full(times.size, SIGMA_U)},
                   estimate_initial=("offset",) if offset_free else ()), measured_u


def test_a_linear_models_input_noise_adds_its_exact_errors_in_variables_variance(gain_model):
    data, measured_u = _experiment()
    fit = fit_parameters(gain_model, data, ["gain"], weights={"y": 1.0 / SIGMA_Y}, absolute_sigma=True)
    a = fit.estimates["gain"]
    c_u = input_noise_covariance(gain_model, [data], fit, {"y": 1.0 / SIGMA_Y})
    assert c_u.shape == (1, 1)
    sum_u2 = float(measured_u @ measured_u)
    assert c_u[0, 0] == pytest.approx(a**2 * SIGMA_U**2 / sum_u2, rel=1e-4)
    assert fit.covariance[0, 0] == pytest.approx(SIGMA_Y**2 / sum_u2, rel=1e-4)
    total = with_input_uncertainty(fit, c_u)
    expected = np.sqrt((SIGMA_Y**2 + a**2 * SIGMA_U**2) / sum_u2)
    assert total.standard_errors["gain"] == pytest.approx(expected, rel=1e-4)
    lo, hi = total.confidence_intervals["gain"]
    assert hi - lo == pytest.approx(2 * fit.t_value * expected, rel=1e-4)
    assert total.measurement_covariance[0, 0] == fit.covariance[0, 0] and total.input_covariance[0, 0] == c_u[0, 0]
    assert total.estimates == fit.estimates                   # the estimate is the fit's; only its uncertainty grows


def test_the_input_share_is_marginal_over_the_nuisance_initial_states(gain_model):
    data, measured_u = _experiment(offset_free=True)
    fit = fit_parameters(gain_model, data, ["gain"], weights={"y": 1.0 / SIGMA_Y}, absolute_sigma=True)
    c_u = input_noise_covariance(gain_model, [data], fit, {"y": 1.0 / SIGMA_Y})
    centred = measured_u - measured_u.mean()                  # with the offset re-estimated: the centred input
    a = fit.estimates["gain"]
    assert c_u[0, 0] == pytest.approx(a**2 * SIGMA_U**2 / float(centred @ centred), rel=1e-3)
    exact = FitData(data.times_s, data.measurements, data.inputs, data.initial_state, name=data.name,
                    estimate_initial=data.estimate_initial)
    assert not input_noise_covariance(gain_model, [exact], fit, {"y": 1.0 / SIGMA_Y}).any()


def test_an_input_std_that_does_not_fit_its_input_is_named(gain_model):
    data, _u = _experiment()
    fit = fit_parameters(gain_model, data, ["gain"], weights={"y": 1.0 / SIGMA_Y}, absolute_sigma=True)
    short = FitData(data.times_s, data.measurements, data.inputs, data.initial_state, name="short",
                    input_std={"u": np.full(3, SIGMA_U)})
    with pytest.raises(FitError, match=r"input_std\['u'\] needs the input to be an InputProgram with one standard "):
        input_noise_covariance(gain_model, [short], fit, {"y": 1.0 / SIGMA_Y})
    with pytest.raises(FitError, match="expected a finite \\(1, 1\\) matrix"):
        with_input_uncertainty(fit, np.eye(2))


def test_a_readbacks_noise_comes_from_its_successive_differences():
    rng = np.random.default_rng(11)
    ramp = np.linspace(40.0, 25.0, 7200)                     # a 2 h cooling ramp read every second
    ramp[3600:] -= 2.0                                        # and one setpoint step: robustly ignored
    assert readback_noise_std(ramp + rng.normal(0.0, 0.02, ramp.size)) == pytest.approx(0.02, rel=0.05)
    assert readback_noise_std(np.array([1.0, np.nan])) == 0.0
