"""The line's OPC UA address space, built once from the config.

Layout (namespace = ``[server] namespace``)::

    Objects/
      <line>                      (LineType)
        <unit>                    (MixingTankType | CrystallizerType | ChromatographyColumnType,
          <tag>  AnalogItemType     all subtypes of ProcessUnitType)
            EURange, EngineeringUnits (properties)
          plc_connected           Boolean: the adapter's view of the PLC link

Nodes are created in one batch by the seam's bulk node creation (:func:`~plc_adapters.asyncua_seam.add_nodes_in_bulk`:
no per-node client calls, and time linear in the tags per unit — asyncua's own AddNodes scans the parent's
references per new node, quadratic per folder); the tags' nodes (three per tag) as copies of one template per
shape (:class:`TagNodeTemplates`, :func:`~plc_adapters.asyncua_seam.add_node_copies`: the same nodes at a fraction
of the cost). On the hot path only values are written (see :mod:`twin_server.runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import Server, ua

from plc_adapters.asyncua_seam import NodeCopy, NodeTemplate, add_node_copies, add_nodes_in_bulk, address_space
from plc_adapters.tag_map import Direction, TagSpec
from process_models.engineering_units import UNECE_NAMESPACE_URI, UNITS_BY_CODE
from process_models.registry import unit_kinds
from twin_server.config import LineConfig

PROCESS_UNIT_TYPE = "ProcessUnitType"
LINE_TYPE = "LineType"


@dataclass(frozen=True, slots=True)
class TagNode:
    """A tag's variable node and the tag declaration behind it."""

    unit: str
    tag: TagSpec
    node_id: ua.NodeId


@dataclass(frozen=True)
class LineAddressSpace:
    """Node ids of everything the runtime writes to, by unit and tag name."""

    namespace_index: int
    line_node: ua.NodeId
    type_nodes: dict[str, ua.NodeId]
    unit_nodes: dict[str, ua.NodeId]
    tag_nodes: dict[tuple[str, str], TagNode]
    connection_nodes: dict[str, ua.NodeId]

    def tag_by_node(self) -> dict[ua.NodeId, TagNode]:
        return {tn.node_id: tn for tn in self.tag_nodes.values()}


def unit_type_name(kind: str) -> str:
    """The ObjectType name of a unit kind: ``chromatography_column`` -> ``ChromatographyColumnType``."""
    return "".join(part.capitalize() for part in kind.split("_")) + "Type"


def object_type_item(node_id: ua.NodeId, idx: int, name: str, parent: ua.NodeId, description: str) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, idx)
    item.NodeClass = ua.NodeClass.ObjectType
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasSubtype)
    attrs = ua.ObjectTypeAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description)
    attrs.IsAbstract = name == PROCESS_UNIT_TYPE
    item.NodeAttributes = attrs
    return item


def object_item(node_id: ua.NodeId, idx: int, name: str, parent: ua.NodeId, type_id: ua.NodeId,
            description: str, reference: int = ua.ObjectIds.HasComponent) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, idx)
    item.NodeClass = ua.NodeClass.Object
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(reference)
    item.TypeDefinition = type_id
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description or name)
    attrs.EventNotifier = 0
    item.NodeAttributes = attrs
    return item


def variable_item(node_id: ua.NodeId, idx: int, name: str, parent: ua.NodeId, value: ua.Variant, data_type: int,
              type_def: int, description: str, writable: bool = False, is_property: bool = False,
              sampling_ms: float = 0.0) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, 0 if is_property else idx)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasProperty if is_property else ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(type_def)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description or name)
    attrs.DataType = ua.NodeId(data_type)
    attrs.Value = value
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.ArrayDimensions = None
    access = ua.AccessLevel.CurrentRead.mask | (ua.AccessLevel.CurrentWrite.mask if writable else 0)
    attrs.AccessLevel = access
    attrs.UserAccessLevel = access
    attrs.MinimumSamplingInterval = sampling_ms
    attrs.Historizing = False
    attrs.WriteMask = 0
    attrs.UserWriteMask = 0
    item.NodeAttributes = attrs
    return item


def engineering_units(unit_code: str) -> ua.EUInformation:
    """OPC UA EUInformation for a UNECE code (validated by the config loader)."""
    unit = UNITS_BY_CODE[unit_code]
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE_URI, UnitId=unit.unit_id,
        DisplayName=ua.LocalizedText(unit.symbol), Description=ua.LocalizedText(unit.name),
    )


def analog_properties(node_id: ua.NodeId, idx: int, unit_code: str, low: float, high: float) -> list[ua.AddNodesItem]:
    """The ``EURange`` and ``EngineeringUnits`` properties of an AnalogItemType variable."""
    return [
        variable_item(ua.NodeId(f"{node_id.Identifier}.EURange", idx), idx, "EURange", node_id,
                      ua.Variant(ua.Range(Low=low, High=high), ua.VariantType.ExtensionObject),
                      ua.ObjectIds.Range, ua.ObjectIds.PropertyType, "Engineering range", is_property=True),
        variable_item(ua.NodeId(f"{node_id.Identifier}.EngineeringUnits", idx), idx, "EngineeringUnits", node_id,
                      ua.Variant(engineering_units(unit_code), ua.VariantType.ExtensionObject),
                      ua.ObjectIds.EUInformation, ua.ObjectIds.PropertyType, "Engineering units (UNECE)",
                      is_property=True),
    ]


class TagNodeTemplates:
    """The node shapes of a tag: its AnalogItemType variable (read-only, or writable for a commanded tag; sampling
    interval the line's scan period), its ``EURange`` and ``EngineeringUnits`` properties — each made once by
    asyncua and copied per tag (:func:`~plc_adapters.asyncua_seam.add_node_copies`); the nodes are those
    :func:`variable_item` and :func:`analog_properties` describe."""

    def __init__(self, server: Server, idx: int, sampling_ms: float) -> None:
        placeholder = ua.NodeId("tag-template", idx)

        def variable(writable: bool) -> NodeTemplate:
            return NodeTemplate(server, variable_item(
                placeholder, idx, "tag", placeholder, ua.Variant(0.0, ua.VariantType.Double), ua.ObjectIds.Double,
                ua.ObjectIds.AnalogItemType, "tag", writable=writable, sampling_ms=sampling_ms))

        self._variables = {False: variable(False), True: variable(True)}
        eu_range, units = analog_properties(placeholder, idx, "CEL", 0.0, 1.0)
        self._range, self._units = NodeTemplate(server, eu_range), NodeTemplate(server, units)
        self._units_values: dict[str, ua.Variant] = {}
        self._idx = idx

    def copies(self, tag: TagSpec, tag_id: ua.NodeId, unit_id: ua.NodeId) -> tuple[NodeCopy, NodeCopy, NodeCopy]:
        """The tag's variable ``tag_id`` in ``unit_id`` and its two properties."""
        units = self._units_values.get(tag.unit_code)
        if units is None:
            units = ua.Variant(engineering_units(tag.unit_code), ua.VariantType.ExtensionObject)
            self._units_values[tag.unit_code] = units
        base, idx = tag_id.Identifier, self._idx
        return (NodeCopy(self._variables[tag.direction is Direction.COMMANDED], tag_id, unit_id, tag.name,
                         tag.description or tag.name),
                NodeCopy(self._range, ua.NodeId(f"{base}.EURange", idx), tag_id,
                         value=ua.Variant(ua.Range(Low=tag.eu_range.low, High=tag.eu_range.high),
                                          ua.VariantType.ExtensionObject)),
                NodeCopy(self._units, ua.NodeId(f"{base}.EngineeringUnits", idx), tag_id, value=units))


async def build_address_space(server: Server, config: LineConfig) -> LineAddressSpace:
    """Create types, the line object, unit objects and tag variables in one batch of AddNodes."""
    idx = await server.register_namespace(config.server.namespace)
    items: list[ua.AddNodesItem] = []
    type_nodes: dict[str, ua.NodeId] = {}
    base = ua.NodeId(PROCESS_UNIT_TYPE, idx)
    type_nodes[PROCESS_UNIT_TYPE] = base
    items.append(object_type_item(base, idx, PROCESS_UNIT_TYPE, ua.NodeId(ua.ObjectIds.BaseObjectType),
                              "A process unit mirrored from its PLC (abstract supertype of all unit types)"))
    line_type = ua.NodeId(LINE_TYPE, idx)
    type_nodes[LINE_TYPE] = line_type
    items.append(object_type_item(line_type, idx, LINE_TYPE, ua.NodeId(ua.ObjectIds.BaseObjectType),
                              "A process-manufacturing line: a group of process units"))
    for kind, description in unit_kinds().items():
        type_name = unit_type_name(kind)
        nid = ua.NodeId(type_name, idx)
        type_nodes[type_name] = nid
        items.append(object_type_item(nid, idx, type_name, base, f"Process unit of kind '{kind}': {description}"))

    line_id = ua.NodeId(config.name, idx)
    items.append(object_item(line_id, idx, config.name, ua.NodeId(ua.ObjectIds.ObjectsFolder), line_type,
                         config.description, reference=ua.ObjectIds.Organizes))
    unit_nodes: dict[str, ua.NodeId] = {}
    tag_nodes: dict[tuple[str, str], TagNode] = {}
    connection_nodes: dict[str, ua.NodeId] = {}
    tag_templates = TagNodeTemplates(server, idx, config.scan_period_s * 1000.0)
    copies: list[NodeCopy] = []
    for unit in config.units:
        unit_id = ua.NodeId(f"{config.name}.{unit.name}", idx)
        unit_nodes[unit.name] = unit_id
        items.append(object_item(unit_id, idx, unit.name, line_id, type_nodes[unit_type_name(unit.kind)],
                                 unit.description))
        conn_id = ua.NodeId(f"{config.name}.{unit.name}.plc_connected", idx)
        connection_nodes[unit.name] = conn_id
        items.append(variable_item(conn_id, idx, "plc_connected", unit_id, ua.Variant(False, ua.VariantType.Boolean),
                               ua.ObjectIds.Boolean, ua.ObjectIds.BaseDataVariableType,
                               f"True while the PLC at {unit.connection.host}:{unit.connection.port} answers"))
        for tag in unit.tags:
            tag_id = ua.NodeId(f"{config.name}.{unit.name}.{tag.name}", idx)
            tag_nodes[(unit.name, tag.name)] = TagNode(unit.name, tag, tag_id)
            copies += tag_templates.copies(tag, tag_id, unit_id)
    results = await add_nodes_in_bulk(server, items)
    for item, res in zip(items, results, strict=True):
        if not res.StatusCode.is_good():
            raise RuntimeError(f"could not create node {item.RequestedNewNodeId}: {res.StatusCode}")
    refused = await add_node_copies(server, copies)
    if refused:
        copy, status = refused[0]
        raise RuntimeError(f"could not create node {copy.node_id}: {status} ({len(refused)} refused)")
    waiting = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData))
    await address_space(server).write_values([(tn.node_id, waiting) for tn in tag_nodes.values()])
    return LineAddressSpace(idx, line_id, type_nodes, unit_nodes, tag_nodes, connection_nodes)
