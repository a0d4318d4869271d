"""The jacketed mixing tank plant runs the declared ``process_models`` model and obeys its balances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.plant import Plant, make_plant
from hil.plants.declared_plant import DeclaredPlant, MeasuredSignal
from hil.plants.mixing_tank import MixingTank
from hil.plants.parameters import PlantParameterError
from process_models.declaration import compile_model
from process_models.mixing.mixing_tank import mixing_tank_model
from process_models.simulator import InputProgram, simulate
from tests.hil.hil_helpers import pilot_line_unit

NO_NOISE = {
    "level_noise_std_m": 0.0,
    "temperature_noise_std_c": 0.0,
    "concentration_noise_std_kg_per_m3": 0.0,
    "jacket_temperature_noise_std_c": 0.0,
    "outlet_flow_noise_std_m3_per_h": 0.0,
    "agitator_power_noise_std_kw": 0.0,
}
PILOT_MODEL = pilot_line_unit("feed_tank")[1]  # [units.feed_tank.model] of examples/pilot_line.toml
CV = PILOT_MODEL["outlet_valve_coefficient_m2_5_per_s"]  # m^2.5/s
KELVIN = 273.15


def quiet_tank(**overrides: object) -> MixingTank:
    plant = make_plant("mixing_tank", {**PILOT_MODEL, **NO_NOISE, **overrides}, seed=0)
    assert isinstance(plant, MixingTank)
    return plant


def run(plant: MixingTank, duration_s: float, dt_s: float, commands: dict[str, float]) -> None:
    for _ in range(round(duration_s / dt_s)):
        plant.step(dt_s, commands)


def declared_values() -> dict[str, float]:
    """The declared model's parameter values (SI) for the demo line's options."""
    return mixing_tank_model(**PILOT_MODEL).parameter_values()


# ---------------------------------------------------------------------------- the plant is the declared model
def test_is_a_plant_with_the_tag_names_of_the_demo_line() -> None:
    plant = quiet_tank()
    assert isinstance(plant, Plant)
    assert set(plant.measurements()) == set(plant.measured_names)
    assert set(plant.initial_commands()) == set(plant.commanded_names)
    _, _, tags = pilot_line_unit("feed_tank")
    assert {t.name for t in tags} == set(plant.measured_names) | set(plant.commanded_names)


def test_plant_parameters_are_the_declared_model_parameters() -> None:
    plant = quiet_tank(jacket_area_m2=5.5)
    expected = mixing_tank_model(**{**PILOT_MODEL, "jacket_area_m2": 5.5}).parameter_values()
    assert plant.parameter_values == expected
    assert plant.input_values()["feed_concentration"] == PILOT_MODEL["feed_concentration_kg_per_m3"]
    assert plant.input_values()["feed_temperature"] == pytest.approx(PILOT_MODEL["feed_temperature_c"] + KELVIN)


def test_noise_free_trajectory_equals_the_simulated_declared_model() -> None:
    """Commands in tag units (m³/h, °C, rpm; one negative, one NaN) against the same schedule in SI through
    process_models.simulator.simulate (CVODES, tight tolerances) of an independently built declaration."""
    segments = [  # (duration s, commands in tag units)
        (300.0, {"inlet_flow_setpoint": 4.0, "jacket_temperature_setpoint": 60.0, "agitator_speed_setpoint": 300.0}),
        (200.0, {"inlet_flow_setpoint": -2.0, "agitator_speed_setpoint": float("nan")}),  # pump stops, speed kept
        (400.0, {"inlet_flow_setpoint": 6.5, "jacket_temperature_setpoint": 10.0, "agitator_speed_setpoint": 90.0}),
    ]
    dt_s = 0.1
    plant = quiet_tank(initial_level_m=0.7, initial_concentration_kg_per_m3=40.0, initial_temperature_c=25.0,
                       initial_jacket_temperature_c=30.0, initial_agitator_speed_rpm=150.0)
    times = [0.0]
    truth = [plant.truth()]
    held = {"inlet_flow": [], "jacket_temperature_setpoint": [], "agitator_speed": []}
    knots = []
    commands = dict(plant.initial_commands())
    for duration, segment in segments:
        knots.append(times[-1])
        commands.update({k: v for k, v in segment.items() if math.isfinite(v)})
        held["inlet_flow"].append(max(commands["inlet_flow_setpoint"], 0.0) / 3600.0)
        held["jacket_temperature_setpoint"].append(commands["jacket_temperature_setpoint"] + KELVIN)
        held["agitator_speed"].append(commands["agitator_speed_setpoint"] / 60.0)
        for _ in range(4):
            run(plant, duration / 4, dt_s, segment)
            times.append(times[-1] + duration / 4)
            truth.append(plant.truth())

    model = compile_model(mixing_tank_model(**PILOT_MODEL, inventory_totals=True))
    initial = {"level": 0.7, "concentration": 40.0, "temperature": 25.0 + KELVIN, "jacket_temperature": 30.0 + KELVIN,
               "liquid_fed": 0.0, "liquid_drained": 0.0, "solute_fed": 0.0, "solute_drained": 0.0,
               "energy_added": 0.0}
    inputs = {name: InputProgram(tuple(knots), tuple(values)) for name, values in held.items()}
    inputs.update(feed_concentration=120.0, feed_temperature=20.0 + KELVIN)
    result = simulate(model, initial, times, inputs, rtol=1e-11, atol=1e-12)

    expected = {
        "level_m": result.state("level"),
        "concentration_kg_per_m3": result.output("outlet_concentration"),
        "temperature_c": result.state("temperature") - KELVIN,
        "jacket_temperature_c": result.state("jacket_temperature") - KELVIN,
        "outlet_flow_m3_per_h": result.output("outlet_flow") * 3600.0,
        "agitator_power_kw": result.output("agitator_power") / 1000.0,
        "solute_fed_kg": result.state("solute_fed"),
        "solute_drained_kg": result.state("solute_drained"),
        "energy_added_j": result.state("energy_added"),
    }
    for k, values in enumerate(truth):
        for name, trajectory in expected.items():
            if name == "agitator_power_kw" and times[k] in knots:
                continue  # at a knot the simulator reports the next segment's speed, the plant the last one's
            assert values[name] == pytest.approx(float(trajectory[k]), rel=1e-6, abs=1e-9), (name, times[k])
    assert truth[-1]["temperature_c"] < truth[4]["temperature_c"]  # the schedule did move the plant
    assert truth[8]["level_m"] < truth[4]["level_m"]


def test_measurements_are_the_model_values_in_tag_units() -> None:
    plant = quiet_tank()
    plant.step(0.1, {"agitator_speed_setpoint": 300.0, "jacket_temperature_setpoint": 45.0})
    measured, truth = plant.measurements(), plant.truth()
    assert measured["level"] == truth["level_m"]
    assert measured["temperature"] == pytest.approx(truth["temperature_c"], abs=1e-12)
    assert measured["jacket_temperature"] == pytest.approx(truth["jacket_temperature_c"], abs=1e-12)
    assert measured["concentration"] == pytest.approx(truth["concentration_kg_per_m3"], rel=1e-15)
    assert measured["outlet_flow"] == pytest.approx(truth["outlet_flow_m3_per_h"], rel=1e-12)
    assert measured["agitator_power"] == pytest.approx(truth["agitator_power_kw"], rel=1e-12)


def test_concentration_compartments_of_the_twin_model_reach_the_plant() -> None:
    """A tanks-in-series model option reaches the plant: a feed step reaches the outlet later than well mixed."""
    mixed, staged = quiet_tank(), quiet_tank(concentration_compartments=4, inventory_totals=False)
    assert staged.state_value("concentration").shape == (4,)
    for plant in (mixed, staged):
        run(plant, 60.0, 0.5, {"inlet_flow_setpoint": 6.0})
    assert staged.concentration_kg_per_m3 < mixed.concentration_kg_per_m3 < 120.0
    assert staged.measurements()["concentration"] == pytest.approx(staged.concentration_kg_per_m3)


# ---------------------------------------------------------------------------- physics
def test_initial_inlet_flow_holds_the_initial_level() -> None:
    plant = quiet_tank(initial_level_m=0.8)
    run(plant, 600.0, 1.0, plant.initial_commands())
    assert plant.level_m == pytest.approx(0.8, abs=1e-9)


def test_level_settles_where_the_drain_equals_the_inlet_flow() -> None:
    inlet_m3_per_h = 3.0
    expected_level = (inlet_m3_per_h / 3600.0 / CV) ** 2  # Cv·sqrt(h) = F_in  →  h ≈ 1.085 m
    plant = quiet_tank(initial_level_m=0.9)
    run(plant, 15000.0, 1.0, {"inlet_flow_setpoint": inlet_m3_per_h})
    assert plant.level_m == pytest.approx(expected_level, rel=1e-3)
    assert plant.measurements()["outlet_flow"] == pytest.approx(inlet_m3_per_h, rel=1e-3)


def test_temperature_settles_at_the_energy_balance_steady_state() -> None:
    p = declared_values()
    inlet_m3_per_h, jacket_c, speed_rpm = 3.0, 60.0, 300.0
    level = (inlet_m3_per_h / 3600.0 / CV) ** 2
    plant = quiet_tank(initial_level_m=level)
    run(plant, 10000.0, 1.0, {
        "inlet_flow_setpoint": inlet_m3_per_h, "jacket_temperature_setpoint": jacket_c,
        "agitator_speed_setpoint": speed_rpm,
    })
    rho_cp = p["liquid_density"] * p["liquid_heat_capacity"]
    flow = inlet_m3_per_h / 3600.0
    ua = p["overall_heat_transfer_coefficient"] * p["jacket_area"]
    power_w = p["power_number"] * p["liquid_density"] * (speed_rpm / 60.0) ** 3 * p["impeller_diameter"] ** 5
    feed_c = PILOT_MODEL["feed_temperature_c"]
    # 0 = ρ cp F (T_feed − T) + U A (T_j − T) + P
    expected = (rho_cp * flow * feed_c + ua * jacket_c + power_w) / (rho_cp * flow + ua)
    assert plant.temperature_c == pytest.approx(expected, abs=0.01)
    assert feed_c < plant.temperature_c < jacket_c


def test_energy_is_conserved_without_noise() -> None:
    """ρ cp (V T − V0 T0) equals the enthalpy fed minus drained plus jacket heat and shaft work."""
    p = declared_values()
    rho_cp = p["liquid_density"] * p["liquid_heat_capacity"]
    plant = quiet_tank(initial_level_m=0.6, initial_temperature_c=30.0)
    before = rho_cp * plant.truth()["liquid_volume_m3"] * (plant.temperature_c + KELVIN)
    for inlet, jacket in ((5.0, 70.0), (0.5, 15.0), (3.0, 40.0)):
        run(plant, 600.0, 0.5, {"inlet_flow_setpoint": inlet, "jacket_temperature_setpoint": jacket,
                                "agitator_speed_setpoint": 350.0})
    truth = plant.truth()
    after = rho_cp * truth["liquid_volume_m3"] * (plant.temperature_c + KELVIN)
    assert abs(truth["energy_added_j"]) > 1e7
    assert after - before == pytest.approx(truth["energy_added_j"], rel=1e-9)
    assert truth["liquid_volume_m3"] - 0.6 == pytest.approx(truth["liquid_fed_m3"] - truth["liquid_drained_m3"],
                                                          rel=1e-9)


def test_temperature_moves_toward_a_raised_jacket_setpoint() -> None:
    plant = quiet_tank()
    commands = {**plant.initial_commands(), "jacket_temperature_setpoint": 60.0}
    temperatures = [plant.temperature_c]
    for _ in range(30):
        run(plant, 20.0, 0.5, commands)
        temperatures.append(plant.temperature_c)
    assert all(b > a for a, b in zip(temperatures[1:], temperatures[2:], strict=False))
    assert temperatures[-1] > temperatures[0] + 1.0
    assert temperatures[-1] < 60.0


def test_jacket_follows_its_setpoint_as_a_60_s_first_order_lag() -> None:
    plant = quiet_tank(initial_jacket_temperature_c=20.0)
    run(plant, 60.0, 0.1, {"jacket_temperature_setpoint": 60.0})
    assert plant.jacket_temperature_c == pytest.approx(20.0 + 40.0 * (1.0 - math.exp(-1.0)), abs=1e-4)


def test_solute_is_conserved_without_noise() -> None:
    plant = quiet_tank(initial_concentration_kg_per_m3=50.0)
    initial_mass = plant.solute_mass_kg
    for inlet in (4.0, 0.0, 6.5, 1.0):
        run(plant, 900.0, 1.0, {"inlet_flow_setpoint": inlet})
    accumulated = plant.solute_mass_kg - initial_mass
    assert plant.solute_fed_kg > 100.0 and plant.solute_drained_kg > 100.0
    assert accumulated == pytest.approx(plant.solute_fed_kg - plant.solute_drained_kg, rel=1e-6, abs=1e-6)


def test_agitator_power_follows_the_power_number_correlation() -> None:
    plant = quiet_tank()
    plant.step(0.1, {"agitator_speed_setpoint": 300.0})
    expected_kw = 5.0 * 1000.0 * (300.0 / 60.0) ** 3 * 0.35**5 / 1000.0
    assert plant.measurements()["agitator_power"] == pytest.approx(expected_kw, rel=1e-12)


def test_one_second_steps_stay_stable_and_agree_with_small_steps() -> None:
    commands = {"inlet_flow_setpoint": 8.0, "jacket_temperature_setpoint": 90.0, "agitator_speed_setpoint": 400.0}
    coarse = quiet_tank(initial_level_m=0.0)
    fine = quiet_tank(initial_level_m=0.0)
    run(coarse, 1200.0, 1.0, commands)
    run(fine, 1200.0, 0.05, commands)
    for name in ("level_m", "temperature_c", "concentration_kg_per_m3", "jacket_temperature_c"):
        assert math.isfinite(getattr(coarse, name))
        assert getattr(coarse, name) == pytest.approx(getattr(fine, name), rel=1e-4)
    assert 100.0 <= coarse.concentration_kg_per_m3 <= 120.0


# ---------------------------------------------------------------------------- commands, noise, parameters
def test_negative_and_non_finite_commands_do_not_break_the_plant() -> None:
    plant = quiet_tank()
    plant.step(1.0, {"inlet_flow_setpoint": -5.0, "agitator_speed_setpoint": float("nan")})
    values = plant.measurements()
    assert all(math.isfinite(v) for v in values.values())
    assert plant.level_m < 0.5  # no inflow: it drains
    assert plant.input_values()["inlet_flow"] == 0.0  # a pump does not run backwards
    assert values["agitator_power"] > 0.0  # NaN ignored: the initial speed is kept
    assert plant.command("agitator_speed_setpoint") == 150.0


def test_unknown_command_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="inlet_flowrate"):
        quiet_tank().step(1.0, {"inlet_flowrate": 1.0})


def test_sensor_noise_is_seeded_and_has_the_declared_spread() -> None:
    a = make_plant("mixing_tank", {"level_noise_std_m": 0.01}, seed=42)
    b = make_plant("mixing_tank", {"level_noise_std_m": 0.01}, seed=42)
    c = make_plant("mixing_tank", {"level_noise_std_m": 0.01}, seed=43)
    levels_a = [a.measurements()["level"] for _ in range(2000)]
    levels_b = [b.measurements()["level"] for _ in range(2000)]
    levels_c = [c.measurements()["level"] for _ in range(2000)]
    assert levels_a == levels_b
    assert levels_a != levels_c
    assert float(np.std(levels_a)) == pytest.approx(0.01, rel=0.1)
    assert float(np.mean(levels_a)) == pytest.approx(0.5, abs=0.002)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"outlet": "pump"}, "'outlet' must be 'valve'"),
        ({"concentration_compartments": 2.0}, "'concentration_compartments' must be an integer >= 1"),
        ({"inventory_totals": 1}, "'inventory_totals' must be true or false"),
        ({"tank_cross_section_m2": 1e-9}, "option 'tank_cross_section_m2' = 1e-09 outside"),  # the model's bound
        ({"feed_temperature_c": -300.0}, "'feed_temperature_c' must be above -273.15"),
        ({"integration_substep_s": 0.0}, "'integration_substep_s' must be > 0"),
    ],
)
def test_bad_model_options_are_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(PlantParameterError, match=message):
        make_plant("mixing_tank", values)


def test_a_zero_step_applies_the_commands_without_advancing_time() -> None:
    plant = quiet_tank()
    level = plant.level_m
    plant.step(0.0, {"agitator_speed_setpoint": 300.0})
    assert plant.time_s == 0.0 and plant.level_m == level
    assert plant.measurements()["agitator_power"] == pytest.approx(5.0 * (300.0 / 60.0) ** 3 * 0.35**5, rel=1e-12)


def test_a_signal_naming_no_model_quantity_is_refused_by_name() -> None:
    model = quiet_tank().model
    state = {"level": 0.5, "concentration": 100.0, "temperature": 293.15, "jacket_temperature": 293.15,
             "liquid_fed": 0.0, "liquid_drained": 0.0, "solute_fed": 0.0, "solute_drained": 0.0, "energy_added": 0.0}
    with pytest.raises(ValueError, match="tag 'viscosity': the model has no output 'viscosity'"):
        DeclaredPlant(model, state, (), (MeasuredSignal("viscosity", "viscosity", "output"),), {}, 0.5)
