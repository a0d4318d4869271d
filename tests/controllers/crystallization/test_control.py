"""PAT-style closed loop on the batch cooling crystallizer (method of moments, KDP kinetics).

Plant: the same declared moment model simulated in-process (no sockets), with its own "true" kinetics.
Loop per sample: EKF estimate -> NMPC (shrinking horizon to batch end) -> supervisor guards -> plant.
Baseline: linear cooling of the jacket from 40 to 25 degC over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from controllers import ControlMode, Fallback, NmpcConfig, NonlinearMpc, SetpointLimits, Supervisor, SupervisorConfig
from controllers.crystallization.objective import (
    CrystallizationObjective,
    crystallizer_nmpc_config,
    linear_cooling_recipe,
)
from process_models.crystallization.crystallizer import crystallizer_moments_model, moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.crystallization.params import parameter_set
from process_models.declaration import CompiledModel, compile_model
from process_models.estimator import ExtendedKalmanFilter
from process_models.simulator import simulate

SAMPLE_S = 120.0
BATCH_S = 7200.0
START_K = 313.15
END_K = 298.15
JACKET = "jacket_temperature"
TARGET_D43_M = 400e-6
MAX_MOVE_K = 1.0
LIMITS = SetpointLimits(JACKET, "K", 283.15, 313.15, max_rate_per_s=MAX_MOVE_K / SAMPLE_S)
MEASUREMENT_SD = {"solute_concentration": 5e-4, "temperature": 0.05, "d43": 3e-6}
KDP = parameter_set("kdp_water").values
MISMATCH = {"growth_rate_constant": 0.8 * KDP["growth_rate_constant"],
            "secondary_nucleation_rate_constant": 1.2 * KDP["secondary_nucleation_rate_constant"]}


@dataclass(frozen=True)
class BatchOutcome:
    d43_m: float
    cv: float
    count_per_kg: float
    emitted_k: tuple[float, ...]


@pytest.fixture(scope="module")
def model() -> CompiledModel:
    return compile_model(crystallizer_moments_model())


@pytest.fixture(scope="module")
def initial_state() -> dict[str, float]:
    c0 = float(solubility(START_K, KDP))  # saturated at 40 degC, seeded with 1 % of the dissolved solute
    return moments_initial_state(c0, seed_moments(0.01 * c0, 150e-6, 15e-6, KDP["crystal_density"]), START_K)


def _objective(initial_state, max_cv: float) -> CrystallizationObjective:
    return CrystallizationObjective(target_d43_m=TARGET_D43_M, seed_count_per_kg=initial_state["mu0"], max_cv=max_cv)


def _plant_step(model, x, k, jacket_k, plant_parameters):
    sim = simulate(model, x, [k * SAMPLE_S, (k + 1) * SAMPLE_S], {JACKET: jacket_k}, parameters=plant_parameters)
    x_next = {name: float(sim.states[sl, -1][0]) for name, sl in model.state_slices.items()}
    return x_next, {name: float(v[0, -1]) for name, v in model.unpack_outputs(sim.outputs).items()}


def _linear_cooling(model, initial_state, plant_parameters=None) -> BatchOutcome:
    recipe = linear_cooling_recipe(START_K, END_K, BATCH_S)
    x, y, emitted = dict(initial_state), {}, []
    for k in range(int(BATCH_S / SAMPLE_S)):
        u = recipe.value(JACKET, k * SAMPLE_S)
        emitted.append(u)
        x, y = _plant_step(model, x, k, u, plant_parameters)
    return BatchOutcome(y["d43"], y["cv"], y["mu0"], tuple(emitted))


def _closed_loop(model, initial_state, config: NmpcConfig, plant_parameters=None, use_estimator=False,
                 rng_seed=5) -> tuple[BatchOutcome, Supervisor]:
    mpc = NonlinearMpc(model, config)
    supervisor = Supervisor(SupervisorConfig(limits=(LIMITS,), fallback=Fallback.RECIPE,
                                             recipe=linear_cooling_recipe(START_K, END_K, BATCH_S)),
                            {JACKET: START_K}, mode=ControlMode.MPC, start_time_s=-SAMPLE_S)
    ekf = None
    if use_estimator:
        kg, kb = KDP["growth_rate_constant"], KDP["secondary_nucleation_rate_constant"]
        ekf = ExtendedKalmanFilter(
            model, list(MEASUREMENT_SD), SAMPLE_S,
            process_noise={"growth_rate_constant": 0.01 * kg, "secondary_nucleation_rate_constant": 0.01 * kb,
                           "solute_concentration": 1e-4, "temperature": 0.02,
                           **{f"mu{i}": 0.005 * initial_state[f"mu{i}"] for i in range(5)}},
            measurement_noise=MEASUREMENT_SD,
            estimate_parameters=["growth_rate_constant", "secondary_nucleation_rate_constant"])
        std0 = {name: 0.05 * abs(v) for name, v in initial_state.items()}
        std0.update(temperature=0.5, growth_rate_constant=0.3 * kg, secondary_nucleation_rate_constant=0.3 * kb)
        ekf.initialize(initial_state, std0)
    rng = np.random.default_rng(rng_seed)
    x, y, emitted = dict(initial_state), {}, []
    estimate_states, estimate_parameters = dict(initial_state), {}
    for k in range(int(BATCH_S / SAMPLE_S)):
        t = k * SAMPLE_S
        result = mpc.step(t, estimate_states, supervisor.last_written, {"d43": TARGET_D43_M},
                          parameters=estimate_parameters, batch_end_s=BATCH_S)
        (command,) = supervisor.update(t, result)
        emitted.append(command.value)
        x, y = _plant_step(model, x, k, command.value, plant_parameters)
        if ekf is None:
            estimate_states = x
        else:
            measured = {name: y[name] + rng.normal(0.0, sd) for name, sd in MEASUREMENT_SD.items()}
            estimate = ekf.step({JACKET: command.value}, measured)
            estimate_states, estimate_parameters = estimate.states, estimate.parameters
    return BatchOutcome(y["d43"], y["cv"], y["mu0"], tuple(emitted)), supervisor


def _assert_within_limits_and_rates(emitted):
    values = np.array((START_K, *emitted))
    assert np.all(values >= LIMITS.lower) and np.all(values <= LIMITS.upper)
    assert np.all(np.abs(np.diff(values)) <= MAX_MOVE_K + 1e-9)


def test_nmpc_on_nominal_model_reaches_target_d43_with_cv_not_worse_than_linear_cooling(model, initial_state):
    baseline = _linear_cooling(model, initial_state)
    config = crystallizer_nmpc_config(_objective(initial_state, baseline.cv), SAMPLE_S, 20, LIMITS.lower,
                                      LIMITS.upper, MAX_MOVE_K)
    outcome, supervisor = _closed_loop(model, initial_state, config)
    assert abs(outcome.d43_m - TARGET_D43_M) < 0.02 * TARGET_D43_M
    assert abs(outcome.d43_m - TARGET_D43_M) < abs(baseline.d43_m - TARGET_D43_M)
    assert outcome.cv <= baseline.cv + 0.005
    assert supervisor.events == []  # every solve succeeded in time
    _assert_within_limits_and_rates(outcome.emitted_k)


def test_closed_loop_with_kinetic_mismatch_beats_linear_cooling(model, initial_state):
    baseline = _linear_cooling(model, initial_state, MISMATCH)
    nominal_baseline = _linear_cooling(model, initial_state)
    config = crystallizer_nmpc_config(_objective(initial_state, nominal_baseline.cv), SAMPLE_S, 20, LIMITS.lower,
                                      LIMITS.upper, MAX_MOVE_K)
    outcome, _ = _closed_loop(model, initial_state, config, plant_parameters=MISMATCH, use_estimator=True)
    error, baseline_error = abs(outcome.d43_m - TARGET_D43_M), abs(baseline.d43_m - TARGET_D43_M)
    assert error < 0.5 * baseline_error
    assert error < 0.03 * TARGET_D43_M
    _assert_within_limits_and_rates(outcome.emitted_k)


def test_solver_out_of_time_every_step_falls_back_to_the_recipe(model, initial_state):
    config = crystallizer_nmpc_config(_objective(initial_state, 1.0), SAMPLE_S, 20, LIMITS.lower, LIMITS.upper,
                                      MAX_MOVE_K, max_cpu_time_s=1e-6)
    outcome, supervisor = _closed_loop(model, initial_state, config)
    baseline = _linear_cooling(model, initial_state)
    assert outcome.emitted_k == pytest.approx(baseline.emitted_k)
    assert outcome.d43_m == pytest.approx(baseline.d43_m, rel=1e-9)
    assert len(supervisor.events) == int(BATCH_S / SAMPLE_S)
    assert all("NMPC solve failed" in e.reason and e.used_source == "recipe" for e in supervisor.events)
    _assert_within_limits_and_rates(outcome.emitted_k)
