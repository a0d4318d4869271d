"""The one seam between linetwin and asyncua's server internals.

asyncua's public server API (``Server``, ``Node``, ``set_security_policy``, ``link_method`` …) has no hook for
what the twin needs: a write path that routes client writes to the PLCs, a HistoryRead answered from the
historian, per-user checks and audit of logins, logouts, Calls and HistoryReads, the address space written
without a service round trip. Nor for what the virtual OPC UA PLC (``hil``) needs: writes checked against the
PLC's own rules before asyncua's service takes them, a value kept beside a Bad status (as a PLC shows a failed
sensor), sessions ended as on a timeout, the port a server bound to port 0 listens on. Every use of something
that is not public (``iserver``, ``bserver``, ``attribute_service``, ``history_manager``, wrapping
``create_session``, replacing session methods, the ``AddressSpace`` object, the internal session, the
subscription service, ``_``-prefixed attributes) is in this module and nowhere else in linetwin's packages
(``tests/plc_adapters/test_asyncua_seam.py`` greps for them). It lives in ``plc_adapters``, the lowest layer with
asyncua, so that ``twin_server`` and ``hil`` — which may not import each other — share it.

The hooks (each has a contract test in ``tests/plc_adapters/test_asyncua_seam.py``, through a real server and
client, and a signature check against :data:`HOOKED_SIGNATURES`):

- **write hook** (:func:`install_write_hook`): replaces ``InternalServer.attribute_service`` with a service
  whose ``write(params, user)`` hands every client write to the hook (the twin's write guard, the virtual PLC's
  refusals); the server's own writes (its internal session) go to asyncua's service unchanged. It returns
  asyncua's own write, for a hook that lets asyncua take what it does not refuse (the virtual PLC).
- **history hook** (:func:`install_history_reader`): replaces ``InternalServer.history_manager``; every
  HistoryRead request reaches the twin's reader (the historian).
- **session hooks** (:func:`install_session_hooks`): wraps ``InternalServer.create_session``; each new session's
  ``create_session``, ``activate_session``, ``close_session``, ``call``, ``history_read``, ``read`` and
  ``create_monitored_items`` pass
  through a :class:`SessionServiceHooks` (security: login/logout audit, role checks of Call and HistoryRead,
  per-user attributes; method calls: who is calling).
- **event filter** (:func:`install_event_filter`): wraps ``SubscriptionService.trigger_event``; an event sent
  to every subscription reaches only those whose session the twin's filter admits (security: audit events only
  to sessions with the audit role).
- **message limit** (:func:`set_message_limit`): asyncua's transport limits (``Server.limits``), the largest
  request message a client may send.
- **identity hook** (:func:`set_user_manager`): asyncua asks the twin's user manager
  (``get_user(iserver, username, password, certificate)``) on every ActivateSession.
- **node management** is refused through asyncua's public ``permission_ruleset`` (``check_validity``); only
  its signature is checked here.
- **batch value write** (:meth:`AddressSpaceView.write_values`): one scan's changed values written in one call,
  asyncua's ``write_attribute_value`` rules (a Bad status nulls the value, the node's ``value_setter``, every
  data-change callback) without its per-call look-ups and type check, and asyncua's monitored items handed each
  value without the deep copy they make of it.
- **bulk node creation** (:func:`add_nodes_in_bulk`, :func:`add_references_in_bulk`): asyncua's ``AddNodes`` /
  ``AddReferences`` steps for nodes and references the twin creates, with the existing references of a parent or
  source indexed once instead of scanned per new node (quadratic in children per folder: ~1 minute for 10,000
  variables in one folder).
- **address space** (:func:`address_space`): the twin's and the virtual PLC's own writes straight into the
  nodes (:meth:`AddressSpaceView.write`; :meth:`AddressSpaceView.publish` keeps a value beside a Bad status).
- **session expiry** (:func:`close_client_sessions`): every client session ends, its TCP connection stays.
- **server start-up** (:func:`init_server`): ``Server.init`` with asyncua's standard address space filled by its
  generated code for the first two servers of a process only; later servers copy each standard node from a pickled
  snapshot of it when the node is first read (1.45 → 0.02 CPU s a server; the suite starts ~110), the rest of
  asyncua's init unchanged.
- **release at stop** (:func:`stop_server`, :func:`release_address_space`): a stopped server's nodes dropped at
  once, freed by reference counting instead of by the cyclic collector.
- **clock at stop** (:func:`stop_server_clock`, called by :func:`stop_server`): the task that updates the
  server's CurrentTime every second is cancelled at stop instead of waited for (up to 1 s a stop).
- **listening port** (:func:`listening_port`): the port a started server listens on (bound to port 0).
- **what the server holds** (:func:`server_holdings`, :func:`subscription_counts`,
  :func:`activated_session_users`): client sessions, subscriptions, monitored items, notifications published
  (metrics, the soak benchmark).

asyncua is pinned to the minor version these were written for (:data:`WRITTEN_FOR`, ``pyproject.toml``); the
README section "Moving the asyncua / pymodbus pin" says how to move it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import pickle
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from asyncua.server.address_space import (
    AddressSpace,
    AttributeService,
    AttributeValue,
    NodeData,
    NodeManagementService,
)
from asyncua.server.history import HistoryManager
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession, SessionState
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService, MonitoredItemValues
from asyncua.server.subscription_service import SubscriptionService
from asyncua.server.user_managers import UserManager

from plc_adapters.copied_on_first_read import CopiedOnFirstRead, pickled_entries
from plc_adapters.long_lived_objects import collector_paused

log = logging.getLogger("linetwin.asyncua_seam")

WRITTEN_FOR = "2.1"
"""The asyncua minor version the hooks were written for (and the pin in ``pyproject.toml``)."""

AttributeReader = Callable[[ua.NodeId, int], ua.DataValue]
"""``(node, attribute)`` → its DataValue (Bad ``BadNodeIdUnknown`` / ``BadAttributeIdInvalid`` when missing)."""
AttributeWriter = Callable[[ua.NodeId, int, ua.DataValue], Awaitable[ua.StatusCode]]
"""``(node, attribute, value)`` → written straight into the address space (subscriptions see it); no service
round trip, no access check: the twin's own writes."""
WriteHook = Callable[[ua.WriteParameters, User], Awaitable[list[ua.StatusCode]]]
"""A client's Write request and its session's user → one status per WriteValue."""
SERVICE_REFUSALS: tuple[type[Exception], ...] = (ServiceError, ua.UaStatusCodeError)
"""What asyncua's session services raise to refuse a request (each has the status in ``code``)."""
HistoryReader = Callable[[ua.HistoryReadParameters], Awaitable[list[ua.HistoryReadResult]]]
"""A HistoryRead request → one result per node to read."""
EventAdmission = Callable[[Any, ua.NodeId], bool]
"""``(event, session id of a subscription)`` → whether that subscription may receive the event."""
__all__ = ["ServiceError"]
"""asyncua's exception that a session service raises to answer a ServiceFault with its ``code`` (re-exported:
the twin's request limits raise it)."""


# --- the address space, written by the twin itself -------------------------------------------------------

class AddressSpaceView:
    """The server's address space as the twin uses it: read, write (hot path: bound methods, no extra call),
    existence, node ids, attributes the twin adds (RolePermissions)."""

    def __init__(self, aspace: AddressSpace) -> None:
        self._aspace = aspace
        self._notifying: set[asyncio.Task[Any]] = set()
        self.read: AttributeReader = aspace.read_attribute_value  # type: ignore[assignment]
        self.write: AttributeWriter = aspace.write_attribute_value  # type: ignore[assignment]

    async def write_values(self, values: Sequence[tuple[ua.NodeId, ua.DataValue]]) -> int:
        """Write the Value attribute of many nodes in one call (the mirror's batch of one scan); returns how many
        were written (a node that does not exist, or has no Value attribute, is skipped).

        asyncua's ``AddressSpace.write_attribute_value`` rules, per value: a Bad status nulls the value (OPC
        10000-4 §7.11), a node's ``value_setter`` is used when it has one, and every data-change callback (the
        monitored items of client subscriptions) is awaited with the value written. Not done here: asyncua's
        check that the Variant's type matches the node's DataType — the caller writes values of the node's own
        type (the twin: Double into its Double tag variables).

        The DataValues become the address space's: the caller never changes one after the call. So a monitored
        item of asyncua's own is handed the value without asyncua's deep copy of it
        (:func:`_notify_monitored_item`: ~75 % of a 10,000-tag scan's CPU was ``copy.deepcopy``)."""
        get = self._aspace.get
        value_id = ua.AttributeIds.Value
        written = 0
        for node_id, value in values:
            node = get(node_id)
            held = node.attributes.get(value_id) if node is not None else None
            if held is None:
                continue
            status = value.StatusCode
            if status is not None and status.is_bad() and value.Value is not None and value.Value.Value is not None:
                value = dataclasses.replace(value, Value=ua.Variant(None, ua.VariantType.Null))
            if held.value_setter is not None:
                held.value_setter(node, value_id, value)
            else:
                held.value = value
                held.value_callback = None
            written += 1
            callbacks = held.datachange_callbacks
            if callbacks:
                for handle, callback in list(callbacks.items()):
                    try:
                        if getattr(callback, "__func__", None) is _ASYNCUA_DATACHANGE:
                            await _notify_monitored_item(callback.__self__, handle, value)
                        else:
                            await callback(handle, value)
                    except Exception:  # asyncua logs and goes on; so do we
                        log.exception("data-change callback %s of %s failed", handle, node_id)
        return written

    def exists(self, node: ua.NodeId) -> bool:
        return node in self._aspace

    def node_ids(self) -> list[ua.NodeId]:
        return list(self._aspace.keys())

    def set_attribute(self, node: ua.NodeId, attribute: int, value: ua.DataValue) -> None:
        """Set an attribute the node may not have yet (e.g. ``RolePermissions``); no data-change callbacks."""
        self._aspace[node].attributes[attribute] = AttributeValue(value)

    def publish(self, node: ua.NodeId, value: ua.DataValue) -> list[asyncio.Task[Any]] | None:
        """Set the Value attribute of ``node`` to ``value`` as it is — a value beside a Bad status is kept, where
        :meth:`write` (asyncua's ``write_attribute_value``) nulls it — and notify the node's data-change
        subscribers in tasks on the running loop (returned, for a caller that awaits them). ``None`` when the
        node is missing."""
        data = self._aspace.get(node)
        if data is None:
            return None
        held = data.attributes[ua.AttributeIds.Value]
        held.value = value
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(callback(key, value)) for key, callback in list(held.datachange_callbacks.items())]
        for task in tasks:
            self._notifying.add(task)
            task.add_done_callback(self._notifying.discard)
        return tasks

    def attribute(self, node: ua.NodeId, attribute: int) -> Any:
        """The Python value of an attribute, ``None`` when the node or the attribute is missing."""
        data = self._aspace.get(node)
        held = data.attributes.get(attribute) if data is not None else None
        if held is None or held.value is None or held.value.Value is None:
            return None
        return held.value.Value.Value


_ASYNCUA_DATACHANGE = MonitoredItemService.datachange_callback


async def _notify_monitored_item(service: MonitoredItemService, handle: int, value: ua.DataValue) -> None:
    """asyncua's ``MonitoredItemService.datachange_callback`` (no error) for a value nobody changes afterwards:
    the same steps — a disabled item is skipped; the value becomes the item's current one and the current its old
    one; asyncua's own change test (status, value; the filter's trigger) and deadband test decide; a notification
    with the item's client handle is queued on its subscription — but the value is kept as it is where asyncua's
    ``MonitoredItemValues.set_current_datavalue`` deep-copies it ("to prevent referencing the inner value": ~50 µs
    per value and monitored item). Contract test: notifications, deadband and Bad status through a real client."""
    mid = service._monitored_datachange[handle]  # noqa: SLF001 - asyncua's handle → monitored item id
    item = service._monitored_items[mid]  # noqa: SLF001
    if item.mode == ua.MonitoringMode.Disabled:
        return
    values: MonitoredItemValues = item.mvalue
    values.old_dvalue = values.current_dvalue
    values.current_dvalue = value
    if item.filter:
        passes = service._is_data_changed(values, item.filter.Trigger) and \
            service._is_deadband_exceeded(values, item.filter)  # noqa: SLF001
    else:
        passes = service._is_data_changed(values, ua.DataChangeTrigger.StatusValue)  # noqa: SLF001
    if passes:
        notification = ua.MonitoredItemNotification()
        notification.ClientHandle = item.client_handle
        notification.Value = value
        await service.isub.enqueue_datachange_event(mid, notification, item.queue_size)


def address_space(server: Server) -> AddressSpaceView:
    return AddressSpaceView(server.iserver.aspace)


async def add_nodes(server: Server, items: list[ua.AddNodesItem]) -> list[ua.AddNodesResult]:
    """AddNodes through the server's internal session (never refused: the twin builds its own space)."""
    return await server.iserver.isession.add_nodes(items)


class _TargetDescriptions:
    """What asyncua's ``_add_reference_no_check`` reads of a reference's target (NodeClass, BrowseName,
    DisplayName, type definition), read once per target."""

    def __init__(self, aspace: AddressSpace) -> None:
        self._aspace = aspace
        self._known: dict[ua.NodeId, tuple[Any, Any, Any]] = {}
        self._types: dict[ua.NodeId, Any] = {}
        self._has_type_definition = ua.NodeId(ua.ObjectIds.HasTypeDefinition)
        self._blank = ua.ReferenceDescription()
        """asyncua's defaults of a ReferenceDescription (null ids, names), made once and copied."""

    def _value(self, node_id: ua.NodeId, attribute: int) -> Any:
        held = self._aspace.read_attribute_value(node_id, attribute)
        return held.Value.Value if held.Value is not None else None

    def _read(self, node_id: ua.NodeId) -> tuple[Any, Any, Any]:
        known = self._known.get(node_id)
        if known is None:
            known = (self._value(node_id, ua.AttributeIds.NodeClass),
                     self._value(node_id, ua.AttributeIds.BrowseName) or None,
                     self._value(node_id, ua.AttributeIds.DisplayName) or None)
            self._known[node_id] = known
        return known

    def node_class(self, node_id: ua.NodeId) -> Any:
        return self._read(node_id)[0]

    def _type_definition(self, node_id: ua.NodeId) -> Any:
        if node_id not in self._types:
            data = self._aspace.get(node_id)
            self._types[node_id] = next((r.NodeId for r in data.references if r.IsForward
                                         and r.ReferenceTypeId == self._has_type_definition), None) if data else None
        return self._types[node_id]

    def described(self, to: ua.NodeId, reference_type: ua.NodeId, forward: bool, template: NodeTemplate,
                  browse_name: ua.QualifiedName, display_name: ua.LocalizedText | None) -> ua.ReferenceDescription:
        """What :meth:`reference` reads of ``to``, for a node just made as a copy of ``template`` with these names
        (``display_name`` None: it has no DisplayName attribute): its class and type definition are the
        template's."""
        description = _copy_reference(self._blank)
        description.ReferenceTypeId = reference_type
        description.IsForward = forward
        description.NodeId = to
        node_class = template.prototype.NodeClass
        description.NodeClass = node_class
        description.BrowseName = browse_name
        if display_name is not None:
            description.DisplayName = display_name
        type_definition = template.prototype.TypeDefinition
        if node_class in (ua.NodeClass.Object, ua.NodeClass.Variable) and not type_definition.is_null():
            description.TypeDefinition = type_definition
        return description

    def reference(self, to: ua.NodeId, reference_type: ua.NodeId, forward: bool,
                  node_class: Any = None) -> ua.ReferenceDescription:
        """The ReferenceDescription asyncua makes for a reference to ``to`` (``node_class``: the target class the
        request names; None: read from the target, as for ``NodeClass.Unspecified``)."""
        read_class, browse_name, display_name = self._read(to)
        description = _copy_reference(self._blank)
        description.ReferenceTypeId = reference_type
        description.IsForward = forward
        description.NodeId = to
        node_class = read_class if node_class is None or node_class == ua.NodeClass.Unspecified else node_class
        if node_class is not None:
            description.NodeClass = node_class
        if browse_name is not None:
            description.BrowseName = browse_name
        if display_name is not None:
            description.DisplayName = display_name
        if node_class in (ua.NodeClass.Object, ua.NodeClass.Variable):
            type_definition = self._type_definition(to)
            if type_definition is not None:
                description.TypeDefinition = type_definition
        return description


async def add_references_in_bulk(server: Server, refs: Sequence[ua.AddReferencesItem]) -> list[ua.StatusCode]:
    """AddReferences of many references the twin adds itself (e.g. HasCondition from a unit to each of its alarm
    conditions), in time linear in their number: asyncua checks each new reference against every reference of its
    source (quadratic when one node gets thousands). Here each source's references are indexed once in a dict. Same
    results as asyncua's: ``BadSourceNodeIdInvalid``, ``BadTargetNodeIdInvalid``, ``BadReferenceNotAllowed`` for
    one that contradicts an existing reference's direction, Good (nothing added) for one that exists."""
    aspace = server.iserver.aspace
    targets = _TargetDescriptions(aspace)
    index: dict[ua.NodeId, dict[tuple[ua.NodeId, ua.NodeId], bool]] = {}
    results: list[ua.StatusCode] = []
    for ref in refs:
        source = aspace.get(ref.SourceNodeId)
        if source is None:
            results.append(ua.StatusCode(ua.StatusCodes.BadSourceNodeIdInvalid))
            continue
        if ref.TargetNodeId not in aspace:
            results.append(ua.StatusCode(ua.StatusCodes.BadTargetNodeIdInvalid))
            continue
        held = index.get(ref.SourceNodeId)
        if held is None:
            held = {}
            for r in source.references:
                held.setdefault((r.ReferenceTypeId, r.NodeId), r.IsForward)
            index[ref.SourceNodeId] = held
        key = (ref.ReferenceTypeId, ref.TargetNodeId)
        if key in held:
            results.append(ua.StatusCode(ua.StatusCodes.Good if held[key] == ref.IsForward
                                         else ua.StatusCodes.BadReferenceNotAllowed))
            continue
        source.references.append(targets.reference(ref.TargetNodeId, ref.ReferenceTypeId, ref.IsForward,
                                                   ref.TargetNodeClass))
        held[key] = ref.IsForward
        results.append(ua.StatusCode())
    return results


async def add_nodes_in_bulk(server: Server, items: Sequence[ua.AddNodesItem]) -> list[ua.AddNodesResult]:
    """AddNodes of many nodes the twin creates itself (never refused for the user: the server's own), in time
    linear in the number of nodes.

    asyncua's ``NodeManagementService._add_node`` scans all references of the parent for every new node (a
    HasProperty browse-name clash, then a duplicate reference), so filling one folder with n variables costs
    O(n²) (~1 minute for 10,000). Here each parent's property names are collected once into a set and the
    parent → child reference is appended without the scan (the child is new: nothing refers to it yet); the
    child's references back to its parent and to its type definition are described from what is read once per
    parent and per type (asyncua reads the target's NodeClass, BrowseName, DisplayName and type definition again for
    every new node). The node's attributes are made by asyncua's own helper, so a node created here is the node
    ``add_nodes`` would have created (contract test: attributes and references compared).

    Refused per item, as asyncua does: a null requested node id (``BadNodeIdInvalid``: the twin names every
    node), one that exists (``BadNodeIdExists``), a missing parent (``BadParentNodeIdInvalid``), a browse name
    equal to a property of the parent (``BadBrowseNameDuplicated``), an unknown type definition
    (``BadTypeDefinitionInvalid``)."""
    service: NodeManagementService = server.iserver.node_mgt_service
    aspace = server.iserver.aspace
    has_property = ua.NodeId(ua.ObjectIds.HasProperty)
    has_type_definition = ua.NodeId(ua.ObjectIds.HasTypeDefinition)
    property_names: dict[ua.NodeId, set[str]] = {}
    targets = _TargetDescriptions(aspace)
    results: list[ua.AddNodesResult] = []
    for item in items:
        result = ua.AddNodesResult()
        results.append(result)
        node_id = item.RequestedNewNodeId
        parent = aspace.get(item.ParentNodeId)
        if node_id.has_null_identifier():
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadNodeIdInvalid)
            continue
        if node_id in aspace:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadNodeIdExists)
            continue
        if parent is None:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadParentNodeIdInvalid)
            continue
        names = property_names.get(item.ParentNodeId)
        if names is None:
            names = {r.BrowseName.Name for r in parent.references if r.ReferenceTypeId == has_property}
            property_names[item.ParentNodeId] = names
        if item.BrowseName.Name in names:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadBrowseNameDuplicated)
            continue
        if not item.TypeDefinition.is_null() and item.TypeDefinition not in aspace:
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadTypeDefinitionInvalid)
            continue
        node = NodeData(node_id)
        service._add_node_attributes(node, item, add_timestamps=True)  # noqa: SLF001 - asyncua's own node build
        aspace[node_id] = node
        parent.references.append(ua.ReferenceDescription(
            ReferenceTypeId=item.ReferenceTypeId, NodeId=node_id, NodeClass=item.NodeClass,
            BrowseName=item.BrowseName, DisplayName=item.NodeAttributes.DisplayName,
            TypeDefinition=item.TypeDefinition, IsForward=True))
        if item.ReferenceTypeId == has_property:
            names.add(item.BrowseName.Name)
        parent_class = targets.node_class(item.ParentNodeId)
        if parent_class is not None:  # asyncua adds no reference back to a parent without a class
            node.references.append(targets.reference(item.ParentNodeId, item.ReferenceTypeId, False, parent_class))
        if not item.TypeDefinition.is_null():
            node.references.append(targets.reference(item.TypeDefinition, has_type_definition, True))
        result.AddedNodeId = node_id
    return results


# --- node copies: many nodes of one shape, made from one template -------------------------------------------

_new = object.__new__


def _copy_variant(v: ua.Variant) -> ua.Variant:
    """A shallow copy of a Variant without its ``__post_init__`` (type guessing): ~0.3 µs instead of ~1.7 µs. The
    slots copied are :data:`COPIED_SLOTS`'s (a drift is named by :func:`signature_drift`), so for every slot."""
    c = _new(ua.Variant)
    c.Value, c.VariantType, c.Dimensions, c.is_array = v.Value, v.VariantType, v.Dimensions, v.is_array
    return c


def _copy_data_value(v: ua.DataValue) -> ua.DataValue:
    """A shallow copy of a DataValue without its ``__init__`` (default StatusCode, Variant check)."""
    c = _new(ua.DataValue)
    c.Encoding, c.Value, c.StatusCode = v.Encoding, v.Value, v.StatusCode
    c.SourceTimestamp, c.ServerTimestamp = v.SourceTimestamp, v.ServerTimestamp
    c.SourcePicoseconds, c.ServerPicoseconds = v.SourcePicoseconds, v.ServerPicoseconds
    return c


def _copy_reference(r: ua.ReferenceDescription) -> ua.ReferenceDescription:
    """A shallow copy of a ReferenceDescription without its ``__init__`` (five default factories: ~6 µs)."""
    c = _new(ua.ReferenceDescription)
    c.ReferenceTypeId, c.IsForward, c.NodeId, c.BrowseName = r.ReferenceTypeId, r.IsForward, r.NodeId, r.BrowseName
    c.DisplayName, c.NodeClass, c.TypeDefinition = r.DisplayName, r.NodeClass, r.TypeDefinition
    return c


COPIED_SLOTS: dict[str, tuple[type, tuple[str, ...]]] = {
    "node copies: Variant": (ua.Variant, ("Value", "VariantType", "Dimensions", "is_array")),
    "node copies: DataValue": (ua.DataValue, ("Encoding", "Value", "StatusCode", "SourceTimestamp",
                                              "ServerTimestamp", "SourcePicoseconds", "ServerPicoseconds")),
    "node copies: ReferenceDescription": (ua.ReferenceDescription, (
        "ReferenceTypeId", "IsForward", "NodeId", "BrowseName", "DisplayName", "NodeClass", "TypeDefinition")),
}
"""asyncua's slotted dataclasses the node copies copy slot by slot, and their slots as the copies were written for
them (:func:`signature_drift` names a change)."""

_OWN_ATTRIBUTES = (ua.AttributeIds.NodeId, ua.AttributeIds.BrowseName, ua.AttributeIds.DisplayName,
                   ua.AttributeIds.Description, ua.AttributeIds.Value)
"""The attributes a copy has its own DataValue of when they differ from the template's (the others it shares)."""


class NodeTemplate:
    """One node shape (a tag variable, its ``EURange`` property, an alarm condition, one of a condition's state
    variables), made once by asyncua's own AddNodes node build from ``prototype`` and copied for every node of that
    shape by :func:`add_node_copies`. A copy differs from the prototype only in node id, parent, name (browse name in
    the prototype's namespace, and display name), description and value; everything else (node class, type
    definition, reference type from the parent, data type, access levels, value rank, sampling interval …) is the
    prototype's. The prototype's own node id and parent are placeholders."""

    def __init__(self, server: Server, prototype: ua.AddNodesItem) -> None:
        service: NodeManagementService = server.iserver.node_mgt_service
        self.prototype = prototype
        node = NodeData(prototype.RequestedNewNodeId)
        service._add_node_attributes(node, prototype, add_timestamps=True)  # noqa: SLF001 - asyncua's own build
        self.shared = [(attribute, held.value) for attribute, held in node.attributes.items()
                       if attribute not in _OWN_ATTRIBUTES]
        """(attribute, DataValue) every copy shares: asyncua replaces an attribute's DataValue on a write, it never
        changes one in place (contract test: a write to one copy leaves the others as they were)."""
        self.own = {attribute: node.attributes[attribute].value for attribute in _OWN_ATTRIBUTES
                    if attribute in node.attributes}
        """The prototype's DataValues of node id, names, description and value: a copy's own are copies of these
        with the value replaced."""
        self.from_parent = ua.ReferenceDescription(
            ReferenceTypeId=prototype.ReferenceTypeId, NodeId=prototype.RequestedNewNodeId,
            NodeClass=prototype.NodeClass, BrowseName=prototype.BrowseName,
            DisplayName=prototype.NodeAttributes.DisplayName, TypeDefinition=prototype.TypeDefinition, IsForward=True)
        """The parent's reference to the prototype as asyncua describes it (``_add_ref_from_parent``)."""
        self.reference_key = (prototype.ReferenceTypeId.NamespaceIndex, prototype.ReferenceTypeId.Identifier)

    def item(self, copy: NodeCopy) -> ua.AddNodesItem:
        """The AddNodesItem of ``copy`` for asyncua's own AddNodes (the reference :func:`add_node_copies` is tested
        against)."""
        p = self.prototype
        attributes = dataclasses.replace(p.NodeAttributes)
        if copy.name is not None:
            attributes.DisplayName = ua.LocalizedText(copy.name)
        if copy.description is not None:
            attributes.Description = ua.LocalizedText(copy.description)
        if copy.value is not None:
            attributes.Value = copy.value
        name = p.BrowseName if copy.name is None else ua.QualifiedName(copy.name, p.BrowseName.NamespaceIndex)
        return ua.AddNodesItem(ParentNodeId=copy.parent, ReferenceTypeId=p.ReferenceTypeId,
                               RequestedNewNodeId=copy.node_id, BrowseName=name, NodeClass=p.NodeClass,
                               NodeAttributes=attributes, TypeDefinition=p.TypeDefinition)


class NodeCopy(NamedTuple):
    """One node to make as a copy of ``template`` (see :class:`NodeTemplate`); ``None``: the prototype's."""

    template: NodeTemplate
    node_id: ua.NodeId
    parent: ua.NodeId
    name: str | None = None
    """browse name (in the prototype's namespace) and display name"""
    description: str | None = None
    value: ua.Variant | None = None


async def add_node_copies(server: Server, copies: Iterable[NodeCopy]) -> list[tuple[NodeCopy, ua.StatusCode]]:
    """Add the nodes ``copies`` describe, each the node asyncua's AddNodes makes of ``copy.template.item(copy)``
    (contract test: attributes and references compared), at a fraction of its cost. A 10,000-tag line with a limit
    alarm on every tag is ~170,000 nodes; asyncua makes ~16 DataValues (each a Variant with its type checks) for
    each, and an AddNodes item alone costs more than a copy. Here a copy shares the DataValues of its template's
    fixed attributes and has its own only for node id, names, description and value; its references are those
    asyncua makes (parent → copy, copy → parent, copy → type definition), the parent's and the type's described
    once and copied. Value timestamps: one per call.

    Returns the copies refused, each with asyncua's status (empty when all were added): a null node id
    (``BadNodeIdInvalid``: the twin names every node), one that exists (``BadNodeIdExists``), a missing parent
    (``BadParentNodeIdInvalid``), a browse name equal to a property of the parent (``BadBrowseNameDuplicated``), a
    type definition not in the address space (``BadTypeDefinitionInvalid``)."""
    aspace = server.iserver.aspace
    targets = _TargetDescriptions(aspace)
    has_property = ua.NodeId(ua.ObjectIds.HasProperty)
    has_type_definition = ua.NodeId(ua.ObjectIds.HasTypeDefinition)
    now = datetime.now(UTC)
    server_stamp = now if aspace.force_server_timestamp else None
    node_id_attr, browse_attr = ua.AttributeIds.NodeId, ua.AttributeIds.BrowseName
    display_attr, description_attr, value_attr = (ua.AttributeIds.DisplayName, ua.AttributeIds.Description,
                                                  ua.AttributeIds.Value)
    refused: list[tuple[NodeCopy, ua.StatusCode]] = []
    property_names: dict[int, set[str]] = {}  # by id() of the parent's NodeData (each lives in the address space)
    to_parent: dict[tuple[int, Any], ua.ReferenceDescription | None] = {}  # by parent's id() and reference type
    to_type: dict[int, ua.ReferenceDescription | None] = {}  # by id() of the template
    made: dict[int, tuple[NodeData, NodeTemplate, ua.QualifiedName, ua.LocalizedText | None]] = {}
    """The copies made, by id() of their node id object (alive in the address space): a later copy whose parent is
    that very object finds it without a look-up, and its reference back is described from the template."""
    parent_id: ua.NodeId | None = None
    parent: NodeData | None = None
    parent_made: tuple[NodeData, NodeTemplate, ua.QualifiedName, ua.LocalizedText | None] | None = None
    looked_up_id: ua.NodeId | None = None
    looked_up: NodeData | None = None

    def own(template_value: ua.DataValue, value: Any) -> AttributeValue:
        variant = _copy_variant(template_value.Value)
        variant.Value = value
        data_value = _copy_data_value(template_value)
        data_value.Value = variant
        return AttributeValue(data_value)

    for node_copy in copies:
        template, node_id = node_copy.template, node_copy.node_id
        status = None
        if node_id.has_null_identifier():
            status = ua.StatusCodes.BadNodeIdInvalid
        elif node_id in aspace:
            status = ua.StatusCodes.BadNodeIdExists
        else:
            parent_id = node_copy.parent
            parent_made = made.get(id(parent_id))
            if parent_made is not None:
                parent = parent_made[0]
            else:
                if looked_up_id is None or parent_id is not looked_up_id and parent_id != looked_up_id:
                    looked_up_id, looked_up = parent_id, aspace.get(parent_id)
                parent = looked_up
            if parent is None:
                status = ua.StatusCodes.BadParentNodeIdInvalid
        if status is None:
            assert parent is not None and parent_id is not None
            names = property_names.get(id(parent))
            if names is None:
                names = {r.BrowseName.Name for r in parent.references if r.ReferenceTypeId == has_property}
                property_names[id(parent)] = names
            prototype = template.prototype
            name = node_copy.name
            browse_name = prototype.BrowseName if name is None else \
                ua.QualifiedName(name, prototype.BrowseName.NamespaceIndex)
            if browse_name.Name in names:
                status = ua.StatusCodes.BadBrowseNameDuplicated
            type_definition = prototype.TypeDefinition
            type_reference = None
            if status is None and id(template) not in to_type:
                to_type[id(template)] = None if type_definition.is_null() or type_definition not in aspace else \
                    targets.reference(type_definition, has_type_definition, True)
            type_reference = to_type.get(id(template))
            if status is None and type_reference is None and not type_definition.is_null():
                status = ua.StatusCodes.BadTypeDefinitionInvalid
        if status is not None:
            refused.append((node_copy, ua.StatusCode(status)))
            continue
        node = NodeData(node_id)
        attributes = node.attributes
        for attribute, shared in template.shared:
            attributes[attribute] = AttributeValue(shared)
        own_values = template.own
        attributes[node_id_attr] = own(own_values[node_id_attr], node_id)
        if name is None:
            display_name = prototype.NodeAttributes.DisplayName
            attributes[browse_attr] = AttributeValue(own_values[browse_attr])
            if display_attr in own_values:
                attributes[display_attr] = AttributeValue(own_values[display_attr])
        else:
            display_name = ua.LocalizedText(name)
            attributes[browse_attr] = own(own_values[browse_attr], browse_name)
            if display_attr in own_values:
                attributes[display_attr] = own(own_values[display_attr], display_name)
        if description_attr in own_values:
            attributes[description_attr] = AttributeValue(own_values[description_attr]) \
                if node_copy.description is None else \
                own(own_values[description_attr], ua.LocalizedText(node_copy.description))
        if value_attr in own_values:
            value = _copy_data_value(own_values[value_attr])
            given = node_copy.value
            value.Value = _copy_variant(value.Value if given is None else given)
            value.SourceTimestamp = now
            value.ServerTimestamp = server_stamp
            attributes[value_attr] = AttributeValue(value)
        aspace[node_id] = node
        down = _copy_reference(template.from_parent)
        down.NodeId, down.BrowseName, down.DisplayName = node_id, browse_name, display_name
        parent.references.append(down)
        if template.from_parent.ReferenceTypeId == has_property:
            names.add(browse_name.Name)
        key = (id(parent), template.reference_key)
        if key not in to_parent:
            if parent_made is not None:
                to_parent[key] = targets.described(parent_id, prototype.ReferenceTypeId, False, *parent_made[1:])
            else:
                parent_class = targets.node_class(parent_id)  # asyncua adds no reference back to a classless parent
                to_parent[key] = None if parent_class is None else \
                    targets.reference(parent_id, prototype.ReferenceTypeId, False, parent_class)
        up = to_parent[key]
        if up is not None:
            node.references.append(_copy_reference(up))
        if type_reference is not None:
            node.references.append(_copy_reference(type_reference))
        made[id(node_id)] = (node, template, browse_name, display_name if display_attr in own_values else None)
    return refused


async def add_references(server: Server, refs: list[ua.AddReferencesItem]) -> list[ua.StatusCode]:
    """AddReferences through the server's internal session."""
    return await server.iserver.isession.add_references(refs)


def internal_user(server: Server) -> User:
    """The user of the server's internal session (its writes are the server's own, never a client's)."""
    return server.iserver.isession.user


async def trigger_event(server: Server, event: Any) -> None:
    """Send ``event`` to every subscription monitoring events of its source."""
    await server.iserver.subscription_service.trigger_event(event)


@dataclass(frozen=True)
class EventSubscription:
    """A subscription's event monitored items, for ConditionRefresh: the owning session and, per monitored
    item, the node it monitors; ``trigger(event, item)`` sends one event to one monitored item."""

    session_id: ua.NodeId
    items: list[tuple[ua.NodeId, int]]
    trigger: Callable[[Any, int], Awaitable[Any]]


def event_subscription(server: Server, subscription_id: int) -> EventSubscription | None:
    """The event monitored items of subscription ``subscription_id``; ``None`` when there is no such
    subscription."""
    subscription = server.iserver.subscription_service.subscriptions.get(subscription_id)
    if subscription is None:
        return None
    service = subscription.monitored_item_srv
    by_node: dict[ua.NodeId, list[int]] = service._monitored_events  # noqa: SLF001 - no public view of these
    return EventSubscription(subscription.session_id, [(n, mid) for n, mids in by_node.items() for mid in mids],
                             service.trigger_event)


def install_event_filter(server: Server, admit: EventAdmission) -> None:
    """An event triggered for every subscription goes only to the subscriptions whose session ``admit`` lets
    through; an event for one subscription (ConditionRefresh) is sent as asked."""
    service = server.iserver.subscription_service
    original = service.trigger_event

    async def trigger_event(event: Any, subscription_id: int | None = None) -> None:
        if subscription_id is not None:
            await original(event, subscription_id)
            return
        if hasattr(event, "Retain") and hasattr(event, "NodeId"):  # asyncua's condition bookkeeping, then deliver
            await original(event, subscription_id=-1)
        for sid, sub in list(service.subscriptions.items()):
            if admit(event, sub.session_id):
                await original(event, sid)

    service.trigger_event = trigger_event  # type: ignore[method-assign]


def set_message_limit(server: Server, max_bytes: int) -> None:
    """The largest request message a client may send (asyncua's ``TransportLimits``; beyond it the request is
    answered ``BadRequestTooLarge``/``BadTcpMessageTooLarge``). Call before ``server.start``."""
    limits = server.limits
    limits.max_message_size = max_bytes
    limits.max_chunk_count = max(1, -(-max_bytes // limits.max_recv_buffer))


def channel_secured(server: Server, peer: Any) -> bool:
    """Whether the secure channel of the connection from ``peer`` (a session's ``peer``) signs (or signs and
    encrypts); ``True`` when no such connection is open."""
    for protocol in _client_connections(server):
        if protocol.peer_name == peer and protocol.processor is not None:
            policy = protocol.processor._connection.security_policy  # noqa: SLF001 - asyncua keeps it private
            return bool(policy.Mode != ua.MessageSecurityMode.None_)
    return True


def _client_connections(server: Server) -> list[Any]:
    """asyncua's protocol object of every open client connection (none before ``start``)."""
    return list(server.bserver.clients) if server.bserver is not None else []


async def close_client_sessions(server: Server) -> int:
    """End every client session as a session timeout does (subscriptions deleted; the TCP connections and secure
    channels stay; asyncua answers a request without a session ``BadUserAccessDenied``). Returns how many ended."""
    ended = 0
    for protocol in _client_connections(server):
        processor = protocol.processor
        session = processor.session if processor is not None else None
        if session is not None:
            await session.close_session(True)
            processor.session = None
            ended += 1
    return ended


def listening_port(server: Server) -> int:
    """The TCP port a started server listens on (the one the OS chose when it was bound to port 0)."""
    if server.bserver is None:
        raise RuntimeError("the OPC UA server is not started")
    return int(server.bserver.port)


def set_user_manager(server: Server, manager: Any) -> None:
    """The identity hook: asyncua calls ``manager.get_user(iserver, username=, password=, certificate=)`` on
    every ActivateSession with a user manager set; ``None`` refuses the login (BadUserAccessDenied)."""
    server.iserver.set_user_manager(manager)


# --- server start-up: the standard address space filled once per process, copied after ---------------------

class StandardSpaceCounts(NamedTuple):
    """What :func:`init_server` did in this process so far."""

    fills: int
    """Servers whose standard address space asyncua filled from its generated code."""
    copies: int
    """Servers given a copy of the snapshot instead."""
    snapshot_bytes: int
    """Size of the snapshot, all nodes' pickles together (0: none taken yet)."""


class _StandardSpace:
    """The process's snapshot of asyncua's standard address space (each node's ``NodeData`` pickled on its own,
    taken right after asyncua filled a server's space, before anything else touched it) and what :func:`init_server`
    did. Bytes, not objects: the cyclic collector never traverses a snapshot, and every node copied from it is a new,
    independent object graph."""

    def __init__(self) -> None:
        self.snapshot: dict[ua.NodeId, bytes] | None = None
        """Node id → that node's ``NodeData`` pickled (shared by every copy: bytes never change)."""
        self.fills = 0
        self.copies = 0
        self.not_picklable: str | None = None
        """Why a snapshot could not be taken (then every server is filled, as without the cache)."""
        self.lock = threading.Lock()
        """Counts and the snapshot change from any thread or event loop (pytest runs one loop per test)."""


_standard_space = _StandardSpace()


async def init_server(server: Server) -> None:
    """``await server.init()`` — asyncua's own start-up, every step of it (``InternalServer.init``: the standard
    address space, ``_address_space_fixes``, ``setup_nodes``, the history manager, condition methods; then
    ``Server.init``'s application URI, ServerArray, ServiceLevel, build info) — except that the standard address
    space (6,174 nodes, ~480,000 Python objects, asyncua's generated code with the cyclic collector running over
    them) is filled by asyncua only for the first two servers of a process, the collector paused. The second's is
    pickled right after the fill, node by node (~0.5 CPU s, once). A later server's address space is a
    :class:`~plc_adapters.copied_on_first_read.CopiedOnFirstRead` table over that snapshot: a standard node is
    unpickled into the server's own table when asyncua first reads it (Read, Browse, a write, a reference added),
    node for node what asyncua fills, sharing no object with another server; nodes no one reads stay bytes. Init
    reads 27 of the 6,174 nodes, a pilot twin's start-up ~60. A server's whole init, one full collection after it
    counted: 1.45 CPU s as asyncua does it, 0.02 s from the snapshot (it was 0.75 s with a whole unpickled copy;
    ``benchmarks/server_startup.py``; ``docs/performance.md``, "Server start-up"). A process that starts one server
    (``linetwin serve``) takes no snapshot: pickling costs as much as a fill and would never be used.

    How: ``InternalServer.init`` calls ``self.load_standard_address_space(shelf_file)``; for the duration of the
    call that name is this server's own function (an instance attribute, removed afterwards), which puts the table
    in ``AddressSpace._nodes``, the one dict asyncua keeps its nodes in (every ``AddressSpace`` read and write goes
    through it). asyncua's shelf (``Server.init(shelf_file)``) is not used: its lazy dict iterates only the nodes
    read so far, keeps a file open per server and writes a file. Two inits that overlap (one loop or several
    threads) are each served correctly: both may fill, a snapshot is taken once. Contract tests: a copied space
    equals a filled one node for node, init copies under 200 nodes, a real client's Read and Browse of unread
    standard nodes answer as a filled server's, two servers share no node object, and a copy is what a later server
    gets."""
    iserver: InternalServer = server.iserver

    async def load_standard_address_space(shelf_file: Any = None) -> None:
        await _load_standard_space(iserver)

    iserver.load_standard_address_space = load_standard_address_space  # type: ignore[method-assign]
    try:
        await server.init()
    finally:
        del iserver.load_standard_address_space  # asyncua's own method again


async def stop_server(server: Server) -> None:
    """Stop the server's clock (:func:`stop_server_clock`), ``await server.stop()``, then
    :func:`release_address_space` — also when the stop raised (the server is not served again either way): how
    every server started with :func:`init_server` stops."""
    try:
        await stop_server_clock(server)
        await server.stop()
    finally:
        release_address_space(server)


async def stop_server_clock(server: Server) -> bool:
    """Cancel the task that keeps the server's ``Server_ServerStatus_CurrentTime`` (asyncua's
    ``InternalServer._set_current_time_loop``: an update, then a 1 s sleep); returns whether one was running.

    ``InternalServer.stop`` sets the loop's stop flag and then awaits the task, which ends only when its sleep
    does: every ``server.stop()`` waited up to 1 s (~0.5 s on average) doing nothing — the suite's own
    processes stop ~110 servers, its twins and CLI commands more. Cancelled, the task ends at once, and ``stop``
    finds no task to wait for. The clock runs unchanged while the server serves. Contract test: a started
    server's clock task is asyncua's, it advances CurrentTime, and after :func:`stop_server` it was cancelled,
    not waited for."""
    iserver: InternalServer = server.iserver
    task: asyncio.Task[None] | None = iserver.time_task
    if task is None:
        return False
    iserver._time_task_stop = True  # noqa: SLF001 - the loop's own stop flag, as InternalServer.stop sets it
    iserver.time_task = None
    task.cancel()
    await asyncio.wait([task])  # not ``await task``: a cancellation of this caller must not be swallowed
    if not task.cancelled() and task.exception() is not None:
        log.warning("the server clock task had failed: %r", task.exception())
    return True


def release_address_space(server: Server) -> int:
    """Drop every node of a stopped server's address space; returns how many were dropped.

    asyncua's server objects reference each other in cycles (server ↔ internal server ↔ sessions ↔ services), so a
    stopped server, with its ~480,000 objects of the standard address space alone, is freed only by a full
    collection of the cyclic collector, which traverses every one of them (~0.4 CPU s a server). The nodes
    themselves (``NodeData``: attributes, DataValues, references) hold no reference back: dropped from the address
    space's table they are freed by reference counting right here (~0.05 s), and the cycle left for the collector
    is small. Call it only after ``server.stop()``: a node read afterwards is unknown. Contract test: the nodes of a
    stopped, released server are freed with the collector off."""
    nodes = server.iserver.aspace._nodes  # noqa: SLF001 - asyncua has no public way to empty its address space
    count = len(nodes)
    nodes.clear()
    return count


def standard_space_counts() -> StandardSpaceCounts:
    """How many servers :func:`init_server` filled and copied in this process, and the snapshot's size."""
    cache = _standard_space
    return StandardSpaceCounts(cache.fills, cache.copies, sum(map(len, (cache.snapshot or {}).values())))


async def _load_standard_space(iserver: InternalServer) -> None:
    cache = _standard_space
    snapshot = cache.snapshot
    if snapshot is not None:
        aspace = iserver.aspace
        nodes: CopiedOnFirstRead[ua.NodeId, NodeData] = CopiedOnFirstRead(snapshot)
        nodes.update(aspace._nodes)  # noqa: SLF001 - none yet: asyncua loads the standard space first
        aspace._nodes = nodes  # noqa: SLF001 - the one table asyncua keeps its nodes in (AddressSpace.__init__)
        with cache.lock:
            cache.copies += 1
        return
    with collector_paused():
        await InternalServer.load_standard_address_space(iserver)  # asyncua's own fill, in a thread as asyncua does
    with cache.lock:
        cache.fills += 1
        take = cache.fills >= 2 and cache.snapshot is None and cache.not_picklable is None
    if not take:  # the first server of a process: a process with one server never needs the snapshot
        return
    try:
        taken = await asyncio.to_thread(_pickled, iserver.aspace)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a node asyncua fills that pickle cannot copy
        log.warning("asyncua's standard address space cannot be pickled (%s): every server fills its own", exc)
        with cache.lock:
            cache.not_picklable = str(exc)
        return
    with cache.lock:
        if cache.snapshot is None:
            cache.snapshot = taken


def _pickled(aspace: AddressSpace) -> dict[ua.NodeId, bytes]:
    """The filled standard space (no node of the server's own yet: ``init_server`` is still running), each node
    pickled on its own."""
    with collector_paused():
        return pickled_entries({node_id: aspace[node_id] for node_id in aspace.keys()})


def copied_node_counts(server: Server) -> tuple[int, int]:
    """``(nodes held as objects, standard nodes still pickled)`` of a server's address space: a server started from
    the snapshot copies a standard node when it is first read (``(n, 0)`` for a server asyncua filled)."""
    nodes = server.iserver.aspace._nodes  # noqa: SLF001 - see _load_standard_space
    if isinstance(nodes, CopiedOnFirstRead):
        return nodes.copied, nodes.still_pickled
    return len(nodes), 0


# --- write hook -------------------------------------------------------------------------------------------

_NO_USER = User(role=UserRole.Admin, name="asyncua-default")


def install_write_hook(server: Server, hook: WriteHook) -> WriteHook:
    """Every Write of a client session goes to ``hook``; the server's own writes (internal session, no user)
    to asyncua's attribute service unchanged. Returns asyncua's own write (its access-level and type checks,
    then the address space) for a hook that hands on what it does not refuse."""
    iserver: InternalServer = server.iserver
    own = iserver.isession.user

    class HookedAttributeService(AttributeService):
        async def write(self, params: ua.WriteParameters, user: User = _NO_USER) -> list[ua.StatusCode]:
            if user is _NO_USER or user is own:
                return await super().write(params) if user is _NO_USER else await super().write(params, user)
            return await hook(params, user)

    service = HookedAttributeService(iserver.aspace)
    iserver.attribute_service = service

    async def asyncua_write(params: ua.WriteParameters, user: User) -> list[ua.StatusCode]:
        return await AttributeService.write(service, params, user)

    return asyncua_write


# --- history hook -----------------------------------------------------------------------------------------

def install_history_reader(server: Server, reader: HistoryReader) -> None:
    """Every HistoryRead request goes to ``reader``; asyncua's own history storage is never opened (the twin
    historizes from its config; ``historize_node_*`` are refused)."""
    iserver: InternalServer = server.iserver

    class HookedHistoryManager(HistoryManager):
        async def init(self) -> None:  # the historian opens its own store
            return None

        async def stop(self) -> None:  # the historian closes its own store
            return None

        async def historize_data_change(self, node: Any, period: Any = None, count: int = 0) -> None:
            raise ua.UaError("linetwin historizes nodes from the line config ([historian], per-tag historize)")

        async def historize_event(self, source: Any, period: Any = None, count: int = 0) -> None:
            raise ua.UaError("linetwin historizes events from the line config ([historian])")

        async def read_history(self, params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
            return await reader(params)

    iserver.history_manager = HookedHistoryManager(iserver)


# --- session hooks ----------------------------------------------------------------------------------------

class SessionView:
    """What a session hook may know of an asyncua session."""

    __slots__ = ("_session", "notes")

    def __init__(self, session: InternalSession) -> None:
        self._session = session
        self.notes: dict[str, Any] = {}
        """What hooks keep per session (e.g. the client's ApplicationUri); lives as long as the session."""

    @property
    def user(self) -> User:
        return self._session.user

    @property
    def peer(self) -> Any:
        """The client's address (``(host, port)`` for a TCP connection)."""
        return self._session.name

    @property
    def session_id(self) -> ua.NodeId:
        return self._session.session_id

    @property
    def activated(self) -> bool:
        return self._session.state == SessionState.Activated


class SessionServiceHooks:
    """Interceptors of one session's services; each gets the session, the request and ``proceed`` (asyncua's
    service, or the next hook's). The defaults pass the request on unchanged; override what you need."""

    external_only = True
    """Hook only sessions of clients (not sessions the server creates for itself)."""

    async def on_create(self, session: SessionView, params: ua.CreateSessionParameters,
                        proceed: Callable[[ua.CreateSessionParameters], Awaitable[Any]]) -> Any:
        return await proceed(params)

    def on_activate(self, session: SessionView, params: ua.ActivateSessionParameters,
                    proceed: Callable[[ua.ActivateSessionParameters], Any]) -> Any:
        return proceed(params)

    async def on_close(self, session: SessionView, proceed: Callable[[], Awaitable[None]]) -> None:
        await proceed()

    async def on_call(self, session: SessionView, params: list[ua.CallMethodRequest],
                      proceed: Callable[[list[ua.CallMethodRequest]], Awaitable[list[ua.CallMethodResult]]],
                      ) -> list[ua.CallMethodResult]:
        return await proceed(params)

    async def on_history_read(self, session: SessionView, params: ua.HistoryReadParameters,
                              proceed: Callable[[ua.HistoryReadParameters], Awaitable[list[ua.HistoryReadResult]]],
                              ) -> list[ua.HistoryReadResult]:
        return await proceed(params)

    async def on_read(self, session: SessionView, params: ua.ReadParameters,
                      proceed: Callable[[ua.ReadParameters], Awaitable[list[ua.DataValue]]]) -> list[ua.DataValue]:
        return await proceed(params)

    async def on_create_monitored_items(self, session: SessionView, params: ua.CreateMonitoredItemsParameters,
                                        proceed: Callable[[ua.CreateMonitoredItemsParameters], Awaitable[Any]],
                                        ) -> Any:
        return await proceed(params)


def install_session_hooks(server: Server, hooks: SessionServiceHooks) -> None:
    """Pass the services of every session created from now on through ``hooks``. Hooks installed later run
    first (outermost)."""
    iserver: InternalServer = server.iserver
    original = iserver.create_session

    def create_session(name: str, user: User = User(role=UserRole.Anonymous),  # noqa: B008 (asyncua's default)
                       external: bool = False) -> InternalSession:
        session = original(name, user=user, external=external)
        if external or not hooks.external_only:
            _wrap_session(session, hooks)
        return session

    iserver.create_session = create_session  # type: ignore[method-assign]


def _wrap_session(session: InternalSession, hooks: SessionServiceHooks) -> None:
    view = SessionView(session)
    orig_create, orig_activate, orig_close = session.create_session, session.activate_session, session.close_session
    orig_call, orig_history, orig_read = session.call, session.history_read, session.read
    orig_monitored = session.create_monitored_items

    async def create_session(params: ua.CreateSessionParameters, sockname: Any = None) -> Any:
        return await hooks.on_create(view, params, lambda p: orig_create(p, sockname=sockname))

    def activate_session(params: ua.ActivateSessionParameters, peer_certificate: Any) -> Any:
        return hooks.on_activate(view, params, lambda p: orig_activate(p, peer_certificate))

    async def close_session(delete_subs: bool = True) -> None:
        await hooks.on_close(view, lambda: orig_close(delete_subs))

    async def call(params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        return await hooks.on_call(view, params, orig_call)

    async def history_read(params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        return await hooks.on_history_read(view, params, orig_history)

    async def read(params: ua.ReadParameters) -> list[ua.DataValue]:
        return await hooks.on_read(view, params, orig_read)

    session.create_session = create_session  # type: ignore[method-assign]
    session.activate_session = activate_session  # type: ignore[method-assign]
    session.close_session = close_session  # type: ignore[method-assign]
    session.call = call  # type: ignore[method-assign]
    session.history_read = history_read  # type: ignore[method-assign]
    session.read = read  # type: ignore[method-assign]

    async def create_monitored_items(params: ua.CreateMonitoredItemsParameters) -> Any:
        return await hooks.on_create_monitored_items(view, params, orig_monitored)

    session.create_monitored_items = create_monitored_items  # type: ignore[method-assign]


# --- the asyncua signatures the hooks were written for ----------------------------------------------------

HOOKED_SIGNATURES: dict[str, tuple[Callable[..., Any], str]] = {
    "write hook: AttributeService.write": (AttributeService.write, "(self, params, user=<default>)"),
    "write hook: InternalSession.write → attribute_service.write": (InternalSession.write, "(self, params)"),
    "history hook: HistoryManager.read_history": (HistoryManager.read_history, "(self, params)"),
    "history hook: HistoryManager.__init__": (HistoryManager.__init__, "(self, iserver)"),
    "history hook: InternalSession.history_read": (InternalSession.history_read, "(self, params)"),
    "session hooks: InternalServer.create_session": (InternalServer.create_session,
                                                     "(self, name, user=<default>, external=<default>)"),
    "session hooks: InternalSession.create_session": (InternalSession.create_session,
                                                      "(self, params, sockname=<default>)"),
    "session hooks: InternalSession.activate_session": (InternalSession.activate_session,
                                                        "(self, params, peer_certificate)"),
    "session hooks, session expiry: InternalSession.close_session": (InternalSession.close_session,
                                                                     "(self, delete_subs=<default>)"),
    "session hooks: InternalSession.call": (InternalSession.call, "(self, params)"),
    "session hooks: InternalSession.read": (InternalSession.read, "(self, params)"),
    "session hooks: InternalSession.create_monitored_items": (InternalSession.create_monitored_items,
                                                              "(self, params)"),
    "event filter: SubscriptionService.trigger_event": (SubscriptionService.trigger_event,
                                                        "(self, event, subscription_id=<default>)"),
    "identity hook: UserManager.get_user": (UserManager.get_user,
                                            "(self, iserver, username=<default>, password=<default>, "
                                            "certificate=<default>)"),
    "node management: PermissionRuleset.check_validity": (PermissionRuleset.check_validity,
                                                          "(self, user, action_type, body)"),
    "address space: AddressSpace.get (publish)": (AddressSpace.get, "(self, nodeid)"),
    "address space: AttributeValue.__init__ (publish: value, datachange_callbacks)": (AttributeValue.__init__,
                                                                                       "(self, value)"),
    "address space: AddressSpace.read_attribute_value": (AddressSpace.read_attribute_value, "(self, nodeid, attr)"),
    "address space: AddressSpace.write_attribute_value": (AddressSpace.write_attribute_value,
                                                          "(self, nodeid, attr, value)"),
    "internal session: InternalSession.add_nodes": (InternalSession.add_nodes, "(self, params)"),
    "internal session: InternalSession.add_references": (InternalSession.add_references, "(self, params)"),
    "bulk node creation: NodeManagementService._add_node": (NodeManagementService._add_node,  # noqa: SLF001
                                                            "(self, item, user, check=<default>)"),
    "bulk node creation: NodeManagementService._add_node_attributes": (
        NodeManagementService._add_node_attributes, "(self, nodedata, item, add_timestamps)"),  # noqa: SLF001
    "bulk node creation: NodeManagementService._add_ref_to_parent": (
        NodeManagementService._add_ref_to_parent, "(self, nodedata, item, parentdata)"),  # noqa: SLF001
    "bulk node creation: NodeManagementService._add_type_definition": (
        NodeManagementService._add_type_definition, "(self, nodedata, item)"),  # noqa: SLF001
    "bulk node creation: NodeManagementService._add_reference_no_check": (
        NodeManagementService._add_reference_no_check, "(self, sourcedata, addref)"),  # noqa: SLF001
    "bulk node creation: NodeData.__init__": (NodeData.__init__, "(self, nodeid)"),
    "batch value write: AttributeValue.__init__": (AttributeValue.__init__, "(self, value)"),
    "clock at stop: InternalServer._set_current_time_loop": (InternalServer._set_current_time_loop,  # noqa: SLF001
                                                             "(self)"),
    "clock at stop: InternalServer.stop": (InternalServer.stop, "(self)"),
    "batch value write: MonitoredItemService.datachange_callback": (
        MonitoredItemService.datachange_callback, "(self, handle, value, error=<default>)"),
    "batch value write: MonitoredItemService._is_data_changed": (
        MonitoredItemService._is_data_changed, "(values, trg)"),  # noqa: SLF001
    "batch value write: MonitoredItemService._is_deadband_exceeded": (
        MonitoredItemService._is_deadband_exceeded, "(self, values, flt)"),  # noqa: SLF001
    "batch value write: MonitoredItemValues.set_current_datavalue": (
        MonitoredItemValues.set_current_datavalue, "(self, cur_val)"),
    "batch value write: InternalSubscription.enqueue_datachange_event": (
        InternalSubscription.enqueue_datachange_event, "(self, mid, eventdata, maxsize)"),
    "server start-up: Server.init": (Server.init, "(self, shelf_file=<default>)"),
    "server start-up: InternalServer.init → self.load_standard_address_space": (InternalServer.init,
                                                                               "(self, shelffile=<default>)"),
    "server start-up: InternalServer.load_standard_address_space": (InternalServer.load_standard_address_space,
                                                                    "(self, shelf_file=<default>)"),
    "server start-up: AddressSpace.keys": (AddressSpace.keys, "(self)"),
    "server start-up: AddressSpace.__getitem__": (AddressSpace.__getitem__, "(self, nodeid)"),
    "server start-up: AddressSpace.__setitem__": (AddressSpace.__setitem__, "(self, nodeid, value)"),
    "subscription loggers: SubscriptionService.delete_subscriptions": (
        SubscriptionService.delete_subscriptions, "(self, ids)"),
    "subscription loggers: MonitoredItemService.__init__ (names the logger)": (
        MonitoredItemService.__init__, "(self, isub, aspace)"),
}
"""Each hooked asyncua function and its parameter list (names and which have defaults) as the seam was written
for it. :func:`signature_drift` compares them with the installed asyncua."""


def parameter_list(function: Callable[..., Any]) -> str:
    """``(a, b=<default>)``: a function's parameter names, defaults masked (their values may change freely)."""
    params = []
    for p in inspect.signature(function).parameters.values():
        name = {p.VAR_POSITIONAL: f"*{p.name}", p.VAR_KEYWORD: f"**{p.name}"}.get(p.kind, p.name)
        params.append(name if p.default is p.empty else f"{name}=<default>")
    return f"({', '.join(params)})"


def signature_drift() -> list[str]:
    """One line per hooked asyncua function whose parameters are not those the seam was written for, and per
    copied class whose slots are not those its copy was written for."""
    return [f"{hook}: asyncua now has {parameter_list(fn)}, the seam was written for {expected}"
            for hook, (fn, expected) in HOOKED_SIGNATURES.items() if parameter_list(fn) != expected] + \
        [f"{hook}: asyncua's {cls.__name__} now has the slots {tuple(getattr(cls, '__slots__', ()))}, the copies "
         f"were written for {expected}"
         for hook, (cls, expected) in COPIED_SLOTS.items() if tuple(getattr(cls, "__slots__", ())) != expected]


# --- what the metrics endpoint reads at scrape time ---------------------------------------------------------

def activated_session_users(server: Server) -> list[User]:
    """The user of every activated client session (the twin's own internal sessions are not counted)."""
    users = []
    for protocol in _client_connections(server):
        session = protocol.processor.session if protocol.processor is not None else None
        if session is not None and session.state == SessionState.Activated and session.user is not None:
            users.append(session.user)
    return users


SUBSCRIPTION_LOGGER_PREFIX = f"{MonitoredItemService.__module__}."
"""asyncua names one logger per subscription ``asyncua.server.monitored_item_service.<SubscriptionId>``
(``MonitoredItemService.__init__``); :mod:`logging` keeps every logger ever named, for the life of the process."""


def release_subscription_loggers(server: Server) -> None:
    """Forget the per-subscription logger of every subscription the server deletes from now on (a client's
    DeleteSubscriptions, a closed or timed-out session).

    asyncua makes a ``logging.Logger`` per subscription and nothing removes it from the logging manager's table, so
    a server that outlives many subscriptions (clients that connect, subscribe and go, for months) keeps one logger
    object per subscription it ever had: about 1 KiB each, without bound. After asyncua has deleted a subscription,
    its logger is dropped from ``logging.Logger.manager.loggerDict`` and from the ``PlaceHolder`` of every ancestor
    name (asyncua makes no logger of its own module's name, so ``logging`` keeps each child logger in the placeholders
    of ``asyncua.server.monitored_item_service``'s ancestors too); the logger object goes when the deleted
    subscription's objects do. A later ``getLogger`` of that name simply makes a new one."""
    service = server.iserver.subscription_service
    delete = service.delete_subscriptions

    async def delete_subscriptions(ids: list[int]) -> list[ua.StatusCode]:
        results = await delete(ids)
        loggers = logging.Logger.manager.loggerDict
        for subscription_id, result in zip(ids, results, strict=False):
            if not result.is_good():
                continue
            logger = loggers.pop(f"{SUBSCRIPTION_LOGGER_PREFIX}{subscription_id}", None)
            if logger is None:
                continue
            # logging also keeps a logger in the PlaceHolder of each ancestor name no logger was made for
            # ("asyncua.server", "asyncua"): without this the name goes, the object stays
            for holder in list(loggers.values()):
                if isinstance(holder, logging.PlaceHolder):
                    holder.loggerMap.pop(logger, None)  # type: ignore[call-overload]
        return results

    service.delete_subscriptions = delete_subscriptions  # type: ignore[method-assign]


def subscription_loggers() -> int:
    """How many per-subscription loggers of asyncua the logging manager holds now (see
    :func:`release_subscription_loggers`)."""
    return sum(1 for name in list(logging.Logger.manager.loggerDict) if name.startswith(SUBSCRIPTION_LOGGER_PREFIX))


def server_holdings(server: Server) -> tuple[int, int, int]:
    """(client sessions, subscriptions, monitored items) the server holds now — what a client that vanishes
    without closing must not leave behind (the soak benchmark's rows)."""
    iserver = server.iserver
    sessions = len(iserver._external_sessions)  # noqa: SLF001 - asyncua keeps its session table private
    subscriptions = list(iserver.subscription_service.subscriptions.values())
    items = sum(len(s.monitored_item_srv._monitored_items) for s in subscriptions)  # noqa: SLF001 - no public count
    return sessions, len(subscriptions), items


def subscription_counts(server: Server) -> tuple[int, int]:
    """(live subscriptions, notification messages they have published so far)."""
    subscriptions = list(server.iserver.subscription_service.subscriptions.values())
    return len(subscriptions), sum(max(int(getattr(s, "_notification_seq", 1)) - 1, 0) for s in subscriptions)
