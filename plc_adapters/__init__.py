"""Talking to equipment: Modbus TCP / OPC UA adapters, tag maps, codecs, quality codes."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "AdapterStats": "plc_adapters.modbus_adapter",
    "Backoff": "plc_adapters.backoff",
    "ByteOrder": "plc_adapters.tag_map",
    "DEFAULT_PROTOCOL": "plc_adapters.adapter",
    "CodecError": "plc_adapters.modbus_codec",
    "DataType": "plc_adapters.tag_map",
    "Direction": "plc_adapters.tag_map",
    "MAX_READ_BITS": "plc_adapters.read_plan",
    "MAX_READ_REGISTERS": "plc_adapters.read_plan",
    "ModbusAdapter": "plc_adapters.modbus_adapter",
    "ModbusConnection": "plc_adapters.tag_map",
    "PlcAdapter": "plc_adapters.adapter",
    "Quality": "plc_adapters.quality",
    "Range": "plc_adapters.tag_map",
    "ReadBlock": "plc_adapters.read_plan",
    "RegisterTable": "plc_adapters.tag_map",
    "Sample": "plc_adapters.sample",
    "ScanSchedule": "plc_adapters.scan_schedule",
    "TagDescription": "plc_adapters.tag",
    "TagSpec": "plc_adapters.tag_map",
    "WordOrder": "plc_adapters.tag_map",
    "WriteNotConfirmed": "plc_adapters.errors",
    "WriteOutcomeUnknown": "plc_adapters.errors",
    "WriteRefusal": "plc_adapters.errors",
    "WriteRefused": "plc_adapters.errors",
    "WriteStats": "plc_adapters.adapter_state",
    "adapter_for": "plc_adapters.adapter",
    "decode": "plc_adapters.modbus_codec",
    "encode": "plc_adapters.modbus_codec",
    "plan_reads": "plc_adapters.read_plan",
    "protocol_names": "plc_adapters.adapter",
    "raw_to_registers": "plc_adapters.modbus_codec",
    "register_adapter": "plc_adapters.adapter",
    "registers_to_raw": "plc_adapters.modbus_codec",
    "sample_from_registers": "plc_adapters.modbus_sample",
    "validate_tags": "plc_adapters.read_plan",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
