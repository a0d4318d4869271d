"""Talking to equipment: one adapter contract (``PlcAdapter``), Modbus TCP / OPC UA adapters, tag maps, codecs,
quality codes."""

from plc_adapters.adapter import PlcAdapter, adapter_for, register_adapter
from plc_adapters.adapter_state import WriteStats
from plc_adapters.backoff import Backoff
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefusal, WriteRefused
from plc_adapters.modbus_adapter import AdapterStats, ModbusAdapter
from plc_adapters.modbus_codec import CodecError, decode, encode, raw_to_registers, registers_to_raw
from plc_adapters.quality import Quality
from plc_adapters.read_plan import MAX_READ_BITS, MAX_READ_REGISTERS, ReadBlock, plan_reads, validate_tags
from plc_adapters.sample import Sample
from plc_adapters.scan_schedule import ScanSchedule
from plc_adapters.tag import TagDescription
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
    "PlcAdapter",
    "Quality",
    "Range",
    "ReadBlock",
    "RegisterTable",
    "Sample",
    "ScanSchedule",
    "TagDescription",
    "TagSpec",
    "WordOrder",
    "WriteOutcomeUnknown",
    "WriteRefusal",
    "WriteRefused",
    "WriteStats",
    "adapter_for",
    "decode",
    "encode",
    "plan_reads",
    "raw_to_registers",
    "register_adapter",
    "registers_to_raw",
    "validate_tags",
]
