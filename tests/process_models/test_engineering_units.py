"""UNECE codes → OPC UA UnitId (OPC 10000-8 §5.6.3) and SI conversions."""

import pytest

from process_models.engineering_units import UNITS_BY_CODE, lookup_unit


@pytest.mark.parametrize(("code", "unit_id"), [("CEL", 4408652), ("MTR", 5067858), ("41", 13361), ("4H", 13384)])
def test_unit_id_packs_ascii_of_the_code(code, unit_id):
    assert UNITS_BY_CODE[code].unit_id == unit_id


@pytest.mark.parametrize(
    ("code", "value", "si"),
    [("CEL", 25.0, 298.15), ("MQH", 3.6, 1e-3), ("41", 60.0, 1e-6), ("4H", 250.0, 2.5e-4), ("BAR", 2.0, 2e5),
     ("P1", 40.0, 0.4), ("RPM", 120.0, 2.0), ("H61", 10.0, 1.0)],
)
def test_si_conversion_round_trips(code, value, si):
    unit = UNITS_BY_CODE[code]
    assert unit.to_si(value) == pytest.approx(si)
    assert unit.from_si(unit.to_si(value)) == pytest.approx(value)


def test_unknown_code_is_none():
    assert lookup_unit("XYZ") is None
