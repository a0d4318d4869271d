"""The per-step logic shared by the socket virtual PLC and the stepped PLC (hil/plant_image.py): plant ↔ registers."""

from __future__ import annotations

import math

import pytest

from hil.plant import make_plant
from hil.plant_image import PlantImage
from tests.hil.hil_helpers import pilot_line_unit


def crystallizer_image() -> PlantImage:
    kind, model, tags = pilot_line_unit("crystallizer")
    return PlantImage(tags, make_plant(kind, {**model, "plant_model": "physics"}, seed=1))


def test_commanded_registers_start_at_the_plant_commands_and_measurements_are_published_on_demand() -> None:
    image = crystallizer_image()
    for name, value in image.plant.initial_commands().items():
        assert image.registers.get(name) == pytest.approx(value, abs=1e-4)
    assert image.registers.get("jacket_temperature") == 0.0  # nothing published yet
    assert image.publish(held=()) == []
    assert image.registers.get("jacket_temperature") == pytest.approx(  # a fresh noisy reading: within 0.5 K
        image.plant.measurements()["jacket_temperature"], abs=0.5)


def test_a_step_holds_the_commanded_registers_and_a_held_measurement_is_not_published() -> None:
    image = crystallizer_image()
    image.publish(held=())
    jacket_before = image.registers.get("jacket_temperature")
    jacket = image.registers.tag("jacket_temperature")
    image.show_held(jacket)
    assert math.isnan(image.registers.get("jacket_temperature"))
    image.registers.set("jacket_temperature_setpoint", jacket_before - 10.0)
    for _ in range(30):
        image.step(2.0, held={"jacket_temperature"})
    assert math.isnan(image.registers.get("jacket_temperature"))  # held: the plant's value is not published
    image.publish(held=())
    assert image.registers.get("jacket_temperature") < jacket_before - 1.0  # the plant followed the setpoint register
