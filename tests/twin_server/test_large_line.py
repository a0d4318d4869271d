"""Start-up of a large generated line (issue 20): 2,000 tags in one unit, every one with a limit alarm, history and
roles on. The address space is built by the seam's bulk node creation; this checks its structure through a real
client (not its speed): every tag under its unit with its AnalogItemType properties and RolePermissions, every
alarm condition in the unit's alarms folder with HasCondition from the unit, and no stale Good before the PLC
answers; its objects are frozen out of the cyclic collector while it serves and thawed at stop."""

from __future__ import annotations

import gc

from asyncua import ua

from plc_adapters.tag import Range
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, RegisterTable, TagSpec
from tests.conftest import free_tcp_port
from tests.security_helpers import connected
from twin_server.alarms.alarm_config import UnitAlarmConfig
from twin_server.alarms.limits import LimitAlarmConfig
from twin_server.config import LineConfig, ServerConfig, UnitConfig
from twin_server.security.settings import SecuritySettings
from twin_server.server import TwinServer

N_TAGS = 2000
NS = "urn:linetwin:test:large"


def _config() -> LineConfig:
    tags = tuple(TagSpec(name=f"t{i:04d}", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(0.0, 100.0),
                         table=RegisterTable.INPUT, address=2 * i, data_type=DataType.FLOAT32) for i in range(N_TAGS))
    alarms = UnitAlarmConfig(limits={t.name: LimitAlarmConfig(high=90.0) for t in tags})
    return LineConfig(
        name="large", description="", scan_period_s=1.0,
        server=ServerConfig(endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/large/", namespace=NS),
        units=(UnitConfig(name="unit", kind="mixing_tank", description="", model={}, plant={},
                          connection=ModbusConnection("127.0.0.1", free_tcp_port(), timeout_s=1.0), tags=tags,
                          alarms=alarms),),  # no PLC listens: the tags stay Bad
        security=SecuritySettings(allow_none=True))


async def test_a_2000_tag_line_starts_with_every_tag_its_properties_roles_and_alarm():
    twin = TwinServer(_config())
    await twin.start()
    assert gc.get_freeze_count() > 0  # its address space out of the cyclic collector's way ...
    try:
        assert twin.space is not None
        idx = twin.space.namespace_index
        async with connected(twin.endpoint) as client:
            unit = client.get_node(twin.space.unit_nodes["unit"])
            references = await unit.get_references(refs=ua.ObjectIds.HierarchicalReferences,
                                                   direction=ua.BrowseDirection.Forward)
            names = [r.BrowseName.Name for r in references]
            assert sorted(names) == sorted([f"t{i:04d}" for i in range(N_TAGS)] + ["plc_connected", "alarms"])
            for i in (0, 1234, N_TAGS - 1):
                tag = client.get_node(ua.NodeId(f"large.unit.t{i:04d}", idx))
                props = {(await p.read_browse_name()).Name: await p.read_value() for p in await tag.get_properties()}
                assert set(props) == {"EURange", "EngineeringUnits"}
                assert (props["EURange"].Low, props["EURange"].High) == (0.0, 100.0)
                assert (await tag.read_type_definition()) == ua.NodeId(ua.ObjectIds.AnalogItemType)
                value = await tag.read_data_value(raise_on_bad_status=False)
                assert not value.StatusCode.is_good()  # waiting for initial data / no PLC: never a stale Good
                permissions = (await tag.read_attribute(ua.AttributeIds.RolePermissions)).Value.Value
                assert permissions, f"t{i:04d} has no RolePermissions"
            alarms = client.get_node(ua.NodeId("large.unit.alarms", idx))
            held = await alarms.get_references(refs=ua.ObjectIds.HasComponent, direction=ua.BrowseDirection.Forward)
            assert sorted(r.BrowseName.Name for r in held) == sorted(
                [f"t{i:04d}_limit" for i in range(N_TAGS)] + ["comms_loss"])
            conditions = await unit.get_referenced_nodes(refs=ua.ObjectIds.HasCondition)
            assert len(conditions) == N_TAGS + 1
        assert len(twin.space.tag_nodes) == N_TAGS
        assert twin.alarms is not None and len(twin.alarms.conditions) >= N_TAGS
    finally:
        await twin.stop()
    assert gc.get_freeze_count() == 0  # ... and back to it once stopped
