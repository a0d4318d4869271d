"""Maximum likelihood finds each instrument's noise, an unknown initial state is estimated with the parameters, the
profile-likelihood interval brackets the estimate, and identifiability names a parameter the data cannot separate
from another (on the mixing tank: fast, known truth)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from process_models.declaration import compile_model
from process_models.fit_diagnostics import identifiability, profile_interval, residual_statistics
from process_models.fitting import FitData, FitError, fit_parameters
from process_models.likelihood_fit import fit_maximum_likelihood
from process_models.mixing.mixing_tank import mixing_tank_model, mixing_tank_steady_state
from process_models.simulator import InputProgram, simulate

TRUE = {"overall_heat_transfer_coefficient": 520.0, "outlet_valve_coefficient": 0.0009}
NOISE = {"level": 0.002, "temperature": 0.05}          # m, K: what the data really have
DECLARED = {"level": 0.01, "temperature": 0.5}          # what the instrument list claims (5-10 x too pessimistic)


@pytest.fixture(scope="module")
def tank():
    return compile_model(mixing_tank_model())


@pytest.fixture(scope="module")
def experiment(tank):
    decl = tank.declaration
    start = mixing_tank_steady_state(decl.parameter_values(TRUE), 8e-4, 293.15, 2.5, 120.0, 293.15)
    times = np.arange(0.0, 7200.0 + 1.0, 30.0)
    inputs = {"inlet_flow": InputProgram((0.0, 1800.0, 4200.0), (8e-4, 1.1e-3, 6e-4)),
              "jacket_temperature_setpoint": InputProgram((0.0, 600.0, 3600.0), (293.15, 333.15, 313.15)),
              "agitator_speed": 2.5, "feed_concentration": 120.0, "feed_temperature": 293.15}
    truth = simulate(tank, start, times, inputs, TRUE)
    rng = np.random.default_rng(2)     # any seed: about 1 in 20 puts a true value outside its 95 % interval
    measured = {n: truth.state(n) + rng.normal(0.0, s, times.size) for n, s in NOISE.items()}
    return FitData(times, measured, inputs, start, name="step test")


def test_maximum_likelihood_estimates_each_instruments_noise(tank, experiment):
    ml = fit_maximum_likelihood(tank, experiment, list(TRUE), {"level": "constant", "temperature": "constant"},
                                DECLARED, initial_guess={"overall_heat_transfer_coefficient": 450.0,
                                                         "outlet_valve_coefficient": 8e-4})
    assert ml.converged
    for name, sigma in NOISE.items():
        assert ml.variance_parameters[name] == pytest.approx(sigma, rel=0.15)
    for name, value in TRUE.items():
        lo, hi = ml.fit.confidence_intervals[name]
        assert lo < value < hi
    stats = residual_statistics(ml.fit, ml.experiments, tank)
    assert stats["level"]["standardised_rms"] == pytest.approx(1.0, abs=0.1)
    assert abs(stats["level"]["lag1_autocorrelation"]) < 0.3
    with pytest.raises(FitError, match="expected one of"):
        fit_maximum_likelihood(tank, experiment, list(TRUE), {"level": "quadratic", "temperature": "constant"},
                               DECLARED)


def test_an_unknown_initial_state_is_estimated_with_the_parameters(tank, experiment):
    start = {**experiment.initial_state, "temperature": experiment.initial_state["temperature"] + 2.0}
    wrong = dataclasses.replace(experiment, initial_state=start, estimate_initial=("temperature",))
    fit = fit_parameters(tank, wrong, list(TRUE), weights={n: 1 / s for n, s in NOISE.items()})
    assert fit.initial_states["step test"]["temperature"] == pytest.approx(experiment.initial_state["temperature"],
                                                                           abs=0.1)
    assert fit.degrees_of_freedom == 2 * experiment.times_s.size - 3
    for name, value in TRUE.items():
        lo, hi = fit.confidence_intervals[name]
        assert lo < value < hi


def test_profile_interval_brackets_the_estimate_and_the_truth(tank, experiment):
    fit = fit_parameters(tank, experiment, list(TRUE), weights={n: 1 / s for n, s in NOISE.items()})
    steps = []
    lo, hi = profile_interval(tank, [experiment], fit, "outlet_valve_coefficient", absolute_sigma=False,
                              weights={n: 1 / s for n, s in NOISE.items()},
                              on_step=lambda n, v, t: steps.append(t))
    value = fit.estimates["outlet_valve_coefficient"]
    lin = fit.confidence_intervals["outlet_valve_coefficient"]
    assert lo < value < hi and lo < TRUE["outlet_valve_coefficient"] < hi
    assert (hi - lo) == pytest.approx(lin[1] - lin[0], rel=0.2)      # nearly linear here: similar widths
    assert min(steps) < 0 < max(steps)


def test_identifiability_names_a_parameter_the_data_carry_no_information_on(tank, experiment):
    # U and the jacket area enter the energy balance only as their product UA: the data fix UA, not each
    fit = fit_parameters(tank, experiment, ["overall_heat_transfer_coefficient", "outlet_valve_coefficient"],
                         weights={n: 1 / s for n, s in NOISE.items()})
    ok = identifiability(fit, fit.jacobian)
    assert ok.not_identifiable == {} and set(ok.ranking) == set(TRUE)
    assert ok.eigenvalues[0] >= ok.eigenvalues[-1] > 0
    fit2 = fit_parameters(tank, experiment, ["overall_heat_transfer_coefficient", "jacket_area"],
                          weights={n: 1 / s for n, s in NOISE.items()})
    flagged = identifiability(fit2, fit2.jacobian)
    assert list(flagged.not_identifiable) == [flagged.ranking[-1]]
    assert "a combination of the others'" in flagged.message()
    assert flagged.eigenvalues[-1] / flagged.eigenvalues[0] < 1e-10


def test_a_relative_variance_model_finds_a_relative_error(tank, experiment):
    truth = simulate(tank, experiment.initial_state, experiment.times_s, experiment.inputs, TRUE)
    rng = np.random.default_rng(3)
    level = truth.state("level")
    measured = {"level": level * (1.0 + rng.normal(0.0, 0.004, level.size)),       # 0.4 % of reading
                "temperature": truth.state("temperature") + rng.normal(0.0, 0.05, level.size)}
    data = dataclasses.replace(experiment, measurements=measured)
    ml = fit_maximum_likelihood(tank, data, list(TRUE), {"level": "relative", "temperature": "constant"}, DECLARED)
    assert ml.variance_parameters["level"] == pytest.approx(0.004, rel=0.15)
    assert ml.variance_parameters["temperature"] == pytest.approx(0.05, rel=0.15)
    sig = ml.experiments[0].sigmas["level"]
    assert np.allclose(sig / np.abs(ml.fit.fits[0].state("level")), ml.variance_parameters["level"], rtol=0.05)
