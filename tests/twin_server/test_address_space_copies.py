"""The line's tag and alarm nodes are built as copies of one template per shape (issue 20: start-up of a 10,000-tag
line); they must be the nodes asyncua's own AddNodes makes. The same line — a measured tag with a limit alarm, a
commanded tag, the unit's communication-loss alarm — is built twice on two asyncua servers: as shipped (template
copies) and with every copy made by asyncua's AddNodes from its item; every node of the line's namespace is then
compared, attributes (value and status, not timestamps) and references in their order."""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import Server, ua

from plc_adapters import asyncua_seam as seam
from plc_adapters.tag import Range
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, RegisterTable, TagSpec
from twin_server import address_space as address_space_module
from twin_server.address_space import build_address_space
from twin_server.alarms import nodes as alarm_nodes_module
from twin_server.alarms.alarm_config import UnitAlarmConfig
from twin_server.alarms.limits import LimitAlarmConfig
from twin_server.alarms.manager import AlarmManager
from twin_server.audit import AuditTrail
from twin_server.config import LineConfig, ServerConfig, UnitConfig

NS = "urn:linetwin:test:copies"


def _config() -> LineConfig:
    tags = (TagSpec(name="level", direction=Direction.MEASURED, unit_code="MTR", eu_range=Range(0.0, 4.0),
                    table=RegisterTable.INPUT, address=0, data_type=DataType.FLOAT32, description="tank level"),
            TagSpec(name="valve_sp", direction=Direction.COMMANDED, unit_code="P1", eu_range=Range(0.0, 100.0),
                    table=RegisterTable.HOLDING, address=0, data_type=DataType.FLOAT32))
    alarms = UnitAlarmConfig(limits={"level": LimitAlarmConfig(high=3.5, low=0.2)})
    return LineConfig(
        name="copies", description="", scan_period_s=0.5,
        server=ServerConfig(endpoint="opc.tcp://127.0.0.1:4840/copies/", namespace=NS),
        units=(UnitConfig(name="tank", kind="mixing_tank", description="", model={}, plant={},
                          connection=ModbusConnection("127.0.0.1", 5020, timeout_s=1.0), tags=tags,
                          alarms=alarms),))


async def _by_add_nodes(server: Server, copies: Any) -> list[tuple[seam.NodeCopy, ua.StatusCode]]:
    """The reference: every copy made by asyncua's AddNodes from its item."""
    copies = list(copies)
    results = await seam.add_nodes(server, [c.template.item(c) for c in copies])
    return [(c, r.StatusCode) for c, r in zip(copies, results, strict=True) if not r.StatusCode.is_good()]


async def _line_nodes(copies: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[ua.NodeId, tuple], int]:
    with monkeypatch.context() as patch:
        if not copies:
            patch.setattr(address_space_module, "add_node_copies", _by_add_nodes)
            patch.setattr(alarm_nodes_module, "add_node_copies", _by_add_nodes)
        server = Server()
        await seam.init_server(server)
        config = _config()
        space = await build_address_space(server, config)
        await AlarmManager(server, config, space, AuditTrail()).build()
    aspace = server.iserver.aspace
    shapes = {}
    for node_id in seam.address_space(server).node_ids():
        if node_id.NamespaceIndex != space.namespace_index:
            continue
        data = aspace[node_id]
        attributes = {a: (v.value.Value, v.value.StatusCode) for a, v in data.attributes.items()}
        references = [(r.ReferenceTypeId, r.IsForward, r.NodeId, r.NodeClass, r.BrowseName, r.DisplayName,
                       r.TypeDefinition) for r in data.references]
        shapes[node_id] = (attributes, references)
    return shapes, len(space.tag_nodes)


async def test_tag_and_alarm_nodes_built_as_copies_are_the_nodes_add_nodes_makes(monkeypatch: pytest.MonkeyPatch):
    by_copies, tags = await _line_nodes(True, monkeypatch)
    by_add_nodes, _ = await _line_nodes(False, monkeypatch)
    assert tags == 2
    names = {str(n.Identifier) for n in by_copies}
    assert {"copies.tank.level", "copies.tank.level.EURange", "copies.tank.valve_sp.EngineeringUnits",
            "copies.tank.alarms.level_limit", "copies.tank.alarms.level_limit.ActiveState.Id",
            "copies.tank.alarms.comms_loss.Message"} <= names
    assert len(by_copies) >= 2 * 3 + 2 * 14  # three nodes per tag, fourteen per condition
    assert by_copies.keys() == by_add_nodes.keys()
    for node_id, shape in by_copies.items():
        assert shape == by_add_nodes[node_id], node_id
