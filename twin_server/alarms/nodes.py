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

from plc_adapters.asyncua_seam import add_nodes_in_bulk, add_references_in_bulk, address_space
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
    HasCondition from its source."""
    nodes = address_space(server)
    items = [object_item(folder, idx, "alarms", source, ua.NodeId(ua.ObjectIds.FolderType),
                         "Alarm conditions of this unit (see docs/alarms.md)")
             for source, folder in folders.items() if not nodes.exists(folder)]
    for c in conditions:
        items.append(object_item(c.node_id, idx, c.name, folders[c.source_node], c.type_id, c.state.message or c.name))
        items += _state_variables(c, idx)
    for item, res in zip(items, await add_nodes_in_bulk(server, items), strict=True):
        if not res.StatusCode.is_good():
            raise RuntimeError(f"could not create node {item.RequestedNewNodeId}: {res.StatusCode}")
    await _add_references(server, [_reference(c.source_node, ua.ObjectIds.HasCondition, c.node_id,
                                              ua.NodeClass.Object) for c in conditions])



_PROPERTIES = {"Retain", "Severity", "Message", "ClientUserId"}
_DATA_TYPES = {ua.VariantType.Boolean: ua.ObjectIds.Boolean, ua.VariantType.UInt16: ua.ObjectIds.UInt16,
               ua.VariantType.LocalizedText: ua.ObjectIds.LocalizedText, ua.VariantType.String: ua.ObjectIds.String}


def _state_variables(cond: AlarmCondition, idx: int) -> list[ua.AddNodesItem]:
    """The condition's state as read-only variables with the standard browse names (namespace 0): ``Retain``,
    ``Severity``, ``Message``, ``ClientUserId`` (properties), ``Comment`` (ConditionVariableType), ``EnabledState``,
    ``ActiveState``, ``AckedState``, ``ConfirmedState`` (TwoStateVariableType, each with its ``Id`` property).
    Node ids: ``<condition id>.<name>`` and ``<condition id>.<name>.Id``. Updated at every event."""
    items = []
    base = str(cond.node_id.Identifier)
    for suffix, value in cond.variable_values().items():
        owner, _, last = suffix.rpartition(".")
        parent = ua.NodeId(f"{base}.{owner}", idx) if owner else cond.node_id
        is_property = bool(owner) or suffix in _PROPERTIES
        type_def = (ua.ObjectIds.PropertyType if is_property else
                    ua.ObjectIds.ConditionVariableType if suffix == "Comment" else ua.ObjectIds.TwoStateVariableType)
        item = variable_item(ua.NodeId(f"{base}.{suffix}", idx), idx, last, parent, value,
                             _DATA_TYPES[value.VariantType], type_def, f"{cond.name}: {suffix}",
                             is_property=is_property)
        item.BrowseName = ua.QualifiedName(last, 0)
        items.append(item)
    return items
