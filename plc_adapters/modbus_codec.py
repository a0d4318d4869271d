"""Pure codec between 16-bit Modbus registers and engineering values.

No I/O here: the adapter and the virtual PLC both use these functions, so both sides of the
wire agree by construction and the codec is tested on its own with known byte patterns.
"""

from __future__ import annotations

import math
import struct

from plc_adapters.tag_map import ByteOrder, DataType, TagSpec, WordOrder

_STRUCT_CODE = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}


class CodecError(ValueError):
    """A value cannot be represented in (or read from) the tag's raw type."""


def raw_to_registers(
    raw: int | float, data_type: DataType, byte_order: ByteOrder = ByteOrder.BIG,
    word_order: WordOrder = WordOrder.BIG,
) -> list[int]:
    """Pack a raw value into registers (each 0..65535) in the given byte/word order."""
    if data_type is DataType.BOOL:
        return [1 if raw else 0]
    try:
        packed = struct.pack(">" + _STRUCT_CODE[data_type], raw)
    except (struct.error, OverflowError) as exc:  # float32 overflow raises OverflowError, not struct.error
        raise CodecError(f"{raw!r} does not fit {data_type.value}: {exc}") from exc
    words = [packed[i : i + 2] for i in range(0, len(packed), 2)]
    if word_order is WordOrder.LITTLE:
        words.reverse()
    if byte_order is ByteOrder.LITTLE:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def registers_to_raw(
    registers: list[int], data_type: DataType, byte_order: ByteOrder = ByteOrder.BIG,
    word_order: WordOrder = WordOrder.BIG,
) -> int | float:
    """Unpack registers (in the given order) into the raw value."""
    if len(registers) != data_type.register_count:
        raise CodecError(f"{data_type.value} needs {data_type.register_count} registers, got {len(registers)}")
    if any(not 0 <= int(r) <= 0xFFFF for r in registers):
        raise CodecError(f"registers must be 16-bit values 0..65535, got {list(registers)}")
    if data_type is DataType.BOOL:
        return 1 if registers[0] else 0
    words = [int(r).to_bytes(2, "big") for r in registers]
    if byte_order is ByteOrder.LITTLE:
        words = [w[::-1] for w in words]
    if word_order is WordOrder.LITTLE:
        words.reverse()
    return struct.unpack(">" + _STRUCT_CODE[data_type], b"".join(words))[0]


def encode(tag: TagSpec, value: float) -> list[int]:
    """Engineering value → registers for ``tag`` (applies inverse scale/offset, rounds integers)."""
    if not math.isfinite(value):
        raise CodecError(f"tag '{tag.name}': value {value!r} is not finite")
    if tag.scale == 0:
        raise CodecError(f"tag '{tag.name}': scale must be non-zero")
    raw: float | int = (value - tag.offset) / tag.scale
    if not math.isfinite(raw):
        raise CodecError(f"tag '{tag.name}': value {value!r} scales to a non-finite raw value")
    if tag.data_type.is_integer or tag.data_type is DataType.BOOL:
        raw = int(round(raw))
    return raw_to_registers(raw, tag.data_type, tag.byte_order, tag.word_order)


def not_representable(tag: TagSpec, value: float) -> str | None:
    """Why ``value`` (engineering units) has no exact raw value in ``tag``'s registers — an integer (or bool)
    register and a value that is not a whole multiple of ``scale`` from ``offset`` — else None. A client's write
    is refused for this rather than rounded (:func:`encode` rounds, for the twin's own computed setpoints)."""
    if not (tag.data_type.is_integer or tag.data_type is DataType.BOOL) or tag.scale == 0:
        return None
    raw = (value - tag.offset) / tag.scale
    if not math.isfinite(raw) or abs(raw - round(raw)) <= 1e-9 * max(1.0, abs(raw)):
        return None
    step = f"a whole multiple of {tag.scale:g}" + (f" from {tag.offset:g}" if tag.offset else "")
    return (f"{value:g} is not {step}: tag '{tag.name}' is held in a {tag.data_type.value} register "
            "(the value would be rounded)")


def decode(tag: TagSpec, registers: list[int]) -> float:
    """Registers → engineering value for ``tag`` (applies scale/offset)."""
    raw = registers_to_raw(registers, tag.data_type, tag.byte_order, tag.word_order)
    return float(raw) * tag.scale + tag.offset
