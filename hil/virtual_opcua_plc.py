"""A virtual PLC for one unit that speaks OPC UA: an asyncua server shaped like a typical PLC's, driven by a plant.

Shape (as an S7-1500-style PLC server presents its data blocks):

* the tags' namespace URIs (vendor style, e.g. ``http://linetwin.example/virtual-plc/s7``) are registered after
  any ``extra_namespaces`` — restarting with more extra namespaces renumbers the vendor namespace, as a PLC's
  does after a program or firmware change;
* string node ids such as ``"DB_Crystallizer"."Temperature"`` live in a ``DataBlocksGlobal`` folder, one object
  per data block (the part in the first quotes);
* each variable is an AnalogItem with ``EngineeringUnits`` (UNECE UnitId) and ``EURange`` properties; measured
  variables are read-only, commanded ones writable;
* the PLC's own status codes: a held measurement keeps its last value with ``Bad_SensorFailure``; a value outside
  the node's EURange is published ``Uncertain_EngineeringUnitsExceeded``; a write outside the EURange is refused
  ``BadOutOfRange``; a setpoint locked by :meth:`VirtualOpcUaPlc.refuse_writes` (PLC in local mode) is refused
  with the status given (``BadUserAccessDenied`` by default).

The plant loop is the virtual Modbus PLC's (:class:`~hil.plant_pacing.PlantPacer`): paced real time × ``speed``.
The plant state and the node values live in the PLC's memory (retentive), not in the server: the server is only
the PLC's communication front end, re-created on every (re)start.

Fault primitives (the virtual Modbus PLC's, plus what OPC UA adds): :meth:`hold_measurement`,
:meth:`suspend_communication` (drops off the network), :meth:`hang` (TCP stays open, nothing is answered),
:meth:`expire_sessions` (the server ends every session, as on a session timeout), :meth:`refuse_writes`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from hil.plant import Plant
from hil.plant_pacing import PlantPacer
from hil.virtual_plc import VirtualPlcConfigError
from plc_adapters.opcua_spec import OpcUaConnection, OpcUaTagSpec
from plc_adapters.tag_map import Direction
from process_models.engineering_units import UNECE_NAMESPACE_URI, UNITS_BY_CODE

logger = logging.getLogger(__name__)

BAD_SENSOR_FAILURE = ua.StatusCodes.BadSensorFailure
_DB_RE = re.compile(r'^s="([^"]+)"\.(.+)$')
_VARIANTS = {"float32": ua.VariantType.Float, "float64": ua.VariantType.Double, "int16": ua.VariantType.Int16,
             "uint16": ua.VariantType.UInt16, "int32": ua.VariantType.Int32, "uint32": ua.VariantType.UInt32,
             "bool": ua.VariantType.Boolean}
_ADMIN = User(role=UserRole.Admin)


class _NullTransport:
    """Stands in for a hung connection's transport: nothing leaves the PLC."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def validate_opcua_tags(unit: str, tags: Sequence[OpcUaTagSpec], plant: Plant) -> None:
    """Every tag is a signal of the plant with the plant's direction, and nodes are unique."""
    seen: set[tuple[str, str]] = set()
    for tag in tags:
        where = f"unit '{unit}', tag '{tag.name}'"
        if tag.name in plant.measured_names:
            expected = Direction.MEASURED
        elif tag.name in plant.commanded_names:
            expected = Direction.COMMANDED
        else:
            raise VirtualPlcConfigError(
                f"{where}: the '{plant.kind}' plant has no such signal; measured: {', '.join(plant.measured_names)}; "
                f"commanded: {', '.join(plant.commanded_names)}")
        if tag.direction is not expected:
            raise VirtualPlcConfigError(f"{where}: declared {tag.direction.value} but the '{plant.kind}' plant has "
                                        f"it {expected.value}")
        key = (tag.node.namespace_uri, tag.node.identifier)
        if key in seen:
            raise VirtualPlcConfigError(f"{where}: node {tag.node} served twice")
        if not tag.node.namespace_uri:
            raise VirtualPlcConfigError(f"{where}: a PLC's own nodes need a namespace URI, not namespace 0")
        seen.add(key)


class VirtualOpcUaPlc:
    """OPC UA virtual PLC for ONE unit, driven by ``plant`` in paced real time × ``speed``."""

    def __init__(self, unit: str, connection: OpcUaConnection, tags: Sequence[OpcUaTagSpec], plant: Plant,
                 speed: float = 1.0, step_s: float = 0.1, extra_namespaces: Sequence[str] = ()) -> None:
        if not speed > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': speed must be > 0, got {speed!r}")
        if not step_s > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': step_s must be > 0 plant seconds, got {step_s!r}")
        if not 0 <= connection.port <= 65535:
            raise VirtualPlcConfigError(f"unit '{unit}': port must be 0..65535, got {connection.port}")
        validate_opcua_tags(unit, tags, plant)
        self.unit = unit
        self.connection = connection
        self.plant = plant
        self.speed = float(speed)
        self.step_s = float(step_s)
        self.extra_namespaces: list[str] = list(extra_namespaces)
        self._tags = tuple(tags)
        self._by_name = {t.name: t for t in self._tags}
        self._commanded = tuple(t for t in self._tags if t.direction is Direction.COMMANDED)
        self._measured = tuple(t for t in self._tags if t.direction is Direction.MEASURED)
        now = datetime.now(UTC)
        self._values: dict[str, float] = {}
        self._status: dict[str, int] = {}
        self._stamps: dict[str, datetime] = {}
        self._held: set[str] = set()
        self._server: Server | None = None
        self._node_ids: dict[str, ua.NodeId] = {}
        for name, value in plant.initial_commands().items():
            if name in self._by_name:
                self._set_memory(name, value, now)
        self._refusing: dict[str, int] = {}
        self._publish_measurements(now)
        self._port = connection.port
        self._pacer = PlantPacer(unit, self.step_s, self.speed, self._step_once, logger,
                                 after_burst=lambda: self._publish_measurements(datetime.now(UTC)))
        self._tag_of_node: dict[ua.NodeId, str] = {}
        self._running = False
        self._listening = False
        self._built_with: tuple[str, ...] | None = None
        self._hung: list[Any] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ public
    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        host = self.connection.host
        return f"opc.tcp://{host}:{self._port}{self.connection.path}"

    @property
    def plant_time_s(self) -> float:
        return self._pacer.plant_time_s

    @property
    def dropped_steps(self) -> int:
        return self._pacer.dropped_steps

    @property
    def running(self) -> bool:
        return self._running

    @property
    def communicating(self) -> bool:
        return self._listening and not self._hung

    @property
    def tags(self) -> tuple[OpcUaTagSpec, ...]:
        return self._tags

    @property
    def held_measurements(self) -> frozenset[str]:
        return frozenset(self._held)

    @property
    def namespace_indices(self) -> dict[str, int]:
        """Vendor namespace URI → its index on the running server."""
        return {self._by_name[n].node.namespace_uri: nid.NamespaceIndex for n, nid in self._node_ids.items()}

    def read_tag(self, name: str) -> float:
        """The PLC's current value of tag ``name`` (KeyError if unknown)."""
        if name not in self._by_name:
            raise KeyError(f"virtual PLC '{self.unit}': no tag '{name}'")
        return self._values[name]

    def hold_measurement(self, name: str) -> None:
        """Fault: the instrument behind measured tag ``name`` fails: its node keeps the last value with the PLC's
        ``Bad_SensorFailure`` status until :meth:`release_measurement` (KeyError if not a measured tag)."""
        self._measured_tag(name)
        self._held.add(name)
        self._status[name] = BAD_SENSOR_FAILURE
        self._stamps[name] = datetime.now(UTC)
        self._push(name)
        logger.info("virtual OPC UA PLC '%s': measurement '%s' held (Bad_SensorFailure) at plant time %.1f s",
                    self.unit, name, self.plant_time_s)

    def release_measurement(self, name: str) -> None:
        self._measured_tag(name)
        if name in self._held:
            self._held.discard(name)
            self._publish_measurements(datetime.now(UTC))
            logger.info("virtual OPC UA PLC '%s': measurement '%s' released at plant time %.1f s", self.unit, name,
                        self.plant_time_s)

    def refuse_writes(self, name: str, status: int = ua.StatusCodes.BadUserAccessDenied) -> None:
        """The PLC refuses writes to commanded tag ``name`` with ``status`` (e.g. local mode) until
        :meth:`accept_writes`."""
        if name not in {t.name for t in self._commanded}:
            raise KeyError(f"virtual PLC '{self.unit}': no commanded tag '{name}'")
        self._refusing[name] = status

    def accept_writes(self, name: str) -> None:
        self._refusing.pop(name, None)

    async def start(self) -> None:
        """Serve at host:port (port 0 picks a free one, kept for restarts) and start the plant loop."""
        async with self._lock:
            if self._running:
                return
            await self._listen()
            self._running = True
            self._loop_task = asyncio.create_task(self._pacer.run(), name=f"hil-opcua-plant-{self.unit}")
            logger.info("virtual OPC UA PLC '%s' (%s) at %s, speed %g×", self.unit, self.plant.kind, self.endpoint,
                        self.speed)

    async def stop(self) -> None:
        """Stop the plant loop and the server (memory kept, like a PLC with retentive data). Idempotent."""
        async with self._lock:
            task, self._loop_task = self._loop_task, None
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            self._running = False
            await self._close_server()

    async def suspend_communication(self) -> None:
        """Fault: the PLC drops off the network (server gone, connections closed); the plant keeps running."""
        async with self._lock:
            if self._running and self._listening:
                await self._close_server(keep_server=True)
                logger.info("virtual OPC UA PLC '%s': communication suspended at plant time %.1f s", self.unit,
                            self.plant_time_s)

    async def resume_communication(self) -> None:
        """End :meth:`suspend_communication` (or :meth:`hang`): serve on the same port again."""
        async with self._lock:
            if self._hung:
                self._unhang()
                return
            if self._running and not self._listening:
                await self._listen()
                logger.info("virtual OPC UA PLC '%s': communication resumed at plant time %.1f s", self.unit,
                            self.plant_time_s)

    async def hang(self) -> None:
        """Fault: the PLC's communication task hangs: connections stay open, nothing is read or answered, new
        connections are accepted and never answered. :meth:`resume_communication` ends it (the hung connections
        are then closed, as a PLC's watchdog restart would)."""
        server = self._server
        if server is None or self._hung or not self._listening:
            return
        bserver = server.bserver
        assert bserver is not None
        original = bserver._make_protocol

        def make_hung_protocol() -> Any:
            protocol = original()
            made = protocol.connection_made

            def connection_made(transport: Any) -> None:
                made(transport)
                self._silence(protocol)

            protocol.connection_made = connection_made  # type: ignore[method-assign]
            return protocol

        bserver._make_protocol = make_hung_protocol  # type: ignore[method-assign]
        self._hung.append((bserver, original))
        for protocol in list(bserver.clients):
            self._silence(protocol)
        logger.info("virtual OPC UA PLC '%s': hung at plant time %.1f s", self.unit, self.plant_time_s)

    async def expire_sessions(self) -> None:
        """Fault: every client session ends on the server (as when a session times out); TCP connections stay."""
        server = self._server
        if server is None or server.bserver is None:
            return
        for protocol in list(server.bserver.clients):
            processor = getattr(protocol, "processor", None)
            session = getattr(processor, "session", None)
            if session is not None:
                await session.close_session(True)
                processor.session = None
        logger.info("virtual OPC UA PLC '%s': sessions expired at plant time %.1f s", self.unit, self.plant_time_s)

    # ------------------------------------------------------------------ server
    async def _listen(self) -> None:
        """Serve again: the same server (only its network side was closed) unless the namespace layout changed
        (building the standard address space of a new server takes seconds)."""
        if self._server is not None and self._built_with == tuple(self.extra_namespaces):
            assert self._server.bserver is not None
            await self._server.bserver.start()
            self._listening = True
            for name in self._node_ids:
                self._push(name)
            return
        if self._server is not None:
            await self._close_server()
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.connection.host}:{self._port}{self.connection.path}")
        server.set_server_name(f"linetwin virtual PLC {self.unit}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        indices: dict[str, int] = {}
        for tag in self._tags:
            if tag.node.namespace_uri not in indices:
                indices[tag.node.namespace_uri] = await server.register_namespace(tag.node.namespace_uri)
        first_index = indices[self._tags[0].node.namespace_uri]
        folder = await server.nodes.objects.add_folder(ua.NodeId("DataBlocksGlobal", first_index),
                                                       ua.QualifiedName("DataBlocksGlobal", first_index))
        blocks: dict[tuple[int, str], Any] = {}
        self._node_ids = {}
        self._tag_of_node = {}
        for tag in self._tags:
            idx = indices[tag.node.namespace_uri]
            node_id = ua.NodeId.from_string(f"ns={idx};{tag.node.identifier}")
            match = _DB_RE.match(tag.node.identifier)
            block_name, member = (match.group(1), match.group(2).strip('"')) if match else ("", tag.name)
            parent = folder
            if block_name:
                if (idx, block_name) not in blocks:
                    blocks[(idx, block_name)] = await folder.add_object(
                        ua.NodeId(f'"{block_name}"', idx), ua.QualifiedName(block_name, idx))
                parent = blocks[(idx, block_name)]
            vtype = _VARIANTS[tag.data_type]
            var = await parent.add_variable(node_id, ua.QualifiedName(member, idx), self._variant_value(tag), vtype,
                                            datatype=ua.NodeId(vtype.value))
            await var.add_property(ua.NodeId(f"{node_id.Identifier}.EURange", idx), ua.QualifiedName("EURange", 0),
                                   ua.Range(Low=tag.eu_range.low, High=tag.eu_range.high))
            unit = UNITS_BY_CODE.get(tag.unit_code)
            if unit is not None:
                info = ua.EUInformation(NamespaceUri=UNECE_NAMESPACE_URI, UnitId=unit.unit_id,
                                        DisplayName=ua.LocalizedText(unit.symbol),
                                        Description=ua.LocalizedText(unit.name))
                await var.add_property(ua.NodeId(f"{node_id.Identifier}.EngineeringUnits", idx),
                                       ua.QualifiedName("EngineeringUnits", 0), info)
            if tag.direction is Direction.COMMANDED:
                await var.set_writable(True)
            self._node_ids[tag.name] = node_id
            self._tag_of_node[node_id] = tag.name
        self._guard_writes(server)
        await server.start()
        bserver = server.bserver
        if bserver is not None:
            self._port = bserver.port
        self._server = server
        self._built_with = tuple(self.extra_namespaces)
        self._listening = True
        for name in self._node_ids:
            self._push(name)

    def _guard_writes(self, server: Server) -> None:
        service = server.iserver.attribute_service
        original = service.write

        async def write(params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
            results = []
            for wv in params.NodesToWrite:
                name = self._tag_of_node.get(wv.NodeId)
                status = self._refusal(name, wv) if name is not None else None
                if status is not None:
                    results.append(ua.StatusCode(status))
                    continue
                result = (await original(ua.WriteParameters(NodesToWrite=[wv]), user))[0]
                if name is not None and result.is_good() and wv.AttributeId == ua.AttributeIds.Value:
                    value = wv.Value.Value.Value if wv.Value is not None and wv.Value.Value is not None else None
                    self._set_memory(name, float(value), datetime.now(UTC))
                    self._push(name)
                results.append(result)
            return results

        service.write = write  # type: ignore[method-assign]

    def _refusal(self, name: str, wv: ua.WriteValue) -> int | None:
        tag = self._by_name[name]
        if tag.direction is not Direction.COMMANDED or wv.AttributeId != ua.AttributeIds.Value:
            return None  # the server's own access-level check answers
        if name in self._refusing:
            return self._refusing[name]
        value = wv.Value.Value.Value if wv.Value is not None and wv.Value.Value is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool) and not tag.eu_range.contains(float(value)):
            return ua.StatusCodes.BadOutOfRange
        return None

    async def _close_server(self, keep_server: bool = False) -> None:
        """Close the network side (``keep_server``: listening socket and connections only) or the whole server."""
        if self._hung:
            self._unhang()
        self._listening = False
        if keep_server and self._server is not None and self._server.bserver is not None:
            await self._server.bserver.stop()
            await asyncio.sleep(0)
            return
        server, self._server = self._server, None
        if server is not None:
            try:
                await server.stop()
            except Exception:  # noqa: BLE001 - stopping must not fail the bench
                logger.debug("virtual OPC UA PLC '%s': server stop raised", self.unit, exc_info=True)
            await asyncio.sleep(0)

    def _silence(self, protocol: Any) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.pause_reading()
        processor = getattr(protocol, "processor", None)
        if processor is not None:
            processor._transport = _NullTransport()

    def _unhang(self) -> None:
        for bserver, original in self._hung:
            bserver._make_protocol = original
            for protocol in list(bserver.clients):
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.close()
        self._hung.clear()
        logger.info("virtual OPC UA PLC '%s': hang ended at plant time %.1f s", self.unit, self.plant_time_s)

    def _measured_tag(self, name: str) -> OpcUaTagSpec:
        for tag in self._measured:
            if tag.name == name:
                return tag
        raise KeyError(f"virtual PLC '{self.unit}': no measured tag '{name}'; measured: "
                       f"{', '.join(t.name for t in self._measured)}")

    # ------------------------------------------------------------------ memory → nodes
    def _variant_value(self, tag: OpcUaTagSpec) -> Any:
        value = self._values.get(tag.name, 0.0)
        vtype = _VARIANTS[tag.data_type]
        if vtype is ua.VariantType.Boolean:
            return bool(value)
        if vtype in (ua.VariantType.Float, ua.VariantType.Double):
            return float(value)
        return int(round(value))

    def _set_memory(self, name: str, value: float, stamp: datetime) -> None:
        tag = self._by_name[name]
        self._values[name] = value
        self._stamps[name] = stamp
        if name not in self._held:
            in_range = tag.eu_range.contains(value)
            self._status[name] = ua.StatusCodes.Good if in_range else ua.StatusCodes.UncertainEngineeringUnitsExceeded

    def _push(self, name: str) -> None:
        """Copy tag ``name`` from memory into its node (value, PLC status, source timestamp)."""
        server = self._server
        node_id = self._node_ids.get(name)
        if server is None or node_id is None:
            return
        tag = self._by_name[name]
        vtype = _VARIANTS[tag.data_type]
        # set directly (not write_attribute_value, which drops the value of a Bad status): like many PLCs this one
        # keeps the last value beside a Bad_SensorFailure
        dv = ua.DataValue(ua.Variant(self._variant_value(tag), vtype), StatusCode=ua.StatusCode(self._status[name]),
                          SourceTimestamp=self._stamps[name], ServerTimestamp=datetime.now(UTC))
        node = server.iserver.aspace._nodes.get(node_id)
        if node is None:
            return
        attval = node.attributes[ua.AttributeIds.Value]
        attval.value = dv
        for key, callback in list(attval.datachange_callbacks.items()):
            asyncio.get_running_loop().create_task(callback(key, dv))

    def _publish_measurements(self, stamp: datetime) -> None:
        values = self.plant.measurements()
        for tag in self._measured:
            if tag.name in self._held:
                continue
            value = values[tag.name]
            if not math.isfinite(value):
                continue
            if self._values.get(tag.name) != value:
                self._set_memory(tag.name, value, stamp)
                self._push(tag.name)

    # ------------------------------------------------------------------ plant loop (paced by PlantPacer)
    def _step_once(self) -> None:
        commands = {t.name: self._values[t.name] for t in self._commanded}
        self.plant.step(self.step_s, commands)
