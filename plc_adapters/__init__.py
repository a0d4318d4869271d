"""Talking to equipment: Modbus TCP / OPC UA adapters, tag maps, codecs, quality codes."""

from plc_adapters.backoff import Backoff
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefusal, WriteRefused
from plc_adapters.modbus_adapter import AdapterStats, ModbusAdapter
from plc_adapters.modbus_codec import CodecError, decode, encode, raw_to_registers, registers_to_raw
from plc_adapters.quality import Quality
from plc_adapters.read_plan import MAX_READ_BITS, MAX_READ_REGISTERS, ReadBlock, plan_reads, validate_tags
from plc_adapters.sample import Sample
from plc_adapters.scan_schedule import ScanSchedule
from plc_adapters.tag_map import (
    ByteOrder,
    DataType,
    Direction,
    ModbusConnection,
    Range,
    RegisterTable,
    TagSpec,
    WordOrder,
)

__all__ = [
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "AdapterStats",
    "Backoff",
    "ByteOrder",
    "CodecError",
    "DataType",
    "Direction",
    "ModbusAdapter",
    "ModbusConnection",
    "Quality",
    "Range",
    "ReadBlock",
    "RegisterTable",
    "Sample",
    "ScanSchedule",
    "TagSpec",
    "WordOrder",
    "WriteOutcomeUnknown",
    "WriteRefusal",
    "WriteRefused",
    "decode",
    "encode",
    "plan_reads",
    "raw_to_registers",
    "registers_to_raw",
    "validate_tags",
]
