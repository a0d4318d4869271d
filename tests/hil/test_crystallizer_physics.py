"""The physics crystallizer plant: process_models kinetics × mismatch, jacket lag, delayed noisy PAT sensors, truth."""

from __future__ import annotations

import math

import pytest

from hil.plant import make_plant, plant_models
from hil.plants.crystallizer_physics import CrystallizerPhysics
from hil.plants.crystallizer_standin import CrystallizerStandIn
from hil.plants.parameters import PlantParameterError
from process_models.crystallization.params import parameter_set
from tests.hil.hil_helpers import pilot_line_unit

KDP = parameter_set("kdp_water").values
QUIET = {
    "temperature_noise_std_c": 0.0, "jacket_temperature_noise_std_c": 0.0,
    "solute_concentration_noise_std_kg_per_m3": 0.0, "chord_count_rate_noise_std": 0.0,
    "mean_chord_length_noise_std_um": 0.0,
}
COOL = {"jacket_temperature_setpoint": 25.0, "agitator_speed_setpoint": 300.0}


def physics(**parameters: object) -> CrystallizerPhysics:
    _, model, _ = pilot_line_unit("crystallizer")
    plant = make_plant("crystallizer", {**model, **QUIET, **parameters}, seed=3)
    assert isinstance(plant, CrystallizerPhysics)
    return plant


def run(plant: CrystallizerPhysics, seconds: float, commands: dict[str, float], step_s: float = 10.0) -> None:
    for _ in range(round(seconds / step_s)):
        plant.step(step_s, commands)


def solute_inventory(truth: dict) -> float:
    """Dissolved + crystallized solute, kg per kg solvent."""
    return truth["solute_concentration_kg_per_kg"] + KDP["crystal_density"] * KDP["volume_shape_factor"] * truth["mu3"]


def test_physics_is_the_default_crystallizer_plant_and_the_standin_stays_available() -> None:
    assert plant_models("crystallizer") == ("physics", "standin")
    assert isinstance(make_plant("crystallizer", {"volume_m3": 0.02}), CrystallizerPhysics)
    assert isinstance(make_plant("crystallizer", {"plant_model": "standin", "volume_m3": 0.02}), CrystallizerStandIn)
    with pytest.raises(PlantParameterError, match="'plant_model' = 'cfd'; expected one of physics, standin"):
        make_plant("crystallizer", {"plant_model": "cfd"})


def test_saturated_batch_held_at_its_temperature_does_not_crystallize() -> None:
    plant = physics()
    before = plant.truth()
    run(plant, 1200.0, plant.initial_commands())
    after = plant.truth()
    assert abs(after["supersaturation"]) < 1e-4
    assert after["d43_um"] == pytest.approx(before["d43_um"], rel=1e-3)
    assert after["solute_concentration_kg_per_m3"] == pytest.approx(before["solute_concentration_kg_per_m3"],
                                                                     rel=1e-4)
    assert plant.measurements()["temperature"] == pytest.approx(40.0, abs=1e-6)


def test_cooling_grows_the_seed_conserves_solute_and_reports_the_csd() -> None:
    plant = physics()
    start = plant.truth()
    run(plant, 3600.0, COOL)
    end = plant.truth(include_csd=True)
    assert end["temperature_c"] == pytest.approx(25.0, abs=0.5)
    assert end["solute_concentration_kg_per_m3"] < start["solute_concentration_kg_per_m3"] - 30.0
    assert end["supersaturation"] > 0.0
    assert end["d43_um"] > start["d43_um"] + 100.0
    assert 0.1 < end["yield"] < 0.5
    assert 0.0 < end["fines_fraction"] < 0.2
    assert end["mu0"] > start["mu0"]  # secondary nucleation happened
    assert solute_inventory(end) == pytest.approx(solute_inventory(start), rel=1e-3)
    csd = end["csd"]
    assert len(csd["size_um"]) == len(csd["number_density_per_m_per_kg"]) == 200
    assert start["fines_fraction"] < 1e-3  # seeds are N(150, 15) um: 3.3 sigma above 100 um


def test_faster_true_kinetics_desupersaturate_faster() -> None:
    nominal, fast = physics(), physics(growth_rate_factor=1.2, nucleation_rate_factor=1.2)
    assert fast.true_parameters["growth_rate_constant"] == pytest.approx(1.2 * KDP["growth_rate_constant"])
    assert fast.true_parameters["secondary_nucleation_rate_constant"] == pytest.approx(
        1.2 * KDP["secondary_nucleation_rate_constant"])
    run(nominal, 1800.0, COOL)
    run(fast, 1800.0, COOL)
    assert fast.truth()["supersaturation"] < nominal.truth()["supersaturation"]
    assert fast.truth()["yield"] > nominal.truth()["yield"]


def test_solubility_offset_shifts_the_saturated_start() -> None:
    offset = physics(solubility_offset_kg_per_kg=0.01)
    assert offset.truth()["solute_concentration_kg_per_kg"] == pytest.approx(
        physics().truth()["solute_concentration_kg_per_kg"] + 0.01)


def test_jacket_follows_its_setpoint_as_a_first_order_lag() -> None:
    plant = physics(jacket_time_constant_s=60.0)
    run(plant, 60.0, COOL, step_s=1.0)
    expected = 25.0 + (40.0 - 25.0) * math.exp(-1.0)
    assert plant.measurements()["jacket_temperature"] == pytest.approx(expected, abs=0.05)
    assert plant.truth()["jacket_temperature_setpoint_c"] == 25.0


def test_analyser_tags_are_delayed_and_temperatures_are_not() -> None:
    plant = physics(measurement_delay_s=60.0)
    history = []
    for _ in range(180):
        plant.step(5.0, COOL)
        history.append(plant.truth())
    measured = plant.measurements()
    assert measured["temperature"] == pytest.approx(history[-1]["temperature_c"], abs=1e-9)
    delayed = history[-1 - 12]  # 60 s = 12 steps of 5 s earlier
    assert measured["solute_concentration"] == pytest.approx(delayed["solute_concentration_kg_per_m3"], rel=1e-9)
    assert measured["solute_concentration"] != pytest.approx(history[-1]["solute_concentration_kg_per_m3"],
                                                             rel=1e-5)


def test_fbrm_signals_follow_the_stated_moment_model() -> None:
    plant = physics(fbrm_count_coefficient_m2_per_s=0.1, fbrm_chord_length_factor=0.5)
    run(plant, 600.0, COOL)
    truth, measured = plant.truth(), plant.measurements()
    assert measured["chord_count_rate"] == pytest.approx(0.1 * truth["mu1"] * KDP["solvent_density"], rel=1e-9)
    assert measured["mean_chord_length"] == pytest.approx(0.5 * truth["d32_um"], rel=1e-9)


def test_sensor_noise_is_seeded() -> None:
    _, model, _ = pilot_line_unit("crystallizer")
    a, b, c = (make_plant("crystallizer", model, seed=s) for s in (5, 5, 6))
    assert a.measurements() == b.measurements()
    assert a.measurements() != c.measurements()


def test_moment_resolution_agrees_with_the_population_balance_on_d43() -> None:
    fv, moments = physics(), physics(plant_resolution="moments")
    run(fv, 1800.0, COOL)
    run(moments, 1800.0, COOL)
    assert moments.truth()["fines_fraction"] is None
    assert moments.truth()["d43_um"] == pytest.approx(fv.truth()["d43_um"], rel=0.03)


def test_bad_parameters_are_all_reported_by_name() -> None:
    with pytest.raises(PlantParameterError) as info:
        make_plant("crystallizer", {"growth_factor": 1.2, "jacket_time_constant_s": -1.0, "thermal_mode": "slurry",
                                    "seed_loading_kg_per_kg": "lots"})
    message = str(info.value)
    assert "'growth_factor'" in message and "growth_rate_factor" in message
    assert "'jacket_time_constant_s' must be > 0" in message
    assert "'thermal_mode' must be 'jacket'" in message
    assert "'seed_loading_kg_per_kg' must be a finite number" in message


def test_a_scheduled_kinetics_change_switches_the_true_parameters_and_keeps_the_state() -> None:
    changed = physics(kinetics_change_at_s=600.0, changed_growth_rate_factor=0.5, changed_nucleation_rate_factor=3.0)
    steady = physics()
    run(changed, 590.0, COOL)
    run(steady, 590.0, COOL)
    assert changed.truth() == steady.truth()  # nothing changed before its time
    growth = changed.true_parameters["growth_rate_constant"]
    run(changed, 20.0, COOL)
    run(steady, 20.0, COOL)
    assert changed.true_parameters["growth_rate_constant"] == pytest.approx(0.5 * growth)
    assert changed.oracle_model_parameters()["secondary_nucleation_rate_constant"] == \
        pytest.approx(3.0 * KDP["secondary_nucleation_rate_constant"])
    run(changed, 1200.0, COOL)
    run(steady, 1200.0, COOL)
    assert changed.truth()["d43_um"] < steady.truth()["d43_um"]  # slower growth, more nuclei: smaller crystals
    with pytest.raises(PlantParameterError, match="'kinetics_change_at_s' and at least one of"):
        make_plant("crystallizer", {"kinetics_change_at_s": 600.0})
    with pytest.raises(ValueError, match="finite factors >= 0"):
        steady.change_kinetics(growth_rate_factor=-1.0)
