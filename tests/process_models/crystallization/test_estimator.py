"""EKF on the method-of-moments crystallizer: converges from a wrong initial guess, true values inside 3 sigma."""

from __future__ import annotations

import numpy as np

from process_models.crystallization.crystallizer import crystallizer_moments_model, moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.crystallization.params import parameter_set
from process_models.declaration import compile_model
from process_models.estimator import ExtendedKalmanFilter
from process_models.simulator import InputProgram, simulate

SEED = 11
SAMPLE_S = 120.0
BATCH_S = 7200.0
MEASUREMENT_SD = {"solute_concentration": 5e-4, "temperature": 0.05, "d43": 3e-6}


def test_ekf_on_crystallizer_converges_from_wrong_guess_with_truth_inside_3_sigma():
    model = compile_model(crystallizer_moments_model())
    kdp = parameter_set("kdp_water").values
    kg = kdp["growth_rate_constant"]
    start_k = 313.15
    c0 = float(solubility(start_k, kdp))
    true_x0 = moments_initial_state(c0, seed_moments(0.01 * c0, 150e-6, 15e-6, kdp["crystal_density"]), start_k)
    times = np.arange(0.0, BATCH_S + 1.0, SAMPLE_S)
    # linear cooling written as one held setpoint per sample period (what a controller writes)
    jacket = InputProgram(tuple(times), tuple(np.linspace(start_k, 298.15, times.size)), "zoh")
    plant = simulate(model, true_x0, times, {"jacket_temperature": jacket},
                     parameters={"growth_rate_constant": 0.8 * kg})
    y_true = model.unpack_outputs(plant.outputs)
    rng = np.random.default_rng(SEED)

    # wrong guess: 30 % more seed crystals, 2 % more solute, 1 K warmer, growth constant at its nominal (+25 %)
    guess = dict(true_x0)
    for k in range(5):
        guess[f"mu{k}"] *= 1.3
    guess["solute_concentration"] *= 1.02
    guess["temperature"] += 1.0
    std0 = {name: 0.3 * abs(v) for name, v in guess.items()}
    std0["temperature"] = 1.0
    std0["solute_concentration"] = 0.02 * c0
    std0["growth_rate_constant"] = 0.3 * kg
    ekf = ExtendedKalmanFilter(model, list(MEASUREMENT_SD), SAMPLE_S,
                               process_noise={"growth_rate_constant": 0.005 * kg, "solute_concentration": 2e-4,
                                              "temperature": 0.02,
                                              **{f"mu{k}": 0.005 * true_x0[f"mu{k}"] for k in range(5)}},
                               measurement_noise=MEASUREMENT_SD, estimate_parameters=["growth_rate_constant"])
    first = ekf.initialize(guess, std0)
    for k in range(1, times.size):
        measured = {name: float(y_true[name][0, k]) + rng.normal(0.0, sd) for name, sd in MEASUREMENT_SD.items()}
        if k % 7 == 0:
            measured["d43"] = None  # dropout of the size probe
        estimate = ekf.step({"jacket_temperature": jacket.at(times[k - 1])}, measured)
    true_end = {name: float(plant.states[sl, -1][0]) for name, sl in model.state_slices.items()}
    d43_est = estimate.states["mu4"] / estimate.states["mu3"]
    d43_true = true_end["mu4"] / true_end["mu3"]
    assert abs(d43_est - d43_true) < 0.02 * d43_true
    for name in ("solute_concentration", "temperature", "mu3"):
        err_end = abs(estimate.states[name] - true_end[name])
        assert err_end < 3 * estimate.std[name], name
        relative_start = abs(first.states[name] - true_x0[name]) / abs(true_x0[name])
        assert err_end / abs(true_end[name]) < max(0.2 * relative_start, 0.002), name
    kg_est, kg_sd = estimate.parameters["growth_rate_constant"], estimate.parameter_std["growth_rate_constant"]
    assert abs(kg_est - 0.8 * kg) < 3 * kg_sd
    assert abs(kg_est - 0.8 * kg) < 0.05 * kg


def test_a_large_fbrm_innovation_keeps_the_moments_realizable():
    """Robustness campaign plant 176: the seed is 120 µm, the twin assumes 150 µm, so the FBRM counts 50 % more
    chords than predicted. The full linearised correction raised mu1 alone (d10 226 µm above d43 170 µm), the
    NMPC then held the jacket at 40 °C for the whole batch (d43 126 µm for a 417 µm target). The correction must
    stop inside the realizable set (d10 ≤ d21 ≤ d32 ≤ d43), and say that it was shortened."""
    from process_models.instruments import fbrm_instruments, with_instruments

    model = compile_model(with_instruments(crystallizer_moments_model(), fbrm_instruments()))
    assert model.state_constraint_names == ("d21_over_d10_minus_1", "d32_over_d21_minus_1", "d43_over_d32_minus_1")
    kdp = parameter_set("kdp_water").values
    start_k = 313.15
    c0 = float(solubility(start_k, kdp))
    seed_mass = 0.01 * c0

    def state(mean_m: float) -> dict[str, float]:
        return moments_initial_state(c0, seed_moments(seed_mass, mean_m, 0.1 * mean_m, kdp["crystal_density"]),
                                     start_k)

    assumed, true = state(150e-6), state(120e-6)
    p = model.pack_parameters()
    y_true = model.unpack_outputs(np.asarray(model.output(model.pack_states(true), [start_k], p, 0.0)))
    noise = {"temperature": 0.1, "solute_concentration": 7e-4, "chord_count_rate": 60.0, "mean_chord_length": 3e-6}
    std0 = {name: 0.1 * abs(v) for name, v in assumed.items()}
    std0.update(temperature=0.5, solute_concentration=0.02 * c0)
    ekf = ExtendedKalmanFilter(model, list(noise), 60.0, process_noise={f"mu{k}": 0.005 * assumed[f"mu{k}"]
                                                                          for k in range(5)},
                               measurement_noise=noise, keep_state_constraints=True)
    ekf.initialize(assumed, std0)
    for _ in range(20):
        estimate = ekf.step({"jacket_temperature": start_k}, {n: float(y_true[n][0, 0]) for n in noise})
        g = np.asarray(model.state_constraint(ekf.mean[: model.nx], p)).ravel()
        named = dict(zip(model.state_constraint_names, g, strict=True))
        assert np.all(g > 0.0), f"non-realizable moments after a correction: {named}"
    assert ekf.truncated_corrections >= 1
    mu = [estimate.states[f"mu{k}"] for k in range(5)]
    assert mu[1] / mu[0] < mu[4] / mu[3]  # d10 below d43
    # the default filter takes the full correction: the same reading leaves the realizable set (the option's reason)
    plain = ExtendedKalmanFilter(model, list(noise), 60.0, process_noise={f"mu{k}": 0.005 * assumed[f"mu{k}"]
                                                                            for k in range(5)},
                                 measurement_noise=noise)
    plain.initialize(assumed, std0)
    plain.step({"jacket_temperature": start_k}, {n: float(y_true[n][0, 0]) for n in noise})
    assert np.min(np.asarray(model.state_constraint(plain.mean[: model.nx], p))) < 0.0
    assert plain.truncated_corrections == 0
