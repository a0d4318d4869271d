"""OPC UA nodes of a unit's control loop: mode, target, estimates with 1σ, predicted trajectory, solve
statistics, counters, last supervisor event, and the StartBatch / StopBatch methods.

Node ids are ``"<line>.<unit>.control.<name>"`` under an object ``control`` of the unit. Values are
written on the server's fast path (address space writes), like the mirrored tags.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Server, ua

from twin_server.address_space import analog_properties, object_item, variable_item


@dataclass(frozen=True, slots=True)
class PublishedQuantity:
    """A published control quantity: node name, UNECE unit code, description, and whether it has a ``_std`` twin."""

    name: str
    unit_code: str
    description: str
    with_std: bool = True


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
_NUMERIC = (ua.VariantType.Double, ua.VariantType.UInt32)


class ControlNodes:
    """Creates and updates one unit's control nodes."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId) -> None:
        self._server = server
        self._aspace = server.iserver.aspace
        self._idx = namespace_index
        self._prefix = f"{line}.{unit}.control"
        self._unit_node = unit_node
        self.object_id = ua.NodeId(self._prefix, namespace_index)
        self.writable: dict[ua.NodeId, WritableControl] = {}
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

        def scalar(name: str, variant: ua.Variant, data_type: int, description: str, unit_code: str | None = None,
                   is_writable: bool = False, eu_range: tuple[float, float] | None = None) -> None:
            nid = self.node_id(name)
            type_def = ua.ObjectIds.AnalogItemType if unit_code else ua.ObjectIds.BaseDataVariableType
            items.append(variable_item(nid, idx, name, self.object_id, variant, data_type, type_def, description,
                                   writable=is_writable))
            if data_type in (ua.ObjectIds.Double, ua.ObjectIds.UInt32):
                self.numeric_scalars.append(nid)
            if unit_code:
                low, high = eu_range if eu_range else (-1e300, 1e300)
                props.extend(analog_properties(nid, idx, unit_code, low, high))

        def array(name: str, description: str) -> None:
            item = variable_item(self.node_id(name), idx, name, self.object_id, ua.Variant([], ua.VariantType.Double),
                                 ua.ObjectIds.Double, ua.ObjectIds.BaseDataVariableType, description)
            item.NodeAttributes.ValueRank = ua.ValueRank.OneDimension
            item.NodeAttributes.ArrayDimensions = [0]
            items.append(item)

        for w in writable:
            initial = ua.Variant("manual" if w.variant_type == ua.VariantType.String else 0.0, w.variant_type)
            dtype = ua.ObjectIds.String if w.variant_type == ua.VariantType.String else ua.ObjectIds.Double
            rng = (w.low, w.high) if w.low is not None and w.high is not None else None
            scalar(w.name, initial, dtype, w.description, w.unit_code, is_writable=True, eu_range=rng)
            self.writable[self.node_id(w.name)] = w
        scalar("strategy", ua.Variant("", ua.VariantType.String), ua.ObjectIds.String, "Configured recipe / strategy")
        scalar("batch_active", ua.Variant(False, ua.VariantType.Boolean), ua.ObjectIds.Boolean,
               "True between StartBatch and batch end or StopBatch")
        scalar("batch_time_s", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
               "Batch time since StartBatch (s, twin clock)", "SEC")
        for q in estimates:
            scalar(f"estimated_{q.name}", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
                   f"Estimate of {q.description}", q.unit_code)
            if q.with_std:
                scalar(f"estimated_{q.name}_std", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
                       f"Standard deviation (1σ) of the estimate of {q.description}", q.unit_code)
        for q in (PublishedQuantity("time_s", "SEC", "prediction time grid, s from now", False), *trajectory):
            array(f"predicted_{q.name}", f"NMPC predicted {q.description} ({q.unit_code})")
        scalar("solve_time_ms", ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
               "Wall time of the last NMPC solve (ms)")
        array("solve_times_ms", "Wall time of every NMPC solve of the current batch (ms)")
        scalar("solve_status", ua.Variant("none", ua.VariantType.String), ua.ObjectIds.String,
               "IPOPT return status of the last NMPC solve")
        for c in COUNTERS:
            scalar(c, ua.Variant(0, ua.VariantType.UInt32), ua.ObjectIds.UInt32, c.replace("_", " "))
        scalar("last_event", ua.Variant("", ua.VariantType.String), ua.ObjectIds.String,
               "Last supervisor event (fallbacks, mode changes)")
        results = await self._server.iserver.isession.add_nodes(items + props)
        for it, res in zip(items + props, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create control node {it.RequestedNewNodeId}: {res.StatusCode}")
        control = self._server.get_node(self.object_id)

        async def start(_parent: ua.NodeId) -> list[ua.Variant] | ua.StatusCode:
            return await _call_status(on_start_batch)

        async def stop(_parent: ua.NodeId) -> list[ua.Variant] | ua.StatusCode:
            return await _call_status(on_stop_batch)

        await control.add_method(self.node_id("StartBatch"), "StartBatch", start, [], [])
        await control.add_method(self.node_id("StopBatch"), "StopBatch", stop, [], [])

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double,
                  status: int = ua.StatusCodes.Good) -> None:
        now = datetime.now(UTC)
        if self.on_value is not None and variant_type in _NUMERIC and not isinstance(value, list):
            self.on_value(f"{self._prefix}.{name}", None if value is None else float(value), status, now)  # type: ignore[arg-type]
        variant = ua.Variant(value, variant_type) if value is not None else ua.Variant()
        await self._aspace.write_attribute_value(
            self.node_id(name), ua.AttributeIds.Value,
            ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now),
        )


async def _call_status(action: Callable[[], Awaitable[None]]) -> list[ua.Variant] | ua.StatusCode:
    """Run a method's action; a refusal (``UaStatusCodeError``) becomes the call's Bad status."""
    try:
        await action()
    except ua.UaStatusCodeError as exc:
        return ua.StatusCode(exc.code)
    return []
