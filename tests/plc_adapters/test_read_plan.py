"""Read planning: the fewest requests per table, within protocol limits, never splitting a value."""

from __future__ import annotations

import pytest

from plc_adapters import DataType, Direction, Range, RegisterTable, TagSpec, plan_reads


def _tag(name: str, address: int, data_type: DataType = DataType.FLOAT32,
         table: RegisterTable = RegisterTable.HOLDING) -> TagSpec:
    return TagSpec(name=name, direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(0.0, 100.0),
                   table=table, address=address, data_type=data_type)


def _covered(block, tag) -> bool:
    return block.start <= tag.address and tag.end_address <= block.end


def test_300_contiguous_float32_tags_need_5_requests_of_at_most_125_registers():
    tags = [_tag(f"zone_{i}_temperature", 2 * i) for i in range(300)]
    blocks = plan_reads(tags)
    assert len(blocks) == 5
    assert all(b.count <= 125 for b in blocks)
    assert [b.count for b in blocks] == [124, 124, 124, 124, 104]  # 62 float32 per full block
    assert sum(len(b.tags) for b in blocks) == 300
    assert all(_covered(b, t) for b in blocks for t in b.tags)


def test_gap_splits_blocks_unless_max_gap_allows_it():
    tags = [_tag("inlet_temperature", 0), _tag("outlet_temperature", 2), _tag("jacket_temperature", 10)]
    strict = plan_reads(tags)
    assert [(b.start, b.count) for b in strict] == [(0, 4), (10, 2)]
    loose = plan_reads(tags, max_gap=6)
    assert [(b.start, b.count, len(b.tags)) for b in loose] == [(0, 12, 3)]
    assert [(b.start, b.count) for b in plan_reads(tags, max_gap=5)] == [(0, 4), (10, 2)]


def test_tables_are_never_mixed_even_at_the_same_addresses():
    tags = [
        _tag("level", 0, table=RegisterTable.INPUT),
        _tag("level_setpoint", 0, table=RegisterTable.HOLDING),
        _tag("agitator_running", 0, DataType.BOOL, RegisterTable.DISCRETE),
        _tag("agitator_start", 0, DataType.BOOL, RegisterTable.COIL),
        _tag("level_high", 1, DataType.BOOL, RegisterTable.DISCRETE),
    ]
    blocks = plan_reads(tags)
    assert [(b.table, b.start, b.count) for b in blocks] == [
        (RegisterTable.HOLDING, 0, 2), (RegisterTable.INPUT, 0, 2),
        (RegisterTable.COIL, 0, 1), (RegisterTable.DISCRETE, 0, 2),
    ]
    assert all(t.table is b.table for b in blocks for t in b.tags)


def test_float64_is_never_split_across_blocks():
    tags = [_tag(f"t{i}", 2 * i) for i in range(61)]  # registers 0..121
    tags.append(_tag("totalised_flow", 122, DataType.FLOAT64))  # registers 122..125 would make 126
    blocks = plan_reads(tags)
    assert [(b.start, b.count) for b in blocks] == [(0, 122), (122, 4)]
    assert blocks[1].tags[0].name == "totalised_flow"


def test_bits_merge_up_to_2000_per_request():
    tags = [_tag(f"valve_{i}_open", i, DataType.BOOL, RegisterTable.COIL) for i in range(2500)]
    blocks = plan_reads(tags)
    assert [(b.start, b.count) for b in blocks] == [(0, 2000), (2000, 500)]
    assert [(b.start, b.count) for b in plan_reads(tags, max_bits=1000)] == [(0, 1000), (1000, 1000), (2000, 500)]


def test_overlapping_tags_share_one_request_and_slices_point_at_their_registers():
    status_word = _tag("status_word", 10, DataType.UINT16)
    status_long = _tag("status_long", 10, DataType.UINT32)
    pressure = _tag("pressure", 12)
    blocks = plan_reads([pressure, status_long, status_word])
    assert len(blocks) == 1
    block = blocks[0]
    assert (block.start, block.count) == (10, 4)
    values = [100, 101, 102, 103]
    assert values[block.slice_for(status_word)] == [100]
    assert values[block.slice_for(status_long)] == [100, 101]
    assert values[block.slice_for(pressure)] == [102, 103]


def test_smaller_register_limit_is_respected():
    tags = [_tag(f"t{i}", 2 * i) for i in range(10)]
    blocks = plan_reads(tags, max_registers=8)
    assert [b.count for b in blocks] == [8, 8, 4]


@pytest.mark.parametrize(
    ("tags", "kwargs", "message"),
    [
        ([_tag("a", 0), _tag("a", 2)], {}, "'a' is declared more than once"),
        ([_tag("valve", 0, DataType.FLOAT32, RegisterTable.COIL)], {}, "'valve'.*must be 'bool'"),
        ([_tag("far", 65535)], {}, "'far'.*address range"),
        ([_tag("a", 0)], {"max_registers": 126}, "max_registers"),
        ([_tag("a", 0)], {"max_registers": 3}, "max_registers"),
        ([_tag("a", 0)], {"max_bits": 2001}, "max_bits"),
        ([_tag("a", 0)], {"max_gap": -1}, "max_gap"),
    ],
)
def test_bad_tags_or_limits_are_rejected_with_a_clear_message(tags, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_reads(tags, **kwargs)
