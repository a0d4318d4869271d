"""The chromatography skid on the declared column model: pump, mixer, load-wash-elute program, detectors, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controllers.chromatography.elution_estimator import true_outlet
from controllers.chromatography.pooling_decision import PoolingSpec, pool_on_curves
from hil.plant import Plant, make_plant, plant_models
from hil.plants.column_physics import ColumnPhysics
from hil.plants.column_standin import ColumnStandIn
from hil.plants.parameters import PlantParameterError
from process_models.chromatography.elution_method import MethodDeviation, elution_method_from_table
from process_models.simulator import simulate
from tests.hil.hil_helpers import pilot_line_unit

KIND = "chromatography_column"
QUIET = {
    "plant_model": "physics",
    "uv_noise_std_mau": 0.0, "conductivity_noise_std_ms_per_cm": 0.0, "pressure_noise_std_bar": 0.0,
    "flow_rate_noise_std_ml_per_min": 0.0,
}


def quiet_plant(**overrides: float) -> ColumnPhysics:
    plant = make_plant(KIND, {**QUIET, **overrides}, seed=0)
    assert isinstance(plant, ColumnPhysics)
    return plant


def test_both_plant_models_are_registered() -> None:
    assert set(plant_models(KIND)) == {"physics", "standin"}
    assert isinstance(make_plant(KIND, {"plant_model": "physics"}), ColumnPhysics)
    assert isinstance(make_plant(KIND, {"plant_model": "standin"}), ColumnStandIn)


def test_demo_line_column_steps_with_finite_values_in_range() -> None:
    _, model, tags = pilot_line_unit("capture_column")
    plant = make_plant(KIND, {**model, "plant_model": "physics"}, seed=4)
    assert isinstance(plant, Plant)
    assert {t.name for t in tags} <= set(plant.measured_names) | set(plant.commanded_names)
    for _ in range(50):
        plant.step(0.1, plant.initial_commands())
        values = plant.measurements()
        assert all(math.isfinite(v) for v in values.values())
        assert -5.0 < values["outlet_uv_absorbance"] < 3000.0
        assert 6.0 < values["outlet_conductivity"] < 7.0  # 50 mM NaCl, dilute limit: 6.32 mS/cm
        assert 0.0 < values["column_pressure"] < 20.0
        assert values["flow_rate"] == pytest.approx(1.0, abs=0.05)


def test_buffer_b_step_after_load_and_wash_elutes_a_uv_peak() -> None:
    plant = quiet_plant()
    uv_before: list[float] = []
    while plant.phase != "elute":  # the skid's own program: 0.5 mL load, 2 mL wash at 1 mL/min
        plant.step(1.0, {"buffer_b_fraction_setpoint": 0.0})
        uv_before.append(plant.true_measurements()["outlet_uv_absorbance"])
    assert plant.bound_protein_mol_per_m3 > 0.2  # the feed bound during the load
    conductivity_at_step = plant.true_measurements()["outlet_conductivity"]
    uv, conductivity = [], []
    for _ in range(150):
        plant.step(1.0, {"buffer_b_fraction_setpoint": 100.0})
        values = plant.true_measurements()
        uv.append(values["outlet_uv_absorbance"])
        conductivity.append(values["outlet_conductivity"])
    peak = int(np.argmax(uv))
    assert uv[peak] > 100.0 and uv[peak] > 20.0 * max(uv_before[-30:])
    assert 10 < peak < len(uv) - 10 and uv[-1] < 0.5 * uv[peak]  # a peak, not a step
    assert conductivity_at_step < 6.5 and conductivity[-1] > 60.0  # 500 mM NaCl buffer B
    assert conductivity[peak] > conductivity_at_step + 5.0  # the protein leaves with the salt front
    assert plant.bound_protein_mol_per_m3 < 0.1


def test_pressure_is_proportional_to_the_flow() -> None:
    plant = quiet_plant()
    assert plant.true_measurements()["column_pressure"] > 0.004  # Blake-Kozeny at 1 mL/min: 0.0047 bar
    plant.step(1.0, {})
    low = plant.true_measurements()
    assert plant.interstitial_velocity_m_per_s == pytest.approx(plant_velocity(plant), rel=1e-12)
    for _ in range(30):  # pump lag 2 s
        plant.step(1.0, {"flow_rate_setpoint": 3.0})
    high = plant.true_measurements()
    assert high["flow_rate"] == pytest.approx(3.0, rel=1e-5)
    assert high["column_pressure"] / low["column_pressure"] == pytest.approx(3.0, rel=1e-4)  # Darcy / Blake-Kozeny


def test_noise_free_plant_matches_a_direct_simulation_of_its_declaration() -> None:
    plant = quiet_plant(load_volume_ml=10.0)  # stays in the load phase over the horizon
    buffer_b = 40.0
    times = np.arange(0.0, 91.0, 1.0)
    uv, conductivity = [plant.true_measurements()["outlet_uv_absorbance"]], [
        plant.true_measurements()["outlet_conductivity"]]
    for _ in times[1:]:
        plant.step(1.0, {"buffer_b_fraction_setpoint": buffer_b})
        uv.append(plant.true_measurements()["outlet_uv_absorbance"])
        conductivity.append(plant.true_measurements()["outlet_conductivity"])
    assert plant.phase == "load"
    model = plant.column.model
    salt = 50.0 + (500.0 - 50.0) * buffer_b / 100.0
    inputs = {f"inlet_concentration_{c}": (salt if c == "salt" else 0.05) for c in plant.column.components}
    result = simulate(model, plant.column.initial_state([50.0, 0.0, 0.0, 0.0]), times, inputs,
                      parameters={"interstitial_velocity": plant_velocity(plant)}, rtol=1e-8, atol=1e-10)
    uv_ref = 1000.0 * result.outputs[model.output_slices["outlet_uv_absorbance"].start]
    conductivity_ref = 10.0 * result.outputs[model.output_slices["outlet_conductivity"].start]
    assert max(uv_ref) > 50.0 and conductivity_ref[-1] > 25.0  # the horizon sees breakthrough and the salt front
    # tolerance: 0.01 % of the signal peak (measured: 5e-6; plant: one CVODES run per 1 s step at rtol 1e-6)
    np.testing.assert_allclose(uv, uv_ref, rtol=0, atol=1e-4 * max(uv_ref))
    np.testing.assert_allclose(conductivity, conductivity_ref, rtol=0, atol=1e-4 * max(conductivity_ref))


def plant_velocity(plant: ColumnPhysics) -> float:
    """Interstitial velocity (m/s) at the plant's flow: Q / (A eps_c), A = V_col / L."""
    p = plant.parameter_values
    area_m2 = plant.parameters.column_volume_ml * 1e-6 / p["column_length"]
    return plant.parameters.initial_flow_rate_ml_per_min * 1e-6 / 60.0 / (area_m2 * p["column_porosity"])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("column_volume_l", 1.0, "unknown parameter"),
        ("axial_cells", 2.5, "'axial_cells' must be an integer >= 3"),
        ("load_volume_ml", 0.0, "'load_volume_ml' must be > 0"),
        ("buffer_b_salt_mol_per_m3", -1.0, "'buffer_b_salt_mol_per_m3' must be >= 0"),
    ],
)
def test_bad_parameters_are_refused_by_name(name: str, value: float, message: str) -> None:
    with pytest.raises(PlantParameterError, match=message) as info:
        make_plant(KIND, {"plant_model": "physics", name: value})
    assert name in str(info.value)
    if message == "unknown parameter":
        assert "column_volume_ml" in str(info.value) and "buffer_b_salt_mol_per_m3" in str(info.value)


def test_unknown_command_is_refused_and_noise_is_seeded() -> None:
    plant = make_plant(KIND, {"plant_model": "physics"}, seed=5)
    with pytest.raises(KeyError, match="unknown command 'buffer_b_setpoint'"):
        plant.step(0.1, {"buffer_b_setpoint": 10.0})
    a, b = make_plant(KIND, {"plant_model": "physics"}, seed=7), make_plant(KIND, {"plant_model": "physics"}, seed=7)
    c = make_plant(KIND, {"plant_model": "physics"}, seed=8)
    assert a.measurements() == b.measurements() != c.measurements()


METHOD = {"feed_mol_per_m3": {"cytochrome": 1.0, "ribonuclease": 0.3, "lysozyme": 0.3}}


def test_a_method_run_pools_between_the_cut_setpoints_as_the_method_model_predicts() -> None:
    plant = quiet_plant(method=METHOD, deviation={"feed_factors": {"cytochrome": 0.7}})  # type: ignore[arg-type]
    assert plant.initial_commands()["flow_rate_setpoint"] == pytest.approx(0.9118, rel=1e-3)  # the case's velocity
    for _ in range(1000):
        plant.step(1.0, {"cut_start_time": 550.0, "cut_stop_time": 840.0})
    values = plant.measurements()
    assert values["run_time"] == 1000.0 and values["collection_valve_open"] == 0.0
    spec = PoolingSpec("cytochrome", ("ribonuclease", "lysozyme"), 0.95, 450.0, 1000.0)
    pool = plant.pool(spec.target, spec.impurities)
    assert (pool["start_s"], pool["stop_s"]) == (550.0, 840.0)
    times = np.arange(0.0, 1001.0, 1.0)
    truth = true_outlet(plant.column, elution_method_from_table(METHOD, "method"), times,
                        MethodDeviation(feed_factors={"cytochrome": 0.7}))
    expected_yield, expected_purity = pool_on_curves(times, truth, spec, 550.0, 840.0)
    # the pool is summed per 1-s PLC step (rectangle rule) against the trapezoid on the same grid
    assert pool["purity"] == pytest.approx(expected_purity, abs=1e-3)
    assert pool["yield"] == pytest.approx(expected_yield, abs=5e-3)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"axial_cells": 10.0}, "do not apply to scheme 'dg'"),
    ({"scheme": "fv", "elements": 3.0}, "do not apply to scheme 'fv'"),
    ({"scheme": "weno"}, "'scheme' = 'weno'"),
    ({"deviation": {"feed_factors": {"cytochrome": 0.7}}}, "needs a 'method' table"),
    ({"method": {"feed_mol_per_m3": {"insulin": 1.0}}}, "insulin"),
    ({"method": METHOD, "deviation": {"feed_factors": {"cytochrome": -1.0}}}, "feed_factors"),
])
def test_discretisation_and_method_problems_are_refused_by_name(overrides: dict, message: str) -> None:
    with pytest.raises(PlantParameterError, match=message):
        make_plant(KIND, {"plant_model": "physics", **overrides})
