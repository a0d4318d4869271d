"""The numpy block decoder (plc_adapters.modbus_sample.BlockDecoder) against the scalar decode rule
(sample_from_registers): the same value bit for bit and the same quality for every tag, over every data type,
byte order and word order, with scale/offset, values inside and outside eu_range, NaN/inf patterns, and bit tables."""

from __future__ import annotations

import itertools
import math
import random
import struct
from datetime import UTC, datetime

import pytest

from plc_adapters.modbus_codec import raw_to_registers
from plc_adapters.modbus_sample import BlockDecoder, sample_from_registers
from plc_adapters.quality import Quality
from plc_adapters.read_plan import ReadBlock, plan_reads
from plc_adapters.tag import Range
from plc_adapters.tag_map import ByteOrder, DataType, Direction, RegisterTable, TagSpec, WordOrder

T = datetime(2026, 12, 7, tzinfo=UTC)
REGISTER_TYPES = [d for d in DataType if d is not DataType.BOOL]


def _tags() -> list[TagSpec]:
    """One tag per (register data type, byte order, word order, scale/offset), packed into holding registers."""
    tags, address = [], 0
    for k, (data_type, byte_order, word_order, (scale, offset)) in enumerate(itertools.product(
            REGISTER_TYPES, ByteOrder, WordOrder, [(1.0, 0.0), (0.1, -40.0), (2.5, 3.0)])):
        tags.append(TagSpec(name=f"t{k}", direction=Direction.MEASURED, unit_code="CEL",
                            eu_range=Range(-1000.0, 1000.0), table=RegisterTable.HOLDING, address=address,
                            data_type=data_type, byte_order=byte_order, word_order=word_order, scale=scale,
                            offset=offset))
        address += data_type.register_count
    return tags


def _raw_for(tag: TagSpec, rng: random.Random) -> int | float:
    """A raw value of the tag's type: in range, out of range, or (floats) NaN / ±inf."""
    dt = tag.data_type
    if dt in (DataType.FLOAT32, DataType.FLOAT64):
        pick = rng.random()
        if pick < 0.1:
            return rng.choice([math.nan, math.inf, -math.inf])
        value = rng.uniform(-3000.0, 3000.0)
        return struct.unpack(">f", struct.pack(">f", value))[0] if dt is DataType.FLOAT32 else value
    bits = 16 if dt.register_count == 1 else 32
    signed = dt in (DataType.INT16, DataType.INT32)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    return rng.choice([rng.randint(low, high), rng.randint(-200, 200) if signed else rng.randint(0, 400)])


def _assert_same(block: ReadBlock, registers: list[int], last_value: float | None) -> None:
    decoded = BlockDecoder(block).decode(registers)
    assert decoded is not None
    values, verdicts = decoded
    for i, tag in enumerate(block.tags):
        scalar = sample_from_registers(tag, registers[block.slice_for(tag)], T, last_value)
        verdict = int(verdicts[i])
        expected = {Quality.GOOD: 0, Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED: 1,
                    Quality.BAD_DEVICE_FAILURE: 2}[scalar.quality]
        assert verdict == expected, (tag, registers[block.slice_for(tag)], scalar)
        if verdict != 2:
            assert struct.pack("<d", float(values[i])) == struct.pack("<d", scalar.value), (tag, scalar)


@pytest.mark.parametrize("seed", range(20))
def test_the_block_decode_equals_the_scalar_decode_over_every_register_type_and_order(seed: int):
    rng = random.Random(seed)
    tags = _tags()
    registers: list[int] = []
    for tag in tags:
        registers += raw_to_registers(_raw_for(tag, rng), tag.data_type, tag.byte_order, tag.word_order)
    block = ReadBlock(RegisterTable.HOLDING, 0, len(registers), tuple(tags))
    _assert_same(block, registers, last_value=7.0)


def test_random_register_patterns_decode_the_same_in_blocks_of_the_read_plan():
    """Arbitrary 16-bit patterns (every NaN payload and denormal included), split into the adapter's read blocks."""
    rng = random.Random(1)
    tags = _tags()
    registers = [rng.randrange(0, 0x10000) for _ in range(tags[-1].end_address)]
    blocks = plan_reads(tags)
    assert len(blocks) > 1
    for block in blocks:
        _assert_same(block, registers[block.start:block.end], last_value=None)


def test_bit_tables_and_bool_registers_decode_the_same():
    coils = [TagSpec(name=f"c{i}", direction=Direction.MEASURED, unit_code="C62", eu_range=Range(0.0, 1.0),
                     table=RegisterTable.COIL, address=i, data_type=DataType.BOOL) for i in range(10)]
    _assert_same(ReadBlock(RegisterTable.COIL, 0, 10, tuple(coils)), [i % 2 for i in range(10)], None)
    flags = [TagSpec(name=f"b{i}", direction=Direction.MEASURED, unit_code="C62", eu_range=Range(0.0, 0.5),
                     table=RegisterTable.HOLDING, address=i, data_type=DataType.BOOL, scale=2.0)
             for i in range(4)]  # a set flag scales to 2.0, outside its eu_range: Uncertain
    _assert_same(ReadBlock(RegisterTable.HOLDING, 0, 4, tuple(flags)), [0, 1, 0xFFFF, 0], None)


def test_a_register_outside_16_bits_leaves_the_block_to_the_scalar_decode():
    tag = TagSpec(name="t", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-1e9, 1e9),
                  table=RegisterTable.HOLDING, address=0, data_type=DataType.UINT16)
    decoder = BlockDecoder(ReadBlock(RegisterTable.HOLDING, 0, 1, (tag,)))
    assert decoder.decode([0x10000]) is None
    assert decoder.decode([-1]) is None
    assert sample_from_registers(tag, [0x10000], T, 3.0).quality is Quality.BAD_DEVICE_FAILURE
