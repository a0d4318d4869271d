"""make_plant builds each kind from the demo line's model parameters and refuses bad input by name."""

from __future__ import annotations

import pytest

from hil.plant import PLANT_KINDS, Plant, make_plant
from hil.plants.parameters import PlantParameterError
from tests.hil.hil_helpers import pilot_line_unit


@pytest.mark.parametrize("unit", ["feed_tank", "crystallizer", "capture_column"])
def test_demo_line_units_build_with_their_model_parameters(unit: str) -> None:
    kind, parameters, tags = pilot_line_unit(unit)
    plant = make_plant(kind, parameters, seed=1)
    assert isinstance(plant, Plant)
    assert plant.kind == kind
    names = set(plant.measured_names) | set(plant.commanded_names)
    assert {tag.name for tag in tags} <= names
    assert set(plant.initial_commands()) == set(plant.commanded_names)
    plant.step(1.0, plant.initial_commands())
    assert set(plant.measurements()) == set(plant.measured_names)


def test_parameters_override_the_defaults() -> None:
    plant = make_plant("mixing_tank", {"tank_cross_section_m2": 2.5, "initial_level_m": 1.2})
    assert plant.parameters.tank_cross_section_m2 == 2.5  # type: ignore[attr-defined]
    assert plant.level_m == 1.2  # type: ignore[attr-defined]


def test_unknown_kind_lists_the_known_kinds() -> None:
    with pytest.raises(PlantParameterError, match="unknown plant kind 'evaporator'") as info:
        make_plant("evaporator", {})
    for kind in PLANT_KINDS:
        assert kind in str(info.value)


def test_unknown_parameter_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(PlantParameterError) as info:
        make_plant("mixing_tank", {"tank_area_m2": 1.0})
    message = str(info.value)
    assert "'tank_area_m2'" in message
    assert "tank_cross_section_m2" in message and "outlet_valve_coefficient_m2_5_per_s" in message


@pytest.mark.parametrize("value", ["1.0", float("nan"), float("inf"), True, None])
def test_non_numeric_parameter_is_refused(value: object) -> None:
    with pytest.raises(PlantParameterError, match="'jacket_area_m2' must be a finite number"):
        make_plant("mixing_tank", {"jacket_area_m2": value})


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [
        ("mixing_tank", "tank_cross_section_m2", 0.0),
        ("mixing_tank", "outlet_valve_coefficient_m2_5_per_s", -1e-4),
        ("mixing_tank", "level_noise_std_m", -0.1),
        ("crystallizer", "volume_m3", -0.02),
        ("chromatography_column", "column_volume_ml", 0.0),
    ],
)
def test_parameter_outside_its_physical_range_is_refused(kind: str, name: str, value: float) -> None:
    with pytest.raises(PlantParameterError, match=f"'{name}' must be"):
        make_plant(kind, {name: value})
