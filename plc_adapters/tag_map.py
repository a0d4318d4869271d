"""Tag map declarations: where a tag lives in a PLC and how its raw data maps to engineering units.

Engineering value = raw * scale + offset. Raw is the integer or IEEE value stored in the
registers in the declared byte and word order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Direction(str, Enum):
    MEASURED = "measured"
    COMMANDED = "commanded"


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
class Range:
    """Closed interval [low, high] in engineering units."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def quantity_text(value: float, unit_symbol: str, spec: str = "g") -> str:
    """``value`` (format ``spec``) and its unit's symbol: ``95 °C``, ``412.3 µm``. The one way messages — write
    refusals, alarms, the write log — show a quantity (a unit symbol, never a UNECE code like ``CEL``)."""
    return f"{value:{spec}} {unit_symbol}"


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One tag of a unit's PLC tag map.

    Attributes:
        name: tag name, unique within the unit (plant language, e.g. ``jacket_temperature_setpoint``).
        direction: measured (read from the PLC) or commanded (written to the PLC).
        unit_code: UNECE Rec. 20 common code of the engineering unit (``CEL`` = °C, ``MTQ`` = m³ ...).
        eu_range: engineering range of the instrument / actuator.
        table: Modbus table.
        address: zero-based Modbus address of the first register.
        data_type: raw type in the registers.
        byte_order / word_order: register layout of the raw value.
        scale / offset: engineering value = raw * scale + offset.
        write_limits: accepted setpoint interval for commanded tags (defaults to eu_range).
        max_rate: largest accepted change between two writes, in engineering units per second
            (``None`` = unlimited).
        description: free text shown to operators.
        unit_symbol: the unit's symbol (``°C``, ``µm``) for messages; empty: the code is shown.
    """

    name: str
    direction: Direction
    unit_code: str
    eu_range: Range
    table: RegisterTable
    address: int
    data_type: DataType
    byte_order: ByteOrder = ByteOrder.BIG
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    offset: float = 0.0
    write_limits: Range | None = None
    max_rate: float | None = None
    description: str = ""
    unit_symbol: str = ""

    @property
    def symbol(self) -> str:
        """The unit as messages show it: its symbol (``°C``), else its code."""
        return self.unit_symbol or self.unit_code

    @property
    def register_count(self) -> int:
        return self.data_type.register_count

    @property
    def end_address(self) -> int:
        """One past the last register occupied."""
        return self.address + self.register_count

    @property
    def effective_write_limits(self) -> Range:
        return self.write_limits if self.write_limits is not None else self.eu_range


@dataclass(frozen=True, slots=True)
class ModbusConnection:
    """Where a unit's PLC listens (Modbus TCP)."""

    host: str
    port: int
    unit_id: int = 1
    timeout_s: float = 1.0
