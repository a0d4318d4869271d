"""One adapter contract: the registry picks the adapter by connection kind, and both adapters keep the contract."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pytest

from plc_adapters.adapter import DEFAULT_PROTOCOL, PlcAdapter, adapter_for, adapter_protocols, protocol_names
from plc_adapters.adapter_state import WriteStats
from plc_adapters.modbus_adapter import ModbusAdapter
from plc_adapters.opcua_adapter import OpcUaAdapter
from plc_adapters.opcua_spec import NodeAddress, OpcUaConnection, OpcUaTagSpec
from plc_adapters.tag import TagDescription
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, Range, RegisterTable, TagSpec

MODBUS_TAG = TagSpec("jacket_temperature_setpoint", Direction.COMMANDED, "CEL", Range(0.0, 100.0),
                     RegisterTable.HOLDING, 0, DataType.FLOAT32, max_rate=2.0)
OPCUA_TAG = OpcUaTagSpec("jacket_temperature_setpoint", Direction.COMMANDED, "CEL", Range(0.0, 100.0),
                         NodeAddress("urn:plc", 's="DB"."Jacket"'), max_rate=2.0)


def test_the_registry_knows_both_shipped_protocols() -> None:
    assert {"modbus", "opcua"} <= set(adapter_protocols())


def test_the_protocol_table_names_every_registered_adapter_and_each_has_a_config_parser() -> None:
    assert protocol_names() == adapter_protocols()  # the module names agree with what the modules register
    assert DEFAULT_PROTOCOL in protocol_names()
    for protocol in protocol_names():  # twin_server's config parser of each kind (found by the same name)
        assert callable(importlib.import_module(f"twin_server.config_{protocol}").parse_plc_unit)


@pytest.mark.parametrize(("connection", "tag", "adapter_type"), [
    (ModbusConnection("127.0.0.1", 1502), MODBUS_TAG, ModbusAdapter),
    (OpcUaConnection("127.0.0.1", 4840), OPCUA_TAG, OpcUaAdapter),
])
def test_the_adapter_is_picked_by_connection_kind_and_keeps_the_contract(connection, tag, adapter_type) -> None:
    adapter = adapter_for("crystallizer", connection, [tag], 0.5)
    assert type(adapter) is adapter_type
    assert isinstance(adapter, PlcAdapter)
    assert isinstance(adapter.stats, WriteStats) and adapter.stats.unknown_outcome_writes == 0
    assert dict(adapter.unconfirmed_writes) == {} and dict(adapter.eu_mismatches) == {}
    assert adapter.on_write_reconciled is None


@dataclass(frozen=True)
class _S7Connection:
    host: str = "127.0.0.1"
    port: int = 102
    protocol: str = "s7"


def test_a_connection_kind_without_adapter_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unit 'crystallizer': no PLC adapter for protocol 's7'; known: .*modbus"):
        adapter_for("crystallizer", _S7Connection(), [MODBUS_TAG], 0.5)  # type: ignore[arg-type]


def test_both_tag_types_share_the_neutral_description() -> None:
    for tag in (MODBUS_TAG, OPCUA_TAG):
        assert isinstance(tag, TagDescription)
        assert tag.effective_write_limits == Range(0.0, 100.0) and tag.max_rate == 2.0
        assert tag.not_writable_reason is None
    measured_input = TagSpec("level", Direction.MEASURED, "MTR", Range(0.0, 2.0), RegisterTable.INPUT, 0,
                             DataType.FLOAT32)
    assert "input table" in (measured_input.not_writable_reason or "")
