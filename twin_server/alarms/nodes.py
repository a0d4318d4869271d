"""The alarm part of the address space: the notifier chain and the condition objects.

::

    Server (i=2253, EventNotifier SubscribeToEvents)
      └─HasNotifier→ <line>                 (EventNotifier SubscribeToEvents)
           └─HasNotifier→ <unit>            (EventNotifier SubscribeToEvents; the conditions' SourceNode)
                ├─HasCondition→ <condition>
                └─HasComponent→ alarms (FolderType)
                     └─HasComponent→ <condition>   ExclusiveLimitAlarmType | OffNormalAlarmType | AlarmConditionType

Condition ids: ``<line>.<unit>.alarms.<condition name>`` (string ids in the line's namespace). Clients call
Acknowledge / Confirm with the condition as ObjectId and the standard method of AcknowledgeableConditionType as
MethodId (OPC 10000-9 §5.7.3).
"""

from __future__ import annotations

from asyncua import Server, ua

from plc_adapters.asyncua_seam import (
    NodeCopy,
    NodeTemplate,
    add_node_copies,
    add_nodes_in_bulk,
    add_references_in_bulk,
    address_space,
)
from twin_server.address_space import object_item, variable_item
from twin_server.alarms.condition import AlarmCondition


def _reference(source: ua.NodeId, ref_type: int, target: ua.NodeId, target_class: ua.NodeClass) -> ua.AddReferencesItem:
    ref = ua.AddReferencesItem()
    ref.SourceNodeId = source
    ref.ReferenceTypeId = ua.NodeId(ref_type)
    ref.IsForward = True
    ref.TargetNodeId = target
    ref.TargetNodeClass = target_class
    return ref


async def _add_references(server: Server, refs: list[ua.AddReferencesItem]) -> None:
    for ref, result in zip(refs, await add_references_in_bulk(server, refs), strict=True):
        if not result.is_good():
            raise RuntimeError(f"could not add reference {ref.SourceNodeId} -> {ref.TargetNodeId}: {result}")


async def build_notifier_chain(server: Server, line_node: ua.NodeId, unit_nodes: list[ua.NodeId]) -> None:
    """Make the line and its units event notifiers, linked from the Server object by HasNotifier."""
    nodes = address_space(server)
    for node in (line_node, *unit_nodes):  # keep other bits (the historian's HistoryRead)
        current = nodes.read(node, ua.AttributeIds.EventNotifier).Value.Value or 0
        notifier = int(current) | ua.EventNotifier.SubscribeToEvents.mask
        await nodes.write(node, ua.AttributeIds.EventNotifier,
                                           ua.DataValue(ua.Variant(notifier, ua.VariantType.Byte)))
    refs = [_reference(ua.NodeId(ua.ObjectIds.Server), ua.ObjectIds.HasNotifier, line_node, ua.NodeClass.Object)]
    refs += [_reference(line_node, ua.ObjectIds.HasNotifier, u, ua.NodeClass.Object) for u in unit_nodes]
    await _add_references(server, refs)


async def add_condition_nodes(server: Server, idx: int, folders: dict[ua.NodeId, ua.NodeId],
                              conditions: list[AlarmCondition]) -> None:
    """One object per condition, typed by its standard condition type, in its source's ``alarms`` folder
    (``folders``: source node → folder node id; a folder not yet in the address space is created), with
    HasCondition from its source. The conditions' nodes (the object and its state variables, 14 per condition) are
    copies of one template per shape (:class:`ConditionNodeTemplates`)."""
    nodes = address_space(server)
    items = [object_item(folder, idx, "alarms", source, ua.NodeId(ua.ObjectIds.FolderType),
                         "Alarm conditions of this unit (see docs/alarms.md)")
             for source, folder in folders.items() if not nodes.exists(folder)]
    for item, res in zip(items, await add_nodes_in_bulk(server, items), strict=True):
        if not res.StatusCode.is_good():
            raise RuntimeError(f"could not create node {item.RequestedNewNodeId}: {res.StatusCode}")
    templates = ConditionNodeTemplates(server, idx)
    copies: list[NodeCopy] = []
    for c in conditions:
        copies += templates.copies(c, folders[c.source_node])
    refused = await add_node_copies(server, copies)
    if refused:
        copy, status = refused[0]
        raise RuntimeError(f"could not create node {copy.node_id}: {status} ({len(refused)} refused)")
    await _add_references(server, [_reference(c.source_node, ua.ObjectIds.HasCondition, c.node_id,
                                              ua.NodeClass.Object) for c in conditions])


_PROPERTIES = {"Retain", "Severity", "Message", "ClientUserId"}
_DATA_TYPES = {ua.VariantType.Boolean: ua.ObjectIds.Boolean, ua.VariantType.UInt16: ua.ObjectIds.UInt16,
               ua.VariantType.LocalizedText: ua.ObjectIds.LocalizedText, ua.VariantType.String: ua.ObjectIds.String}


class ConditionNodeTemplates:
    """The node shapes of a condition: its object (one per condition type) and its state as read-only variables
    with the standard browse names (namespace 0): ``Retain``, ``Severity``, ``Message``, ``ClientUserId``
    (properties), ``Comment`` (ConditionVariableType), ``EnabledState``, ``ActiveState``, ``AckedState``,
    ``ConfirmedState`` (TwoStateVariableType, each with its ``Id`` property). Node ids: ``<condition id>``,
    ``<condition id>.<name>`` and ``<condition id>.<name>.Id``; the state variables are updated at every event.
    Each shape is made once by asyncua and copied per condition (:func:`~plc_adapters.asyncua_seam.add_node_copies`);
    the nodes are those :func:`~twin_server.address_space.object_item` and
    :func:`~twin_server.address_space.variable_item` describe."""

    def __init__(self, server: Server, idx: int) -> None:
        self._server, self._idx = server, idx
        self._placeholder = ua.NodeId("condition-template", idx)
        self._objects: dict[ua.NodeId, NodeTemplate] = {}
        self._variables: dict[str, NodeTemplate] = {}

    def _object(self, type_id: ua.NodeId) -> NodeTemplate:
        template = self._objects.get(type_id)
        if template is None:
            template = NodeTemplate(self._server, object_item(self._placeholder, self._idx, "condition",
                                                              self._placeholder, type_id, "condition"))
            self._objects[type_id] = template
        return template

    def _variable(self, suffix: str, value: ua.Variant) -> NodeTemplate:
        template = self._variables.get(suffix)
        if template is None:
            owner, _, last = suffix.rpartition(".")
            is_property = bool(owner) or suffix in _PROPERTIES
            type_def = (ua.ObjectIds.PropertyType if is_property else ua.ObjectIds.ConditionVariableType
                        if suffix == "Comment" else ua.ObjectIds.TwoStateVariableType)
            item = variable_item(self._placeholder, self._idx, last, self._placeholder, value,
                                 _DATA_TYPES[value.VariantType], type_def, suffix, is_property=is_property)
            item.BrowseName = ua.QualifiedName(last, 0)
            template = NodeTemplate(self._server, item)
            self._variables[suffix] = template
        return template

    def copies(self, cond: AlarmCondition, folder: ua.NodeId) -> list[NodeCopy]:
        """The condition's object in ``folder`` and its state variables with their current values."""
        idx, base = self._idx, str(cond.node_id.Identifier)
        copies = [NodeCopy(self._object(cond.type_id), cond.node_id, folder, cond.name,
                           cond.state.message or cond.name)]
        ids = {"": cond.node_id}  # a parent given as the node id object of its copy is found without a look-up
        for suffix, value in cond.variable_values().items():
            node_id = ids[suffix] = ua.NodeId(f"{base}.{suffix}", idx)
            copies.append(NodeCopy(self._variable(suffix, value), node_id, ids[suffix.rpartition(".")[0]],
                                   description=f"{cond.name}: {suffix}", value=value))
        return copies
