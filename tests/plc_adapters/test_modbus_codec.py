"""The codec between 16-bit registers and engineering values, checked against known byte patterns."""

from __future__ import annotations

import math

import pytest

from plc_adapters import (
    ByteOrder,
    CodecError,
    DataType,
    Direction,
    Range,
    RegisterTable,
    TagSpec,
    WordOrder,
    decode,
    encode,
    raw_to_registers,
    registers_to_raw,
)

B, L = ByteOrder.BIG, ByteOrder.LITTLE
WB, WL = WordOrder.BIG, WordOrder.LITTLE
# The usual names: ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA both swapped.
ORDERS = {"ABCD": (B, WB), "CDAB": (B, WL), "BADC": (L, WB), "DCBA": (L, WL)}

KNOWN_PATTERNS = [
    # (data type, raw value, {order name: registers})
    (DataType.FLOAT32, 123.456, {"ABCD": [0x42F6, 0xE979], "CDAB": [0xE979, 0x42F6],
                                 "BADC": [0xF642, 0x79E9], "DCBA": [0x79E9, 0xF642]}),
    (DataType.INT16, -2, {"ABCD": [0xFFFE], "CDAB": [0xFFFE], "BADC": [0xFEFF], "DCBA": [0xFEFF]}),
    (DataType.UINT16, 0x1234, {"ABCD": [0x1234], "CDAB": [0x1234], "BADC": [0x3412], "DCBA": [0x3412]}),
    (DataType.UINT32, 0x12345678, {"ABCD": [0x1234, 0x5678], "CDAB": [0x5678, 0x1234],
                                   "BADC": [0x3412, 0x7856], "DCBA": [0x7856, 0x3412]}),
    (DataType.INT32, -123456, {"ABCD": [0xFFFE, 0x1DC0], "CDAB": [0x1DC0, 0xFFFE],
                               "BADC": [0xFEFF, 0xC01D], "DCBA": [0xC01D, 0xFEFF]}),
    (DataType.FLOAT64, 123.456, {"ABCD": [0x405E, 0xDD2F, 0x1A9F, 0xBE77], "CDAB": [0xBE77, 0x1A9F, 0xDD2F, 0x405E],
                                 "BADC": [0x5E40, 0x2FDD, 0x9F1A, 0x77BE], "DCBA": [0x77BE, 0x9F1A, 0x2FDD, 0x5E40]}),
]


def _tag(data_type: DataType, order: str = "ABCD", scale: float = 1.0, offset: float = 0.0) -> TagSpec:
    byte_order, word_order = ORDERS[order]
    return TagSpec(
        name="reactor_temperature", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-1e9, 1e9),
        table=RegisterTable.HOLDING, address=0, data_type=data_type, byte_order=byte_order, word_order=word_order,
        scale=scale, offset=offset,
    )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("data_type", "raw", "patterns"), KNOWN_PATTERNS, ids=[p[0].value for p in KNOWN_PATTERNS])
def test_raw_values_pack_to_known_register_patterns_and_back(data_type, raw, patterns, order):
    byte_order, word_order = ORDERS[order]
    registers = raw_to_registers(raw, data_type, byte_order, word_order)
    assert registers == patterns[order]
    back = registers_to_raw(registers, data_type, byte_order, word_order)
    if data_type is DataType.FLOAT32:
        assert back == pytest.approx(raw, rel=1e-7)
    else:
        assert back == raw


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("data_type", [t for t in DataType if t is not DataType.BOOL])
def test_engineering_values_round_trip_for_every_type_and_order(data_type, order):
    tag = _tag(data_type, order, scale=0.5, offset=-20.0)
    value = 100.5  # raw 241, exact in every type
    registers = encode(tag, value)
    assert len(registers) == data_type.register_count
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(tag, registers) == value


def test_bool_is_one_address_holding_one_or_zero():
    tag = _tag(DataType.BOOL)
    assert encode(tag, 1.0) == [1]
    assert encode(tag, 0.0) == [0]
    assert decode(tag, [1]) == 1.0
    assert decode(tag, [0]) == 0.0


def test_scale_and_offset_map_raw_counts_to_engineering_units():
    tag = _tag(DataType.INT16, scale=0.1, offset=-10.0)  # raw tenths of a degree, shifted by -10 °C
    assert decode(tag, [250]) == pytest.approx(15.0)
    assert encode(tag, 15.0) == [250]
    assert encode(tag, 15.04) == [250]  # integers round to the nearest count
    assert encode(tag, -12.5) == raw_to_registers(-25, DataType.INT16)


@pytest.mark.parametrize(
    ("data_type", "value"),
    [(DataType.INT16, 40000), (DataType.INT16, -40000), (DataType.UINT16, -1), (DataType.UINT16, 70000),
     (DataType.INT32, 2**31), (DataType.UINT32, -1), (DataType.FLOAT32, 1e39)],
)
def test_value_that_does_not_fit_the_raw_type_raises_codec_error(data_type, value):
    with pytest.raises(CodecError, match="does not fit"):
        encode(_tag(data_type), value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_refused_by_the_codec(value):
    with pytest.raises(CodecError, match="reactor_temperature"):
        encode(_tag(DataType.FLOAT32), value)


def test_value_that_scales_to_infinity_is_refused():
    with pytest.raises(CodecError, match="non-finite"):
        encode(_tag(DataType.FLOAT64, scale=1e-300), 1e300)


def test_wrong_register_count_or_non_16_bit_register_raises_codec_error():
    with pytest.raises(CodecError, match="needs 2 registers"):
        registers_to_raw([1], DataType.FLOAT32)
    with pytest.raises(CodecError, match="16-bit"):
        registers_to_raw([0x1_0000], DataType.UINT16)
    with pytest.raises(CodecError, match="16-bit"):
        registers_to_raw([-1, 0], DataType.INT32)


def test_a_value_between_two_integer_register_steps_is_not_representable_but_float_registers_take_anything():
    from plc_adapters.modbus_codec import not_representable

    assert "150.7 is not a whole multiple of 1" in not_representable(_tag(DataType.UINT16), 150.7)
    assert not_representable(_tag(DataType.UINT16), 150.0) is None
    assert not_representable(_tag(DataType.INT16, scale=0.01), 45.23) is None  # 4523 raw, float error tolerated
    assert "from 10" in not_representable(_tag(DataType.INT32, scale=0.5, offset=10.0), 10.2)
    assert not_representable(_tag(DataType.FLOAT32), 150.7) is None
    assert encode(_tag(DataType.UINT16), 150.7) == [151]  # the twin's own computed setpoints are still rounded
