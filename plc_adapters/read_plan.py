"""Read planning: merge a unit's tags into the fewest Modbus read requests.

Tags are grouped per table (holding, input, coil, discrete; tables are never mixed) and sorted by
address. Consecutive tags are merged into one request while the gap between the end of the block and
the next tag is at most ``max_gap`` addresses (default 0: strictly contiguous or overlapping tags only,
because reading unmapped addresses makes many PLCs answer with an "illegal data address" exception)
and the block stays within the protocol limit: 125 registers per request for holding/input registers
(Modbus Application Protocol v1.1b3 §6.3/6.4) and 2000 bits for coils/discrete inputs (§6.1/6.2).
A multi-register value (e.g. a float64) is never split across two requests. Greedy merging in
address order gives the fewest requests for these rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plc_adapters.tag_map import DataType, RegisterTable, TagSpec

MAX_READ_REGISTERS = 125
"""Largest register count of one read holding/input registers request (function codes 3 and 4)."""

MAX_READ_BITS = 2000
"""Largest bit count of one read coils/discrete inputs request (function codes 1 and 2)."""

MODBUS_ADDRESS_SPACE = 65536
"""Addresses per table (zero-based 0..65535)."""

_TABLE_ORDER = (RegisterTable.HOLDING, RegisterTable.INPUT, RegisterTable.COIL, RegisterTable.DISCRETE)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` addresses of ``table`` from ``start``, covering ``tags``."""

    table: RegisterTable
    start: int
    count: int
    tags: tuple[TagSpec, ...]

    @property
    def end(self) -> int:
        """One past the last address read."""
        return self.start + self.count

    def slice_for(self, tag: TagSpec) -> slice:
        """Where ``tag``'s registers (or bit) sit in this block's response values."""
        offset = tag.address - self.start
        return slice(offset, offset + tag.register_count)


def validate_tags(tags: Sequence[TagSpec]) -> None:
    """Raise ValueError naming the tag if the tag list cannot be read from a Modbus device."""
    seen: set[str] = set()
    for tag in tags:
        if tag.name in seen:
            raise ValueError(f"tag '{tag.name}' is declared more than once")
        seen.add(tag.name)
        if tag.table.is_bit_table and tag.data_type is not DataType.BOOL:
            raise ValueError(
                f"tag '{tag.name}': table {tag.table.value} holds single bits, so data_type must be 'bool', "
                f"got '{tag.data_type.value}'"
            )
        if tag.address < 0 or tag.end_address > MODBUS_ADDRESS_SPACE:
            raise ValueError(
                f"tag '{tag.name}': address {tag.address} ({tag.register_count} registers) is outside the "
                f"Modbus address range 0..{MODBUS_ADDRESS_SPACE - 1}"
            )
        if tag.scale == 0:
            raise ValueError(f"tag '{tag.name}': scale must be non-zero")


def plan_reads(
    tags: Sequence[TagSpec], max_registers: int = MAX_READ_REGISTERS, max_bits: int = MAX_READ_BITS,
    max_gap: int = 0,
) -> list[ReadBlock]:
    """Merge ``tags`` into the fewest read requests (see module docstring for the rules).

    Args:
        tags: the unit's tags (measured and commanded; commanded tags are read back).
        max_registers: largest register count per request (1..125; lower it for PLCs with smaller buffers).
        max_bits: largest bit count per coil/discrete request (1..2000).
        max_gap: largest run of unused addresses read to join two tags into one request (>= 0).

    Returns:
        Blocks ordered by table (holding, input, coil, discrete) then address.

    Raises:
        ValueError: a bad limit, or a tag that cannot be read (duplicate name, non-bool tag in a bit
            table, address out of range, zero scale).
    """
    if not 4 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be in 4..{MAX_READ_REGISTERS} (a float64 needs 4), got {max_registers}")
    if not 1 <= max_bits <= MAX_READ_BITS:
        raise ValueError(f"max_bits must be in 1..{MAX_READ_BITS}, got {max_bits}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0 addresses, got {max_gap}")
    validate_tags(tags)

    blocks: list[ReadBlock] = []
    for table in _TABLE_ORDER:
        limit = max_bits if table.is_bit_table else max_registers
        in_table = sorted((t for t in tags if t.table is table), key=lambda t: (t.address, t.end_address, t.name))
        current: list[TagSpec] = []
        start = end = 0
        for tag in in_table:
            if current and tag.address <= end + max_gap and max(end, tag.end_address) - start <= limit:
                current.append(tag)
                end = max(end, tag.end_address)
                continue
            if current:
                blocks.append(ReadBlock(table, start, end - start, tuple(current)))
            current, start, end = [tag], tag.address, tag.end_address
        if current:
            blocks.append(ReadBlock(table, start, end - start, tuple(current)))
    return blocks
