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

The plant loop, start/stop and the network faults are every virtual PLC's (:mod:`hil.virtual_plc_base`): paced
real time × ``speed``; :meth:`suspend_communication` (drops off the network) and :meth:`hang` (TCP stays open,
nothing is answered) act on a loopback TCP proxy in front of the server — the server's endpoint advertises the
proxy's port and listens on an internal one — so no asyncua internals are patched for them. What the PLC needs of
asyncua's internals (its write refusals, a value kept beside a Bad status, session expiry, the port it bound) goes
through the one asyncua seam, :mod:`plc_adapters.asyncua_seam`. The plant state and the
node values live in the PLC's memory (retentive), not in the server: the server is only the PLC's communication
front end, re-created on every (re)start.

Fault primitives OPC UA adds: :meth:`expire_sessions` (the server ends every session, as on a session timeout),
:meth:`refuse_writes`; :meth:`hold_measurement` shows as ``Bad_SensorFailure`` with the last value.
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
from asyncua.crypto.permission_rules import User

from hil.plant import Plant
from hil.virtual_plc_base import (
    INTERNAL_HOST,
    VirtualPlcBase,
    VirtualPlcConfigError,
    check_plant_signals,
    register_virtual_plc,
)
from plc_adapters.asyncua_seam import (
    AddressSpaceView,
    WriteHook,
    address_space,
    close_client_sessions,
    init_server,
    install_write_hook,
    listening_port,
    stop_server,
)
from plc_adapters.opcua_spec import OpcUaConnection, OpcUaTagSpec
from plc_adapters.tag_map import Direction
from process_models.engineering_units import UNECE_NAMESPACE_URI, UNITS_BY_CODE

logger = logging.getLogger(__name__)

BAD_SENSOR_FAILURE = ua.StatusCodes.BadSensorFailure
_DB_RE = re.compile(r'^s="([^"]+)"\.(.+)$')
_VARIANTS = {"float32": ua.VariantType.Float, "float64": ua.VariantType.Double, "int16": ua.VariantType.Int16,
             "uint16": ua.VariantType.UInt16, "int32": ua.VariantType.Int32, "uint32": ua.VariantType.UInt32,
             "bool": ua.VariantType.Boolean}


def validate_opcua_tags(unit: str, tags: Sequence[OpcUaTagSpec], plant: Plant) -> None:
    """Every tag is a signal of the plant with the plant's direction, and nodes are unique."""
    check_plant_signals(unit, tags, plant)
    seen: set[tuple[str, str]] = set()
    for tag in tags:
        where = f"unit '{unit}', tag '{tag.name}'"
        key = (tag.node.namespace_uri, tag.node.identifier)
        if key in seen:
            raise VirtualPlcConfigError(f"{where}: node {tag.node} served twice")
        if not tag.node.namespace_uri:
            raise VirtualPlcConfigError(f"{where}: a PLC's own nodes need a namespace URI, not namespace 0")
        seen.add(key)


@register_virtual_plc
class VirtualOpcUaPlc(VirtualPlcBase):
    """OPC UA virtual PLC for ONE unit, driven by ``plant`` in paced real time × ``speed``."""

    protocol = OpcUaConnection.protocol
    kind_text = "virtual OPC UA PLC"

    def __init__(self, unit: str, connection: OpcUaConnection, tags: Sequence[OpcUaTagSpec], plant: Plant,
                 speed: float = 1.0, step_s: float = 0.1, extra_namespaces: Sequence[str] = ()) -> None:
        super().__init__(unit, connection, tags, plant, speed=speed, step_s=step_s)
        self.extra_namespaces: list[str] = list(extra_namespaces)
        self._by_name = {t.name: t for t in self._tags}
        now = datetime.now(UTC)
        self._values: dict[str, float] = {}
        self._status: dict[str, int] = {}
        self._stamps: dict[str, datetime] = {}
        self._server: Server | None = None
        self._nodes: AddressSpaceView | None = None
        self._asyncua_write: WriteHook | None = None
        self._node_ids: dict[str, ua.NodeId] = {}
        self._tag_of_node: dict[ua.NodeId, str] = {}
        for name, value in plant.initial_commands().items():
            if name in self._by_name:
                self._set_memory(name, value, now)
        self._refusing: dict[str, int] = {}
        self._publish_measurements()

    @classmethod
    def check_tags(cls, unit: str, tags: Sequence[OpcUaTagSpec], plant: Plant) -> None:
        validate_opcua_tags(unit, tags, plant)

    # ------------------------------------------------------------------ public
    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.connection.host}:{self.port}{self.connection.path}"

    @property
    def namespace_indices(self) -> dict[str, int]:
        """Vendor namespace URI → its index on the running server."""
        return {self._by_name[n].node.namespace_uri: nid.NamespaceIndex for n, nid in self._node_ids.items()}

    def read_tag(self, name: str) -> float:
        """The PLC's current value of tag ``name`` (KeyError if unknown)."""
        if name not in self._by_name:
            raise KeyError(f"virtual PLC '{self.unit}': no tag '{name}'")
        return self._values[name]

    def refuse_writes(self, name: str, status: int = ua.StatusCodes.BadUserAccessDenied) -> None:
        """The PLC refuses writes to commanded tag ``name`` with ``status`` (e.g. local mode) until
        :meth:`accept_writes`."""
        if name not in {t.name for t in self._commanded}:
            raise KeyError(f"virtual PLC '{self.unit}': no commanded tag '{name}'")
        self._refusing[name] = status

    def accept_writes(self, name: str) -> None:
        self._refusing.pop(name, None)

    async def expire_sessions(self) -> None:
        """Fault: every client session ends on the server (as when a session times out); TCP connections stay."""
        if self._server is None:
            return
        await close_client_sessions(self._server)
        logger.info("virtual OPC UA PLC '%s': sessions expired at plant time %.1f s", self.unit, self.plant_time_s)

    # ------------------------------------------------------------------ VirtualPlcBase's protocol part
    async def _serve(self, advertised_port: int) -> int:
        """Build and start the server: its endpoint advertises ``advertised_port`` (the fault proxy's), it listens
        on an internal loopback port (asyncua's public ``socket_address``)."""
        server = Server()
        await init_server(server)
        server.set_endpoint(f"opc.tcp://{self.connection.host}:{advertised_port}{self.connection.path}")
        server.socket_address = (INTERNAL_HOST, 0)
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
        self._asyncua_write = install_write_hook(server, self._write)
        await server.start()
        self._server = server
        self._nodes = address_space(server)
        for name in self._node_ids:
            self._push(name)
        return listening_port(server)

    async def _close(self) -> None:
        server, self._server, self._nodes = self._server, None, None
        if server is not None:
            try:
                await stop_server(server)  # its nodes freed now, not by a full collection later
            except Exception:  # noqa: BLE001 - stopping must not fail the bench
                logger.debug("virtual OPC UA PLC '%s': server stop raised", self.unit, exc_info=True)
            await asyncio.sleep(0)

    def _show_held(self, tag: OpcUaTagSpec) -> None:
        self._status[tag.name] = BAD_SENSOR_FAILURE
        self._stamps[tag.name] = datetime.now(UTC)
        self._push(tag.name)

    async def _write(self, params: ua.WriteParameters, user: User) -> list[ua.StatusCode]:
        """A client's Write (the seam's write hook): the PLC's own refusals first, then asyncua's service (its
        access-level and type checks); a written commanded value goes into the PLC's memory."""
        asyncua_write = self._asyncua_write
        assert asyncua_write is not None, "installed with the hook"
        results = []
        for wv in params.NodesToWrite:
            name = self._tag_of_node.get(wv.NodeId)
            status = self._refusal(name, wv) if name is not None else None
            if status is not None:
                results.append(ua.StatusCode(status))
                continue
            result = (await asyncua_write(ua.WriteParameters(NodesToWrite=[wv]), user))[0]
            if name is not None and result.is_good() and wv.AttributeId == ua.AttributeIds.Value:
                value = wv.Value.Value.Value if wv.Value is not None and wv.Value.Value is not None else None
                self._set_memory(name, float(value), datetime.now(UTC))
                self._push(name)
            results.append(result)
        return results

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
        nodes, node_id = self._nodes, self._node_ids.get(name)
        if nodes is None or node_id is None:
            return
        tag = self._by_name[name]
        vtype = _VARIANTS[tag.data_type]
        # published as it is (not written, which drops the value of a Bad status): like many PLCs this one keeps
        # the last value beside a Bad_SensorFailure
        dv = ua.DataValue(ua.Variant(self._variant_value(tag), vtype), StatusCode=ua.StatusCode(self._status[name]),
                          SourceTimestamp=self._stamps[name], ServerTimestamp=datetime.now(UTC))
        nodes.publish(node_id, dv)

    def _publish_measurements(self) -> None:
        stamp = datetime.now(UTC)
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

    def _after_burst(self) -> None:
        self._publish_measurements()
