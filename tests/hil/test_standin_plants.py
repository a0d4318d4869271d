"""The crystallizer and column stand-ins respond to their setpoints in the plausible direction."""

from __future__ import annotations

import pytest

from hil.plant import make_plant

CRYSTALLIZER_QUIET = {
    "plant_model": "standin",
    "temperature_noise_std_c": 0.0, "jacket_temperature_noise_std_c": 0.0,
    "solute_concentration_noise_std_kg_per_m3": 0.0, "chord_count_rate_noise_std": 0.0,
    "mean_chord_length_noise_std_um": 0.0,
}
COLUMN_QUIET = {
    "plant_model": "standin",  # the physics column is the default (tests/hil/test_column_physics.py)
    "uv_noise_std_mau": 0.0, "conductivity_noise_std_ms_per_cm": 0.0, "pressure_noise_std_bar": 0.0,
    "flow_rate_noise_std_ml_per_min": 0.0,
}


def test_crystallizer_stays_clear_while_undersaturated() -> None:
    plant = make_plant("crystallizer", CRYSTALLIZER_QUIET)
    for _ in range(600):
        plant.step(1.0, plant.initial_commands())
    values = plant.measurements()
    assert values["chord_count_rate"] == 0.0
    assert values["solute_concentration"] == pytest.approx(220.0)


def test_cooling_the_crystallizer_nucleates_and_grows_crystals() -> None:
    plant = make_plant("crystallizer", CRYSTALLIZER_QUIET)
    before = plant.measurements()
    for _ in range(2400):
        plant.step(2.0, {"jacket_temperature_setpoint": 20.0, "agitator_speed_setpoint": 300.0})
    after = plant.measurements()
    assert after["temperature"] == pytest.approx(20.0, abs=0.5)
    assert after["solute_concentration"] < before["solute_concentration"] - 50.0
    assert after["solute_concentration"] >= plant.solubility_kg_per_m3 - 1e-6  # type: ignore[attr-defined]
    assert after["chord_count_rate"] > 100.0
    assert 10.0 < after["mean_chord_length"] < 2000.0
    # dissolved + crystal solute is conserved
    assert after["solute_concentration"] + plant.crystal_mass_kg_per_m3 == pytest.approx(220.0)  # type: ignore[attr-defined]


def test_column_pressure_follows_the_flow_setpoint() -> None:
    plant = make_plant("chromatography_column", COLUMN_QUIET)
    low = plant.measurements()["column_pressure"]
    for _ in range(100):
        plant.step(0.2, {"flow_rate_setpoint": 4.0})
    values = plant.measurements()
    assert values["flow_rate"] == pytest.approx(4.0, rel=1e-3)
    assert values["column_pressure"] > 3.0 * low


def test_salt_step_elutes_the_bound_protein_as_a_uv_peak() -> None:
    plant = make_plant("chromatography_column", COLUMN_QUIET)
    uv, conductivity = [], []
    for _ in range(1200):
        plant.step(0.5, {"flow_rate_setpoint": 1.0, "buffer_b_fraction_setpoint": 100.0})
        values = plant.measurements()
        uv.append(values["outlet_uv_absorbance"])
        conductivity.append(values["outlet_conductivity"])
    assert conductivity[-1] == pytest.approx(90.0, rel=0.01)
    assert all(b >= a - 1e-9 for a, b in zip(conductivity, conductivity[1:], strict=False))
    peak = max(range(len(uv)), key=uv.__getitem__)
    assert 0 < peak < len(uv) - 1
    assert uv[peak] > 100.0 and uv[-1] < 0.1 * uv[peak]
    assert plant.bound_protein_mg < 0.1  # type: ignore[attr-defined]
