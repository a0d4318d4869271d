"""A small PLC-like asyncua server for the OPC UA adapter tests (a real server on loopback, not a mock).

Vendor namespace ``http://linetwin.test/plc`` registered after ``extra_namespaces`` (so a restart with more of
them renumbers it), data-block style string node ids, EURange / EngineeringUnits properties, values set with any
status code and source timestamp. Run as a script (``python -m tests.plc_adapters.opcua_plc PORT``) it serves in a
process of its own that a test can SIGSTOP; it prints ``READY <port>`` once listening.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from asyncua import Server, ua

from plc_adapters.asyncua_seam import (
    address_space,
    close_client_sessions,
    init_server,
    listening_port,
    stop_server,
)

VENDOR_URI = "http://linetwin.test/plc"
TEMPERATURE = '"DB_Crystallizer"."Temperature"'
CONCENTRATION = '"DB_Crystallizer"."Concentration"'
SETPOINT = '"DB_Crystallizer"."JacketSetpoint"'
SPEED = '"DB_Crystallizer"."AgitatorSpeed"'
CEL = (ord("C") << 16) | (ord("E") << 8) | ord("L")
RPM = (ord("R") << 16) | (ord("P") << 8) | ord("M")


class PlcServer:
    """The test PLC. ``start()`` serves on ``port`` (0 = pick one, kept for restarts)."""

    def __init__(self, port: int = 0, extra_namespaces: Sequence[str] = (), temperature_range: tuple[float, float] =
                 (-10.0, 100.0), user_manager: object | None = None) -> None:
        self.user_manager = user_manager
        self.port = port
        self.extra_namespaces = list(extra_namespaces)
        self.temperature_range = temperature_range
        self.server: Server | None = None
        self.idx = -1
        self.nodes: dict[str, ua.NodeId] = {}
        self.memory: dict[str, ua.DataValue] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        server = Server(user_manager=self.user_manager)  # type: ignore[arg-type]
        await init_server(server)
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        self.idx = idx = await server.register_namespace(VENDOR_URI)
        folder = await server.nodes.objects.add_folder(ua.NodeId("DataBlocksGlobal", idx), "DataBlocksGlobal")
        block = await folder.add_object(ua.NodeId('"DB_Crystallizer"', idx), ua.QualifiedName("DB_Crystallizer", idx))
        specs = [(TEMPERATURE, 20.0, ua.VariantType.Float, CEL, self.temperature_range, False),
                 (CONCENTRATION, 150.0, ua.VariantType.Double, None, (0.0, 500.0), False),
                 (SETPOINT, 30.0, ua.VariantType.Float, CEL, (-20.0, 120.0), True),
                 (SPEED, 200, ua.VariantType.UInt16, RPM, (0.0, 800.0), True)]
        for ident, initial, vtype, unit_id, eu, writable in specs:
            node_id = ua.NodeId(ident, idx)
            value = self.memory.get(ident, ua.DataValue(ua.Variant(initial, vtype), SourceTimestamp=datetime.now(UTC)))
            var = await block.add_variable(node_id, ua.QualifiedName(ident, idx), value.Value.Value, vtype,
                                           datatype=ua.NodeId(vtype.value))
            await var.add_property(ua.NodeId(ident + ".EURange", idx), ua.QualifiedName("EURange", 0),
                                   ua.Range(Low=eu[0], High=eu[1]))
            if unit_id is not None:
                await var.add_property(ua.NodeId(ident + ".EngineeringUnits", idx),
                                       ua.QualifiedName("EngineeringUnits", 0), ua.EUInformation(UnitId=unit_id))
            if writable:
                await var.set_writable(True)
            self.nodes[ident] = node_id
        await server.start()
        self.port = listening_port(server)
        self.server = server
        for ident, value in self.memory.items():
            self._store(ident, value)

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            for ident in self.nodes:
                self.memory[ident] = address_space(server).read(self.nodes[ident], ua.AttributeIds.Value)
            await stop_server(server)

    async def set(self, ident: str, value: float | None, status: int = ua.StatusCodes.Good,
                  source_timestamp: datetime | None = None, vtype: ua.VariantType = ua.VariantType.Float) -> None:
        """Publish ``value`` with ``status`` and a source timestamp (now unless given), value kept on Bad."""
        dv = ua.DataValue(ua.Variant(value, vtype), StatusCode=ua.StatusCode(status),
                          SourceTimestamp=source_timestamp or datetime.now(UTC), ServerTimestamp=datetime.now(UTC))
        self.memory[ident] = dv
        await asyncio.gather(*self._store(ident, dv))

    def _store(self, ident: str, dv: ua.DataValue) -> list[asyncio.Task[object]]:
        """The value into its node; the subscribers' notifications (tasks)."""
        if self.server is None:
            return []
        return address_space(self.server).publish(self.nodes[ident], dv) or []

    def value(self, ident: str) -> object:
        assert self.server is not None
        return address_space(self.server).read(self.nodes[ident], ua.AttributeIds.Value).Value.Value

    async def expire_sessions(self) -> None:
        """End every client session on the server (as a session timeout does); TCP connections stay open."""
        assert self.server is not None
        await close_client_sessions(self.server)

    async def lock_writes(self, ident: str) -> None:
        """The PLC refuses writes to ``ident`` (access level without CurrentWrite → BadUserAccessDenied)."""
        assert self.server is not None
        await self.server.get_node(self.nodes[ident]).set_writable(False)


async def _serve(port: int) -> None:
    plc = PlcServer(port)
    await plc.start()
    print(f"READY {plc.port}", flush=True)
    t = 0.0
    while True:  # a slowly rising temperature, so subscriptions see changes
        await asyncio.sleep(0.05)
        t += 0.05
        await plc.set(TEMPERATURE, 20.0 + t)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
