"""OPC UA nodes of a unit's control loop: mode, target, estimates with 1σ, predicted trajectory, solve
statistics, counters, last supervisor event, and the StartBatch / StopBatch methods.

Node ids are ``"<line>.<unit>.control.<name>"`` under an object ``control`` of the unit; browse names are in the
project namespace. Values are written on the server's fast path (address space writes), like the mirrored tags.

Every number with a unit carries ``EngineeringUnits``; those with a meaningful range also ``EURange`` (then the
variable is an ``AnalogItemType``, else a ``BaseAnalogType``, OPC 10000-8 §5.3.2). Estimates, predictions and the
last solve time are ``BadWaitingForInitialData`` (value null) until there is an estimate, a prediction or a solve,
so a client never reads a placeholder 0 as a value. StartBatch / StopBatch are checked and audited
(:mod:`twin_server.method_calls`); both are operator-role methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Server, ua

from plc_adapters.asyncua_seam import add_nodes, address_space
from twin_server.address_space import engineering_units, object_item, variable_item
from twin_server.audit import AuditTrail
from twin_server.method_calls import add_checked_method


@dataclass(frozen=True, slots=True)
class PublishedQuantity:
    """A published control quantity: node name, UNECE unit code, description, and whether it has a ``_std`` twin."""

    name: str
    unit_code: str
    description: str
    with_std: bool = True
    eu_range: tuple[float, float] | None = None
    """EURange where a range is meaningful (e.g. a size from 0 to the largest target); None: EngineeringUnits only."""


@dataclass(frozen=True, slots=True)
class WritableControl:
    """A writable control node (``mode``, ``target_<output>``): data type and, for numbers, the accepted range."""

    name: str
    variant_type: ua.VariantType
    description: str
    unit_code: str | None = None
    low: float | None = None
    high: float | None = None


COUNTERS = ("solves", "failed_solves", "setpoints_written", "fallbacks_used")
METHOD_ROLE = "operator"
"""The role a user needs to call StartBatch / StopBatch (enforced by the security layer)."""
WAITING = ua.StatusCodes.BadWaitingForInitialData
_NUMERIC = (ua.VariantType.Double, ua.VariantType.UInt32)


class ControlNodes:
    """Creates and updates one unit's control nodes."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 audit: AuditTrail | None = None) -> None:
        self._server = server
        self._write_attribute = address_space(server).write
        self._idx = namespace_index
        self._prefix = f"{line}.{unit}.control"
        self._unit_node = unit_node
        self._audit = audit or AuditTrail()
        self.object_id = ua.NodeId(self._prefix, namespace_index)
        self.writable: dict[ua.NodeId, WritableControl] = {}
        self.method_roles: dict[ua.NodeId, str] = {}
        """Method node → the role that may call it (for the security layer)."""
        self.prediction_names: list[str] = []
        self.numeric_scalars: list[ua.NodeId] = []
        """Numeric scalar nodes (estimates, statistics, counters): the ones the historian keeps."""
        self.on_value: Callable[[str, float | None, int, datetime], None] | None = None
        """Called with ``(node key, value, status, time)`` for every numeric scalar set (the historian)."""

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{name}", self._idx)

    async def build(self, estimates: Sequence[PublishedQuantity], writable: Sequence[WritableControl],
                    trajectory: Sequence[PublishedQuantity],
                    on_start_batch: Callable[[], Awaitable[None]],
                    on_stop_batch: Callable[[], Awaitable[None]]) -> None:
        idx = self._idx
        items = [object_item(self.object_id, idx, "control", self._unit_node, ua.NodeId(ua.ObjectIds.BaseObjectType),
                         "State estimation, NMPC and supervisor of this unit")]
        props: list[ua.AddNodesItem] = []

        waiting: list[str] = []

        def unit_properties(nid: ua.NodeId, unit_code: str, eu_range: tuple[float, float] | None) -> None:
            if eu_range is not None:
                props.append(variable_item(
                    ua.NodeId(f"{nid.Identifier}.EURange", idx), idx, "EURange", nid,
                    ua.Variant(ua.Range(Low=eu_range[0], High=eu_range[1]), ua.VariantType.ExtensionObject),
                    ua.ObjectIds.Range, ua.ObjectIds.PropertyType, "Engineering range", is_property=True))
            props.append(variable_item(
                ua.NodeId(f"{nid.Identifier}.EngineeringUnits", idx), idx, "EngineeringUnits", nid,
                ua.Variant(engineering_units(unit_code), ua.VariantType.ExtensionObject), ua.ObjectIds.EUInformation,
                ua.ObjectIds.PropertyType, "Engineering units (UNECE)", is_property=True))

        def type_of(unit_code: str | None, eu_range: tuple[float, float] | None) -> int:
            if not unit_code:
                return ua.ObjectIds.BaseDataVariableType
            return ua.ObjectIds.AnalogItemType if eu_range is not None else ua.ObjectIds.BaseAnalogType

        def scalar(name: str, variant: ua.Variant, data_type: int, description: str, unit_code: str | None = None,
                   is_writable: bool = False, eu_range: tuple[float, float] | None = None,
                   initially_waiting: bool = False) -> None:
            nid = self.node_id(name)
            items.append(variable_item(nid, idx, name, self.object_id, variant, data_type,
                                       type_of(unit_code, eu_range), description, writable=is_writable))
            if unit_code:
                unit_properties(nid, unit_code, eu_range)
            if initially_waiting:
                waiting.append(name)
            if data_type in (ua.ObjectIds.Double, ua.ObjectIds.UInt32):
                self.numeric_scalars.append(nid)

        def array(name: str, description: str, unit_code: str | None = None,
                  eu_range: tuple[float, float] | None = None, initially_waiting: bool = False) -> None:
            nid = self.node_id(name)
            item = variable_item(nid, idx, name, self.object_id, ua.Variant([], ua.VariantType.Double),
                                 ua.ObjectIds.Double, type_of(unit_code, eu_range), description)
            item.NodeAttributes.ValueRank = ua.ValueRank.OneDimension
            item.NodeAttributes.ArrayDimensions = [0]
            items.append(item)
            if unit_code:
                unit_properties(nid, unit_code, eu_range)
            if initially_waiting:
                waiting.append(name)

        for w in writable:
            initial = ua.Variant("manual" if w.variant_type == ua.VariantType.String else 0.0, w.variant_type)
            dtype = ua.ObjectIds.String if w.variant_type == ua.VariantType.String else ua.ObjectIds.Double
            rng = (w.low, w.high) if w.low is not None and w.high is not None else None
            scalar(w.name, initial, dtype, w.description, w.unit_code, is_writable=True, eu_range=rng)
            self.writable[self.node_id(w.name)] = w
        scalar("strategy", ua.Variant("", ua.VariantType.String), ua.ObjectIds.String,
               "Who decides the setpoints now: the recipe's name in auto mode, mpc, or manual")
        scalar("batch_active", ua.Variant(False, ua.VariantType.Boolean), ua.ObjectIds.Boolean,
               "True between StartBatch and batch end or StopBatch")
        scalar("batch_time_s", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
               "Batch time since StartBatch (s, twin clock)", "SEC")
        for q in estimates:
            scalar(f"estimated_{q.name}", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
                   f"Estimate of {q.description}", q.unit_code, eu_range=q.eu_range, initially_waiting=True)
            if q.with_std:
                scalar(f"estimated_{q.name}_std", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
                       f"Standard deviation (1σ) of the estimate of {q.description}", q.unit_code,
                       initially_waiting=True)
        self.prediction_names = []
        for q in (PublishedQuantity("time_s", "SEC", "prediction time grid, s from now", False), *trajectory):
            array(f"predicted_{q.name}", f"NMPC predicted {q.description}", q.unit_code, q.eu_range,
                  initially_waiting=True)
            self.prediction_names.append(f"predicted_{q.name}")
        scalar("solve_time_ms", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
               "Wall time of the last NMPC solve", "C26", initially_waiting=True)
        array("solve_times_ms", "Wall time of every NMPC solve of the current batch", "C26")
        scalar("solve_status", ua.Variant("none", ua.VariantType.String), ua.ObjectIds.String,
               "IPOPT return status of the last NMPC solve")
        for c in COUNTERS:
            scalar(c, ua.Variant(0, ua.VariantType.UInt32), ua.ObjectIds.UInt32, c.replace("_", " "))
        scalar("last_event", ua.Variant("", ua.VariantType.String), ua.ObjectIds.String,
               "Last supervisor event (fallbacks, mode changes)")
        results = await add_nodes(self._server, items + props)
        for it, res in zip(items + props, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create control node {it.RequestedNewNodeId}: {res.StatusCode}")
        for name in waiting:
            await self.set(name, None, status=WAITING)
        for name, action in (("StartBatch", on_start_batch), ("StopBatch", on_stop_batch)):
            method_id = self.node_id(name)
            await add_checked_method(self._server, self.object_id, method_id, ua.QualifiedName(name, idx), action,
                                     self._audit, audit_name=f"{self._prefix}.{name}")
            self.method_roles[method_id] = METHOD_ROLE

    async def reset_predictions(self) -> None:
        """Predictions of a previous batch are not predictions of this one: waiting until the next solve."""
        for name in self.prediction_names:
            await self.set(name, None, status=WAITING)

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double,
                  status: int = ua.StatusCodes.Good) -> None:
        now = datetime.now(UTC)
        if self.on_value is not None and variant_type in _NUMERIC and not isinstance(value, list):
            self.on_value(f"{self._prefix}.{name}", None if value is None else float(value), status, now)  # type: ignore[arg-type]
        variant = ua.Variant(value, variant_type) if value is not None else ua.Variant()
        await self._write_attribute(
            self.node_id(name), ua.AttributeIds.Value,
            ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now),
        )
