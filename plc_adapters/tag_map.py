"""Tag map declarations: where a tag lives in a PLC and how its raw data maps to engineering units.

Engineering value = raw * scale + offset. Raw is the integer or IEEE value stored in the
registers in the declared byte and word order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from plc_adapters.tag import Direction, Range, TagDescription

__all__ = ["ByteOrder", "DataType", "Direction", "ModbusConnection", "Range", "RegisterTable", "TagSpec", "WordOrder"]


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
        return {"int16": 1, "uint16": 1, "bool": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}[
            self.value
        ]

    @property
    def is_integer(self) -> bool:
        return self in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32)


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
