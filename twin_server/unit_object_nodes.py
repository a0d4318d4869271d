"""An object of read-only variables under a unit, declared once and then only written: the estimator's and the
forecast's nodes (:mod:`twin_server.estimator_nodes`, :mod:`twin_server.forecast_nodes`).

Node ids are ``"<line>.<unit>.<object>.<name>"``. A variable with a unit carries ``EngineeringUnits``: the UNECE
code's EUInformation where the unit has one (:mod:`process_models.engineering_units`), else — a model's declared SI
unit without a Rec. 20 code, such as ``kg/kg`` or ``1/(m3 s)`` — an EUInformation with ``UnitId = -1`` (OPC 10000-8
§5.6.3: no code available) and the unit's text as display name. With a range the variable is an ``AnalogItemType``
with ``EURange``, else a ``BaseAnalogType``. Values are ``BadWaitingForInitialData`` until first set. Numeric
scalars (Double, UInt32) are the ones the historian keeps (``numeric_scalars``, ``on_value``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import Server, ua

from plc_adapters.asyncua_seam import add_nodes, address_space
from process_models.engineering_units import UNECE_NAMESPACE_URI, UNITS_BY_CODE, code_for_si_text
from twin_server.address_space import engineering_units, object_item, variable_item

WAITING = ua.StatusCodes.BadWaitingForInitialData
_NUMERIC = (ua.VariantType.Double, ua.VariantType.UInt32)
_DATA_TYPES = {ua.VariantType.Double: ua.ObjectIds.Double, ua.VariantType.UInt32: ua.ObjectIds.UInt32,
               ua.VariantType.String: ua.ObjectIds.String, ua.VariantType.Boolean: ua.ObjectIds.Boolean}


def eu_information(unit: str) -> ua.EUInformation:
    """EUInformation of a UNECE code or of a declared SI unit text (UnitId -1 where no code is known)."""
    if unit in UNITS_BY_CODE:
        return engineering_units(unit)
    code = code_for_si_text(unit)
    if code is not None:
        return engineering_units(code)
    return ua.EUInformation(NamespaceUri=UNECE_NAMESPACE_URI, UnitId=-1, DisplayName=ua.LocalizedText(unit),
                            Description=ua.LocalizedText(f"{unit} (SI, as the model declares it; no UNECE code)"))


class UnitObjectNodes:
    """Declare variables with :meth:`scalar` / :meth:`array`, create them with :meth:`build`, write with :meth:`set`."""

    def __init__(self, server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                 name: str, description: str) -> None:
        self._server = server
        self._write_attribute = address_space(server).write
        self._idx = namespace_index
        self._prefix = f"{line}.{unit}.{name}"
        self.object_id = ua.NodeId(self._prefix, namespace_index)
        self._items = [object_item(self.object_id, namespace_index, name, unit_node,
                                   ua.NodeId(ua.ObjectIds.BaseObjectType), description)]
        self._props: list[ua.AddNodesItem] = []
        self._waiting: list[str] = []
        self.numeric_scalars: list[ua.NodeId] = []
        """Numeric scalar nodes: the ones the historian keeps."""
        self.on_value: Callable[[str, float | None, int, datetime], None] | None = None
        """Called with ``(node key, value, status, time)`` for every numeric scalar set (the historian)."""

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{name}", self._idx)

    def key(self, name: str) -> str:
        """The node's id text (the historian's series key)."""
        return f"{self._prefix}.{name}"

    def scalar(self, name: str, description: str, unit: str | None = None, eu_range: tuple[float, float] | None = None,
               variant_type: ua.VariantType = ua.VariantType.Double) -> None:
        """A scalar variable (waiting for its first value); ``unit``: UNECE code or declared SI unit text."""
        nid = self.node_id(name)
        initial = ua.Variant(0.0 if variant_type == ua.VariantType.Double else None, variant_type)
        self._items.append(variable_item(nid, self._idx, name, self.object_id, initial, _DATA_TYPES[variant_type],
                                         self._type_of(unit, eu_range), description))
        self._unit_properties(nid, unit, eu_range)
        self._waiting.append(name)
        if variant_type in _NUMERIC:
            self.numeric_scalars.append(nid)

    def array(self, name: str, description: str, unit: str | None = None,
              eu_range: tuple[float, float] | None = None) -> None:
        """A one-dimensional Double array variable (waiting for its first value)."""
        nid = self.node_id(name)
        item = variable_item(nid, self._idx, name, self.object_id, ua.Variant([], ua.VariantType.Double),
                             ua.ObjectIds.Double, self._type_of(unit, eu_range), description)
        item.NodeAttributes.ValueRank = ua.ValueRank.OneDimension
        item.NodeAttributes.ArrayDimensions = [0]
        self._items.append(item)
        self._unit_properties(nid, unit, eu_range)
        self._waiting.append(name)

    @staticmethod
    def _type_of(unit: str | None, eu_range: tuple[float, float] | None) -> int:
        if not unit:
            return ua.ObjectIds.BaseDataVariableType
        return ua.ObjectIds.AnalogItemType if eu_range is not None else ua.ObjectIds.BaseAnalogType

    def _unit_properties(self, nid: ua.NodeId, unit: str | None, eu_range: tuple[float, float] | None) -> None:
        if not unit:
            return
        idx = self._idx
        if eu_range is not None:
            self._props.append(variable_item(
                ua.NodeId(f"{nid.Identifier}.EURange", idx), idx, "EURange", nid,
                ua.Variant(ua.Range(Low=eu_range[0], High=eu_range[1]), ua.VariantType.ExtensionObject),
                ua.ObjectIds.Range, ua.ObjectIds.PropertyType, "Engineering range", is_property=True))
        self._props.append(variable_item(
            ua.NodeId(f"{nid.Identifier}.EngineeringUnits", idx), idx, "EngineeringUnits", nid,
            ua.Variant(eu_information(unit), ua.VariantType.ExtensionObject), ua.ObjectIds.EUInformation,
            ua.ObjectIds.PropertyType, "Engineering units (UNECE)", is_property=True))

    async def build(self) -> None:
        """Create the object and every declared variable (once)."""
        items = self._items + self._props
        results = await add_nodes(self._server, items)
        for it, res in zip(items, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create node {it.RequestedNewNodeId}: {res.StatusCode}")
        for name in self._waiting:
            await self.set(name, None, status=WAITING)

    async def set(self, name: str, value: object, variant_type: ua.VariantType = ua.VariantType.Double,
                  status: int = ua.StatusCodes.Good) -> None:
        now = datetime.now(UTC)
        if self.on_value is not None and variant_type in _NUMERIC and not isinstance(value, list):
            self.on_value(self.key(name), None if value is None else float(value), status, now)  # type: ignore[arg-type]
        variant = ua.Variant(value, variant_type) if value is not None else ua.Variant()
        await self._write_attribute(
            self.node_id(name), ua.AttributeIds.Value,
            ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now),
        )
