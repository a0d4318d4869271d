"""The jacketed mixing tank plant obeys its mass, solute and energy balances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.plant import Plant, make_plant
from hil.plants.mixing_tank import MixingTank, MixingTankParameters

NO_NOISE = {
    "level_noise_std_m": 0.0,
    "temperature_noise_std_c": 0.0,
    "concentration_noise_std_kg_per_m3": 0.0,
    "jacket_temperature_noise_std_c": 0.0,
    "outlet_flow_noise_std_m3_per_h": 0.0,
    "agitator_power_noise_std_kw": 0.0,
}
CV = 0.0008  # m^2.5/s, as in examples/pilot_line.toml
AREA = 1.0  # m^2


def quiet_tank(**overrides: float) -> MixingTank:
    plant = make_plant("mixing_tank", {**NO_NOISE, **overrides}, seed=0)
    assert isinstance(plant, MixingTank)
    return plant


def run(plant: MixingTank, duration_s: float, dt_s: float, commands: dict[str, float]) -> None:
    for _ in range(round(duration_s / dt_s)):
        plant.step(dt_s, commands)


def test_is_a_plant_with_the_tag_names_of_the_demo_line() -> None:
    plant = quiet_tank()
    assert isinstance(plant, Plant)
    assert set(plant.measurements()) == set(plant.measured_names)
    assert set(plant.initial_commands()) == set(plant.commanded_names)


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
    p = MixingTankParameters()
    inlet_m3_per_h, jacket_c, speed_rpm = 3.0, 60.0, 300.0
    level = (inlet_m3_per_h / 3600.0 / CV) ** 2
    plant = quiet_tank(initial_level_m=level)
    run(plant, 10000.0, 1.0, {
        "inlet_flow_setpoint": inlet_m3_per_h, "jacket_temperature_setpoint": jacket_c,
        "agitator_speed_setpoint": speed_rpm,
    })
    rho_cp = p.liquid_density_kg_per_m3 * p.liquid_heat_capacity_j_per_kg_k
    flow = inlet_m3_per_h / 3600.0
    ua = p.overall_heat_transfer_coefficient_w_per_m2_k * p.jacket_area_m2
    power_w = p.power_number * p.liquid_density_kg_per_m3 * (speed_rpm / 60.0) ** 3 * p.impeller_diameter_m**5
    # 0 = ρ cp F (T_feed − T) + U A (T_j − T) + P
    expected = (rho_cp * flow * p.feed_temperature_c + ua * jacket_c + power_w) / (rho_cp * flow + ua)
    assert plant.temperature_c == pytest.approx(expected, abs=0.01)
    assert p.feed_temperature_c < plant.temperature_c < jacket_c


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


def test_negative_and_non_finite_commands_do_not_break_the_plant() -> None:
    plant = quiet_tank()
    plant.step(1.0, {"inlet_flow_setpoint": -5.0, "agitator_speed_setpoint": float("nan")})
    values = plant.measurements()
    assert all(math.isfinite(v) for v in values.values())
    assert plant.level_m < 0.5  # no inflow: it drains
    assert values["agitator_power"] > 0.0  # NaN ignored: the initial speed is kept


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
