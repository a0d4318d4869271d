"""The Modbus decode rule (registers → sample with quality), shared by the adapter's scan and the stepped PLC."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from plc_adapters import CodecError, DataType, Direction, Quality, Range, RegisterTable, TagSpec, raw_to_registers
from plc_adapters.modbus_sample import sample_from_registers

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
LEVEL = TagSpec("level", Direction.MEASURED, "MTR", Range(0.0, 2.0), table=RegisterTable.INPUT, address=0,
                data_type=DataType.FLOAT32)


def test_a_value_inside_eu_range_is_good() -> None:
    sample = sample_from_registers(LEVEL, raw_to_registers(1.25, DataType.FLOAT32), WHEN, last_value=0.5)
    assert (sample.tag, sample.value, sample.quality, sample.source_timestamp) == ("level", 1.25, Quality.GOOD, WHEN)


def test_a_value_outside_eu_range_is_kept_and_uncertain() -> None:
    sample = sample_from_registers(LEVEL, raw_to_registers(2.5, DataType.FLOAT32), WHEN, last_value=0.5)
    assert sample.value == 2.5
    assert sample.quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED


@pytest.mark.parametrize("raw", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_a_device_failure_with_the_last_value(raw: float) -> None:
    sample = sample_from_registers(LEVEL, raw_to_registers(raw, DataType.FLOAT32), WHEN, last_value=0.5)
    assert (sample.value, sample.quality) == (0.5, Quality.BAD_DEVICE_FAILURE)


def test_undecodable_registers_are_a_device_failure_and_reported() -> None:
    errors: list[CodecError] = []
    sample = sample_from_registers(LEVEL, [0x4000], WHEN, last_value=None, on_codec_error=errors.append)
    assert (sample.value, sample.quality) == (None, Quality.BAD_DEVICE_FAILURE)
    assert len(errors) == 1 and "float32 needs 2 registers" in str(errors[0])
