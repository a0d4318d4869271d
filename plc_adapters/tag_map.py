"""Tag map declarations: where a tag lives in a PLC and how its raw data maps to engineering units.

Engineering value = raw * scale + offset. Raw is the integer or IEEE value stored in the
registers in the declared byte and word order. :func:`parse_modbus_tag` reads one Modbus tag table of a line
config (for the twin's loader and the HIL bench alike), :func:`check_overlaps` the registers of a unit's tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import Enum
from typing import Any

from plc_adapters.config_issues import IssueCollector
from plc_adapters.tag import Direction, Range, TagDescription
from plc_adapters.tag_config import TAG_DESCRIPTION_KEYS, EngineeringUnitLike, limits_fit, parse_tag_fields, tag_table

__all__ = ["ByteOrder", "DataType", "Direction", "ModbusConnection", "Range", "RegisterTable", "TagSpec", "WordOrder",
           "MODBUS_TAG_KEYS", "check_overlaps", "parse_modbus_tag"]

MODBUS_TAG_KEYS = TAG_DESCRIPTION_KEYS | {"table", "address", "data_type", "byte_order", "word_order", "scale",
                                         "offset"}
"""The keys of a Modbus tag table that :func:`parse_modbus_tag` reads."""


class RegisterTable(str, Enum):
    """Modbus data tables. Coils and discrete inputs hold one bit per address."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def writable(self) -> bool:
        return self in (RegisterTable.HOLDING, RegisterTable.COIL)

    @property
    def is_bit_table(self) -> bool:
        return self in (RegisterTable.COIL, RegisterTable.DISCRETE)


class DataType(str, Enum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"

    @property
    def register_count(self) -> int:
        """16-bit registers occupied (1 for bool: one coil/discrete address)."""
        return _REGISTER_COUNT[self]

    @property
    def is_integer(self) -> bool:
        return self in _INTEGER_TYPES


_REGISTER_COUNT = {DataType.INT16: 1, DataType.UINT16: 1, DataType.BOOL: 1, DataType.INT32: 2, DataType.UINT32: 2,
                   DataType.FLOAT32: 2, DataType.FLOAT64: 4}
"""Looked up by member (the virtual PLC's plant loop asks several times per tag and step: no ``.value`` access)."""
_INTEGER_TYPES = frozenset({DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32})


class ByteOrder(str, Enum):
    """Order of the two bytes inside each 16-bit register."""

    BIG = "big"
    LITTLE = "little"


class WordOrder(str, Enum):
    """Order of the 16-bit registers of a multi-register value."""

    BIG = "big"
    LITTLE = "little"


@dataclass(frozen=True, slots=True)
class TagSpec(TagDescription):
    """One tag of a unit whose PLC speaks Modbus: the neutral description plus its register spec.

    The neutral fields (name, direction, unit_code, eu_range, and keyword-only write_limits, max_rate,
    description) are :class:`~plc_adapters.tag.TagDescription`'s.

    Attributes:
        table: Modbus table.
        address: zero-based Modbus address of the first register.
        data_type: raw type in the registers.
        byte_order / word_order: register layout of the raw value.
        scale / offset: engineering value = raw * scale + offset.
    """

    table: RegisterTable
    address: int
    data_type: DataType
    byte_order: ByteOrder = ByteOrder.BIG
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    offset: float = 0.0

    @property
    def register_count(self) -> int:
        return self.data_type.register_count

    @property
    def end_address(self) -> int:
        """One past the last register occupied."""
        return self.address + self.register_count

    @property
    def not_writable_reason(self) -> str | None:
        if self.direction is not Direction.COMMANDED or not self.table.writable:
            return (f"tag is {self.direction.value} in the {self.table.value} table; only commanded holding/coil "
                    "tags are writable")
        return None

    @property
    def address_text(self) -> str:
        return f"{self.table.value} {self.address}"


@dataclass(frozen=True, slots=True)
class ModbusConnection:
    """Where a unit's PLC listens (Modbus TCP)."""

    host: str
    port: int
    unit_id: int = 1
    timeout_s: float = 1.0

    protocol = "modbus"
    """Connection kind: the key of the adapter and virtual-PLC registries."""

    @property
    def endpoint(self) -> str:
        """``modbus://host:port`` (for status and log lines)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"modbus://{host}:{self.port}"

    @property
    def register_space(self) -> tuple[str, int, int]:
        """The register space this connection addresses: units with the same one share a PLC's registers, so
        their tags must not overlap (``(host, port, unit_id)``; None for protocols without shared registers)."""
        return (self.host, self.port, self.unit_id)


def parse_modbus_tag(c: IssueCollector, unit: str, name: str, raw: Any, units: Mapping[str, EngineeringUnitLike],
                     other_keys: Set[str] | None = frozenset()) -> TagSpec | None:
    """One ``[units.UNIT.tags.NAME]`` of a Modbus unit; ``None`` after reporting problems to ``c``.

    ``units``: the engineering units by UNECE code; ``other_keys``: keys of the table other layers read (the twin's
    ``alarms``, ``historize``), or ``None`` not to check for unknown keys."""
    prefix = f"units.{unit}.tags.{name}"
    table_raw = tag_table(c, unit, name, raw, None if other_keys is None else MODBUS_TAG_KEYS | other_keys)
    if table_raw is None:
        return None
    n_before = len(c.issues)
    fields = parse_tag_fields(c, prefix, name, table_raw, units)
    table = c.choice(table_raw, "table", prefix, [t.value for t in RegisterTable])
    data_type = c.choice(table_raw, "data_type", prefix, [d.value for d in DataType])
    address = c.integer(table_raw, "address", prefix, 0, 65535)
    byte_order = c.choice(table_raw, "byte_order", prefix, [b.value for b in ByteOrder], default="big")
    word_order = c.choice(table_raw, "word_order", prefix, [w.value for w in WordOrder], default="big")
    scale = c.number(table_raw, "scale", prefix, default=1.0)
    if scale == 0:
        c.add(f"{prefix}.scale", 0, "a non-zero number")
    offset = c.number(table_raw, "offset", prefix, default=0.0)
    if len(c.issues) > n_before or fields is None or table is None or data_type is None:
        return None
    spec = TagSpec(**fields.as_kwargs(), table=RegisterTable(table), address=address, data_type=DataType(data_type),
                   byte_order=ByteOrder(byte_order), word_order=WordOrder(word_order), scale=scale, offset=offset)
    ok = True
    if spec.end_address > 65536:
        c.add(f"{prefix}.address", address, f"an address leaving room for {spec.register_count} registers (<= 65535)")
        ok = False
    if spec.table.is_bit_table != (spec.data_type is DataType.BOOL):
        c.add(f"{prefix}.data_type", spec.data_type.value,
              "bool for coil/discrete tables, a numeric type for holding/input registers")
        ok = False
    if spec.direction is Direction.COMMANDED and not spec.table.writable:
        c.add(f"{prefix}.table", spec.table.value, "holding or coil for a commanded tag (input/discrete are read-only)")
        ok = False
    return spec if limits_fit(c, prefix, fields) and ok else None


def check_overlaps(c: IssueCollector, unit: str, tags: list[TagSpec]) -> None:
    """Two tags of a unit must not share a register of one table."""
    by_table: dict[RegisterTable, list[TagSpec]] = {}
    for t in tags:
        by_table.setdefault(t.table, []).append(t)
    for table, items in by_table.items():
        items.sort(key=lambda t: t.address)
        for a, b in zip(items, items[1:], strict=False):
            if b.address < a.end_address:
                c.add(f"units.{unit}.tags.{b.name}.address", b.address,
                      f"no overlap with tag '{a.name}' ({table.value} {a.address}..{a.end_address - 1})")
