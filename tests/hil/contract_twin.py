"""STAND-IN for the twin's control side (for testing the scenario runner before the real twin control exists).

A real asyncua server that exposes exactly the control-contract nodes of one unit
(/work/notes/control_contract.md) and a minimal "auto" mode: on StartBatch it ramps the jacket setpoint linearly
from the recipe's initial to final temperature over the batch, writing it to the virtual PLC over real Modbus TCP
every ``period_s`` plant seconds (its clock scaled by ``time_scale``, as the twin's is). It estimates nothing:
the estimate nodes carry the measured values it reads back from the PLC (d43 from the mean chord length).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from asyncua import Server, ua
from pymodbus.client import AsyncModbusTcpClient

from plc_adapters.asyncua_seam import init_server
from plc_adapters.modbus_codec import decode, encode
from plc_adapters.tag_map import TagSpec

UNIT_ID = 1


class ContractTwin:
    """The contract nodes of ``<line>.<unit>.control`` plus Good tag nodes of the unit's measured tags."""

    def __init__(self, line: str, unit: str, namespace: str, tags: list[TagSpec], plc_port: int,
                 start_c: float, end_c: float, batch_s: float, time_scale: float, period_s: float = 60.0) -> None:
        self.line, self.unit, self.namespace = line, unit, namespace
        self.tags = {t.name: t for t in tags}
        self.plc_port = plc_port
        self.start_c, self.end_c, self.batch_s = start_c, end_c, batch_s
        self.time_scale, self.period_s = time_scale, period_s
        self.server = Server()
        self.nodes: dict[str, object] = {}
        self.starts = 0
        self.stops = 0
        self._task: asyncio.Task[None] | None = None

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self.line}.{self.unit}.{name}", self.idx)

    @contextlib.asynccontextmanager
    async def running(self, port: int) -> AsyncIterator[str]:
        endpoint = f"opc.tcp://127.0.0.1:{port}/standin/"
        await init_server(self.server)
        self.server.set_endpoint(endpoint)
        self.idx = await self.server.register_namespace(self.namespace)
        objects = self.server.nodes.objects
        unit_obj = await objects.add_object(ua.NodeId(f"{self.line}.{self.unit}", self.idx), f"{self.idx}:{self.unit}")
        for name in ("temperature", "jacket_temperature", "solute_concentration", "chord_count_rate",
                     "mean_chord_length"):
            await unit_obj.add_variable(self.node_id(name), f"{self.idx}:{name}", 0.0)
        control = await unit_obj.add_object(self.node_id("control"), f"{self.idx}:control")

        async def var(name: str, value: object, vtype: ua.VariantType, writable: bool = False) -> None:
            node = await control.add_variable(self.node_id(f"control.{name}"), f"{self.idx}:{name}",
                                              ua.Variant(value, vtype))
            if writable:
                await node.set_writable()
            self.nodes[name] = node

        await var("mode", "manual", ua.VariantType.String, writable=True)
        await var("strategy", "linear_cooling", ua.VariantType.String)
        await var("batch_active", False, ua.VariantType.Boolean)
        await var("batch_time_s", 0.0, ua.VariantType.Double)
        await var("target_d43", 300.0, ua.VariantType.Double, writable=True)
        await var("estimated_d43", 0.0, ua.VariantType.Double)
        await var("estimated_d43_std", 10.0, ua.VariantType.Double)
        await var("solve_time_ms", 0.0, ua.VariantType.Double)
        await var("solve_status", "none", ua.VariantType.String)
        for counter in ("solves", "failed_solves", "setpoints_written", "fallbacks_used"):
            await var(counter, 0, ua.VariantType.UInt32)
        await var("last_event", "", ua.VariantType.String)
        await control.add_method(self.node_id("control.StartBatch"), f"{self.idx}:StartBatch", self._start, [], [])
        await control.add_method(self.node_id("control.StopBatch"), f"{self.idx}:StopBatch", self._stop, [], [])
        async with self.server:
            try:
                yield endpoint
            finally:
                await self._cancel()

    async def _start(self, parent: ua.NodeId) -> list[ua.Variant]:
        self.starts += 1
        await self._cancel()
        await self.server.write_attribute_value(self.node_id("control.batch_active"),
                                                ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
        self._task = asyncio.create_task(self._recipe())
        return []

    async def _stop(self, parent: ua.NodeId) -> list[ua.Variant]:
        self.stops += 1
        await self._cancel()
        await self.server.write_attribute_value(self.node_id("control.batch_active"),
                                                ua.DataValue(ua.Variant(False, ua.VariantType.Boolean)))
        await self.server.write_attribute_value(self.node_id("control.mode"),
                                                ua.DataValue(ua.Variant("manual", ua.VariantType.String)))
        return []

    async def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _set(self, name: str, value: object, vtype: ua.VariantType) -> None:
        await self.server.write_attribute_value(self.node_id(f"control.{name}"),
                                                ua.DataValue(ua.Variant(value, vtype)))

    async def _recipe(self) -> None:
        client = AsyncModbusTcpClient("127.0.0.1", port=self.plc_port, timeout=1, retries=0)
        await client.connect()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        written = 0
        setpoint = self.tags["jacket_temperature_setpoint"]
        chord = self.tags["mean_chord_length"]
        try:
            while True:
                batch_time = (loop.time() - t0) * self.time_scale
                value = self.start_c + (self.end_c - self.start_c) * min(batch_time / self.batch_s, 1.0)
                if client.connected:
                    response = await client.write_registers(setpoint.address, encode(setpoint, value),
                                                            device_id=UNIT_ID)
                    if not response.isError():
                        written += 1
                    chords = await client.read_input_registers(chord.address, count=chord.register_count,
                                                               device_id=UNIT_ID)
                    if not chords.isError():
                        await self._set("estimated_d43", 1.5 * decode(chord, chords.registers), ua.VariantType.Double)
                await self._set("setpoints_written", written, ua.VariantType.UInt32)
                await self._set("solves", written, ua.VariantType.UInt32)
                await self._set("solve_time_ms", 10.0 + written, ua.VariantType.Double)
                await self._set("batch_time_s", batch_time, ua.VariantType.Double)
                await asyncio.sleep(self.period_s / self.time_scale)
        finally:
            client.close()
