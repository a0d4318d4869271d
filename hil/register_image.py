"""The register image of a virtual PLC: the 16-bit holding and input registers its tags occupy.

The image is the single source of truth for register contents. The plant loop writes measured tags into
it and reads commanded tags from it (through ``plc_adapters.modbus_codec``, so the twin's adapter and the
virtual PLC agree on the wire format by construction); the Modbus server serves and updates it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from plc_adapters.modbus_codec import decode, encode
from plc_adapters.tag_map import DataType, RegisterTable, TagSpec

_RAW_LIMITS = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.FLOAT32: (-3.4028234663852886e38, 3.4028234663852886e38),
    DataType.FLOAT64: (-1.7976931348623157e308, 1.7976931348623157e308),
}


def representable_range(tag: TagSpec) -> tuple[float, float]:
    """Engineering-unit interval the tag's raw type can hold (raw limits through scale and offset)."""
    low, high = _RAW_LIMITS[tag.data_type]
    a, b = low * tag.scale + tag.offset, high * tag.scale + tag.offset
    return (min(a, b), max(a, b))


def saturate(tag: TagSpec, value: float) -> float:
    """Clamp ``value`` to what the tag's raw type can hold, as a transmitter output saturates."""
    low, high = representable_range(tag)
    return min(max(value, low), high)


class RegisterImage:
    """Holding and input registers sized to the highest register a tag occupies in each table."""

    def __init__(self, tags: Iterable[TagSpec]) -> None:
        self._tags = {tag.name: tag for tag in tags}
        sizes = {RegisterTable.HOLDING: 1, RegisterTable.INPUT: 1}
        for tag in self._tags.values():
            sizes[tag.table] = max(sizes[tag.table], tag.end_address)
        self._registers = {table: [0] * size for table, size in sizes.items()}

    def size(self, table: RegisterTable) -> int:
        """Number of registers (addresses 0 .. size-1) the table holds."""
        return len(self._registers[table])

    def table(self, table: RegisterTable) -> list[int]:
        """The live register list of ``table`` (mutated in place by writers)."""
        return self._registers[table]

    def read(self, table: RegisterTable, address: int, count: int) -> list[int]:
        """Copy of ``count`` registers of ``table`` from ``address``."""
        registers = self._registers[table]
        if address < 0 or count < 0 or address + count > len(registers):
            raise IndexError(
                f"{table.value} registers {address}..{address + count - 1} outside 0..{len(registers) - 1}"
            )
        return registers[address : address + count]

    def write(self, table: RegisterTable, address: int, values: Sequence[int]) -> None:
        """Store raw 16-bit ``values`` from ``address``."""
        registers = self._registers[table]
        if address < 0 or address + len(values) > len(registers):
            raise IndexError(
                f"{table.value} registers {address}..{address + len(values) - 1} outside 0..{len(registers) - 1}"
            )
        registers[address : address + len(values)] = [int(v) & 0xFFFF for v in values]

    def tag(self, name: str) -> TagSpec:
        try:
            return self._tags[name]
        except KeyError:
            raise KeyError(f"unknown tag '{name}'; tags: {', '.join(self._tags)}") from None

    def get(self, name: str) -> float:
        """Decode the tag's current registers into its engineering value."""
        tag = self.tag(name)
        return decode(tag, self.read(tag.table, tag.address, tag.register_count))

    def set(self, name: str, value: float) -> bool:
        """Encode ``value`` (saturated to the raw type) into the tag's registers; False (nothing written) if
        the value is not finite."""
        if not math.isfinite(value):
            return False
        tag = self.tag(name)
        self.write(tag.table, tag.address, encode(tag, saturate(tag, value)))
        return True
