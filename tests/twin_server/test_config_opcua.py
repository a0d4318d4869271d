"""Config of OPC UA PLCs: ``protocol = "opcua"`` units, their tag keys, and the FILE: KEY: got …; expected … errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plc_adapters.opcua_spec import DeadbandKind, OpcUaConnection, OpcUaTagSpec, SecurityMode
from plc_adapters.tag_map import TagSpec
from twin_server.config import ConfigError, parse_line_config

URI = "http://linetwin.example/virtual-plc/s7"


def _line() -> dict[str, Any]:
    return {
        "line": {"name": "l", "scan_period_s": 0.5},
        "server": {"endpoint": "opc.tcp://127.0.0.1:4840/"},
        "units": {
            "crystallizer": {
                "kind": "crystallizer",
                "plc": {"protocol": "opcua", "endpoint": "opc.tcp://10.0.0.5:4841/plc", "namespace_uri": URI,
                        "user": "twin", "password_env": "PLC_PASSWORD", "publishing_interval_s": 0.25},
                "tags": {
                    "temperature": {"direction": "measured", "unit": "CEL", "eu_range": [-10.0, 100.0],
                                    "node_id": 'ns=3;s="DB_Crystallizer"."Temperature"', "deadband": 0.5,
                                    "deadband_kind": "percent", "sampling_interval_s": 0.1},
                    "jacket_temperature_setpoint": {
                        "direction": "commanded", "unit": "CEL", "eu_range": [-20.0, 120.0],
                        "write_limits": [0.0, 80.0], "max_rate": 5.0,
                        "node_id": 'nsu=urn:other;s="DB_Crystallizer"."JacketSetpoint"'},
                },
            },
            "feed_tank": {
                "kind": "mixing_tank",
                "plc": {"protocol": "modbus", "host": "127.0.0.1", "port": 15020},
                "tags": {"level": {"direction": "measured", "unit": "MTR", "eu_range": [0.0, 2.0], "table": "input",
                                   "address": 0, "data_type": "int16"}},
            },
        },
    }


def test_an_opcua_unit_beside_a_modbus_unit() -> None:
    config = parse_line_config(_line(), source="mixed.toml")
    crystallizer = config.unit("crystallizer")
    assert isinstance(crystallizer.connection, OpcUaConnection)
    assert crystallizer.connection.endpoint == "opc.tcp://10.0.0.5:4841/plc"
    assert crystallizer.connection.security_mode is SecurityMode.NONE
    assert crystallizer.connection.password_env == "PLC_PASSWORD"
    temperature = crystallizer.tag("temperature")
    assert isinstance(temperature, OpcUaTagSpec)
    assert temperature.node.namespace_uri == URI  # the index 3 is ignored: the URI decides
    assert temperature.node.identifier == 's="DB_Crystallizer"."Temperature"'
    assert temperature.deadband_kind is DeadbandKind.PERCENT
    assert crystallizer.tag("jacket_temperature_setpoint").node.namespace_uri == "urn:other"
    assert isinstance(config.unit("feed_tank").tag("level"), TagSpec)


def _errors(mutate: Any) -> str:
    data = copy.deepcopy(_line())
    mutate(data)
    with pytest.raises(ConfigError) as err:
        parse_line_config(data, source="mixed.toml")
    return str(err.value)


def _plc(data: dict[str, Any]) -> dict[str, Any]:
    return data["units"]["crystallizer"]["plc"]


def _temperature(data: dict[str, Any]) -> dict[str, Any]:
    return data["units"]["crystallizer"]["tags"]["temperature"]


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: _plc(d).pop("namespace_uri"),
     "mixed.toml: units.crystallizer.tags.temperature.node_id: got 'ns=3;s=\"DB_Crystallizer\".\"Temperature\"'; "
     "expected a namespace URI"),
    (lambda d: _plc(d).update(protocol="profinet"), "units.crystallizer.plc.protocol: got 'profinet'; expected one of"
     " modbus, opcua"),
    (lambda d: _plc(d).update(endpoint="http://x/"), "units.crystallizer.plc.endpoint: got 'http://x/'; expected an "
     "OPC UA endpoint URL"),
    (lambda d: _plc(d).pop("password_env"), "units.crystallizer.plc.password_env: got nothing; expected the name of "
     "the environment variable"),
    (lambda d: _plc(d).update(security_policy="Basic256Sha256"), "units.crystallizer.plc.security_mode: got 'None'"),
    (lambda d: _plc(d).update(host="10.0.0.5"), "units.crystallizer.plc.host: got an unknown key"),
    (lambda d: _temperature(d).update(address=3), "units.crystallizer.tags.temperature.address: got 'a Modbus "
     "register key on an OPC UA tag'; expected node_id"),
    (lambda d: _temperature(d).pop("node_id"), "units.crystallizer.tags.temperature.node_id: got nothing"),
    (lambda d: _temperature(d).update(node_id="ns=3;x=1"), "expected an identifier 's=...'"),
    (lambda d: _temperature(d).update(deadband_kind="relative"), "units.crystallizer.tags.temperature.deadband_kind: "
     "got 'relative'; expected one of absolute, percent"),
    (lambda d: _temperature(d).update(deadband=150.0), "expected a percentage in [0, 100]"),
    (lambda d: _temperature(d).update(node_id='nsu=urn:other;s="DB_Crystallizer"."JacketSetpoint"'),
     "a node not already used by tag"),
])
def test_opcua_mistakes_name_file_key_got_expected(mutate: Any, expected: str) -> None:
    assert expected in _errors(mutate)
