"""Weighted least squares recovers known parameters from noisy simulated data, with honest intervals."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.declaration import compile_model
from process_models.fitting import FitData, FitError, fit_parameters
from process_models.mixing.mixing_tank import mixing_tank_model, mixing_tank_steady_state
from process_models.simulator import InputProgram, simulate

TRUE = {"overall_heat_transfer_coefficient": 520.0, "outlet_valve_coefficient": 0.0009}
SIGMA = {"level": 0.002, "temperature": 0.05}     # m, K: radar level and Pt100 noise


@pytest.fixture(scope="module")
def tank():
    return compile_model(mixing_tank_model())


@pytest.fixture(scope="module")
def experiment(tank):
    """Two hours of feed-rate and jacket steps on the true tank, sampled every 30 s with sensor noise."""
    decl = tank.declaration
    start = mixing_tank_steady_state(decl.parameter_values(TRUE), 8e-4, 293.15, 2.5, 120.0, 293.15)
    times = np.arange(0.0, 7200.0 + 1.0, 30.0)
    inputs = {"inlet_flow": InputProgram((0.0, 1800.0, 4200.0), (8e-4, 1.1e-3, 6e-4)),
              "jacket_temperature_setpoint": InputProgram((0.0, 600.0, 3600.0), (293.15, 333.15, 313.15)),
              "agitator_speed": 2.5, "feed_concentration": 120.0, "feed_temperature": 293.15}
    truth = simulate(tank, start, times, inputs, TRUE)
    rng = np.random.default_rng(20261126)
    measured = {name: truth.state(name) + rng.normal(0.0, sigma, times.size) for name, sigma in SIGMA.items()}
    measured["temperature"][[5, 17]] = np.nan               # two lost samples
    return FitData(times, measured, inputs, start, name="step test")


def test_recovers_heat_transfer_and_valve_coefficients(tank, experiment):
    fit = fit_parameters(tank, experiment, ["overall_heat_transfer_coefficient", "outlet_valve_coefficient"],
                         initial_guess={"overall_heat_transfer_coefficient": 400.0, "outlet_valve_coefficient": 7e-4},
                         weights={name: 1.0 / sigma for name, sigma in SIGMA.items()})
    assert fit.success
    for name, true_value in TRUE.items():
        lo, hi = fit.confidence_intervals[name]
        assert lo < true_value < hi, (name, lo, true_value, hi)
        assert (hi - lo) / true_value < 0.01, name          # informative: interval within +/- 0.5 %
        assert fit.standard_errors[name] > 0
    n_samples = 2 * experiment.times_s.size - 2
    assert fit.degrees_of_freedom == n_samples - 2
    assert fit.residual_variance == pytest.approx(1.0, abs=0.25)   # weights were 1/sigma: s^2 ~ 1
    assert fit.residuals["level"].std() == pytest.approx(SIGMA["level"], rel=0.2)
    assert fit.covariance.shape == (2, 2)
    assert "overall_heat_transfer_coefficient" in fit.summary()


def test_weighted_residual_cost_matches_the_reported_cost(tank, experiment):
    fit = fit_parameters(tank, experiment, ["overall_heat_transfer_coefficient"],
                         weights={name: 1.0 / sigma for name, sigma in SIGMA.items()},
                         initial_guess={"overall_heat_transfer_coefficient": 480.0},
                         bounds={"overall_heat_transfer_coefficient": (100.0, 1000.0)})
    # the valve is left at its (wrong) default: the fit is worse and its cost says so
    assert fit.cost == pytest.approx(0.5 * float(fit.weighted_residuals @ fit.weighted_residuals))
    assert fit.residual_variance > 10.0


def test_bad_requests_are_refused_with_names(tank, experiment):
    with pytest.raises(FitError, match="unknown or repeated"):
        fit_parameters(tank, experiment, ["ua"])
    bad = FitData(experiment.times_s, {"levl": experiment.measurements["level"]}, experiment.inputs,
                  experiment.initial_state)
    with pytest.raises(FitError, match="measurement 'levl' is neither a state nor an output"):
        fit_parameters(tank, bad, ["outlet_valve_coefficient"])
    with pytest.raises(FitError, match=r"weights\['level'\] must be a finite number > 0"):
        fit_parameters(tank, experiment, ["outlet_valve_coefficient"], weights={"level": -1.0})
    with pytest.raises(FitError, match="outside bounds"):
        fit_parameters(tank, experiment, ["outlet_valve_coefficient"], initial_guess={"outlet_valve_coefficient": -1})


def test_fits_any_declared_model_from_an_output():
    from process_models.declaration import Equations, Input, ModelDeclaration, Parameter, Variable

    model = compile_model(ModelDeclaration(
        name="first_order_tank", description="T' = (T_j - T)/tau",
        states=(Variable("temperature", "K", "liquid temperature"),),
        inputs=(Input("jacket_temperature", "K", "jacket temperature"),),
        parameters=(Parameter("time_constant", "s", 100.0, "thermal time constant", lower=1.0, upper=1e4),),
        outputs=(Variable("temperature_celsius", "degC", "liquid temperature"),),
        equations=lambda s: Equations(
            derivatives={"temperature": (s.u["jacket_temperature"] - s.x["temperature"]) / s.p["time_constant"]},
            outputs={"temperature_celsius": s.x["temperature"] - 273.15}),
    ))
    times = np.linspace(0.0, 900.0, 91)
    truth = 300.0 + 50.0 * (1.0 - np.exp(-times / 150.0)) - 273.15
    rng = np.random.default_rng(7)
    data = FitData(times, {"temperature_celsius": truth + rng.normal(0.0, 0.1, times.size)},
                   {"jacket_temperature": 350.0}, {"temperature": 300.0})
    fit = fit_parameters(model, data, ["time_constant"], weights={"temperature_celsius": 10.0}, absolute_sigma=True)
    estimate, se = fit.estimates["time_constant"], fit.standard_errors["time_constant"]
    assert abs(estimate - 150.0) < 3.0 * se          # within 3 standard errors of the truth
    assert 0.05 < se < 0.5                            # the linearised error is neither absurd nor vanishing
    lo, hi = fit.confidence_intervals["time_constant"]
    assert (hi - lo) == pytest.approx(2 * fit.t_value * se)
