"""Opening an OPC UA session to a PLC and learning its nodes (used by :mod:`plc_adapters.opcua_adapter`).

On every connect: the client is set up (security policy/mode, user name with the password from the environment,
or an X.509 identity), the NamespaceArray is read and each tag's namespace URI resolved to the index it has *now*,
and, once the subscription delivers data, the nodes' DataType and their EngineeringUnits / EURange properties
(OPC 10000-8 §5.6.2) are read in batches. A node or namespace the PLC lacks makes that tag Bad_NodeIdUnknown; it
does not fail the session.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from asyncua import Client, ua
from asyncua.client.ua_client import UASocketState
from asyncua.crypto import security_policies

from plc_adapters.opcua_spec import OpcUaConnection, OpcUaTagSpec
from plc_adapters.opcua_values import variant_type_of_data_type
from plc_adapters.tag_map import Direction, Range

BATCH = 1000
"""Nodes per Read / TranslateBrowsePaths / CreateMonitoredItems request (within common PLC server limits)."""

_HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)


class SessionSetupError(Exception):
    """The session could not be used (missing password variable, security files ...); retried with backoff."""


@dataclass
class NodeInfo:
    """What the adapter learnt about one tag's node on this connect."""

    node_id: ua.NodeId | None
    """Resolved node id (``None``: the namespace URI is unknown to the PLC)."""
    status: int = 0
    """Bad status when the node cannot be used (BadNodeIdUnknown ...), else 0."""
    variant_type: ua.VariantType | None = None
    typed: bool = False
    """True once the DataType was read (``variant_type`` is then final)."""
    eu_range: Range | None = None
    unit_id: int | None = None


@dataclass
class SessionInfo:
    """Per-connect facts: node infos per tag and the EU / EURange mismatches found."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    mismatches: dict[str, str] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)


async def make_client(connection: OpcUaConnection) -> Client:
    """An asyncua client for ``connection`` (not connected). Its own reconnect supervisor is off; the adapter
    supervises the link and reconnects with its backoff."""
    client = Client(connection.endpoint, timeout=connection.timeout_s, watchdog_intervall=max(
        5.0, connection.session_timeout_s / 2), auto_reconnect=False)
    client.session_timeout = int(connection.session_timeout_s * 1000)
    client.name = client.description = "linetwin OPC UA adapter"
    client.application_uri = "urn:linetwin:plc-adapter"
    if connection.user is not None:
        client.set_user(connection.user)
        password = os.environ.get(connection.password_env or "")
        if connection.password_env and password is None:
            raise SessionSetupError(f"environment variable {connection.password_env} (password of user "
                                    f"'{connection.user}') is not set")
        if password is not None:
            client.set_password(password)
    if connection.security_policy != "None":
        if not (connection.certificate and connection.private_key):
            raise SessionSetupError(f"security policy {connection.security_policy} needs certificate and private_key")
        policy = getattr(security_policies, f"SecurityPolicy{connection.security_policy}")
        try:
            await client.set_security(policy, connection.certificate, connection.private_key,
                                      server_certificate=connection.server_certificate,
                                      mode=getattr(ua.MessageSecurityMode, connection.security_mode.value))
        except (OSError, ValueError) as exc:
            raise SessionSetupError(f"security set-up failed: {exc}") from exc
    elif connection.certificate and connection.private_key and connection.user is None:
        try:
            await client.load_client_certificate(connection.certificate)
            await client.load_private_key(connection.private_key)
        except (OSError, ValueError) as exc:
            raise SessionSetupError(f"client certificate: {exc}") from exc
    return client


async def _read(client: Client, reads: Sequence[ua.ReadValueId], timeout_s: float) -> list[ua.DataValue]:
    results: list[ua.DataValue] = []
    for start in range(0, len(reads), BATCH):
        params = ua.ReadParameters()
        params.NodesToRead = list(reads[start:start + BATCH])
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        results.extend(await asyncio.wait_for(client.uaclient.read(params), timeout_s))
    return results


async def read_values(client: Client, node_ids: Sequence[ua.NodeId], timeout_s: float) -> list[ua.DataValue]:
    """Value attribute of each node, with source and server timestamps, in batches."""
    return await _read(client, [ua.ReadValueId(NodeId=n, AttributeId=ua.AttributeIds.Value) for n in node_ids],
                       timeout_s)


async def resolve_nodes(client: Client, tags: Sequence[OpcUaTagSpec], timeout_s: float) -> SessionInfo:
    """Read the NamespaceArray and resolve each tag's namespace URI to its index on this session (one request)."""
    info = SessionInfo()
    ns_value = await _read(client, [ua.ReadValueId(NodeId=ua.NodeId(ua.ObjectIds.Server_NamespaceArray),
                                                   AttributeId=ua.AttributeIds.Value)], timeout_s)
    info.namespaces = list(ns_value[0].Value.Value or []) if ns_value[0].Value is not None else []
    index_of = {uri: i for i, uri in enumerate(info.namespaces)}
    for tag in tags:
        index = 0 if not tag.node.namespace_uri else index_of.get(tag.node.namespace_uri)
        if index is None:
            info.nodes[tag.name] = NodeInfo(None, ua.StatusCodes.BadNodeIdUnknown)
            continue
        info.nodes[tag.name] = NodeInfo(ua.NodeId.from_string(f"ns={index};{tag.node.identifier}"))
    return info


async def learn_details(client: Client, tags: Sequence[OpcUaTagSpec], info: SessionInfo, timeout_s: float) -> None:
    """Read the nodes' DataType and EngineeringUnits/EURange properties into ``info`` and note the mismatches with
    the config (batched; run after the subscription is up so data flows first)."""
    known = [t for t in tags if info.nodes[t.name].node_id is not None and not info.nodes[t.name].status]
    types = await _read(client, [ua.ReadValueId(NodeId=info.nodes[t.name].node_id,
                                                AttributeId=ua.AttributeIds.DataType) for t in known], timeout_s)
    for tag, type_dv in zip(known, types, strict=True):
        node = info.nodes[tag.name]
        if type_dv.StatusCode is None or type_dv.StatusCode.is_good():
            node.variant_type = variant_type_of_data_type(type_dv.Value.Value if type_dv.Value else None)
            node.typed = True
        elif type_dv.StatusCode.value in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid):
            node.status = type_dv.StatusCode.value
    known = [t for t in known if not info.nodes[t.name].status]
    await _read_eu_properties(client, known, info, timeout_s)
    for tag in known:
        text = _mismatch(tag, info.nodes[tag.name])
        if text:
            info.mismatches[tag.name] = text
        else:
            info.mismatches.pop(tag.name, None)


async def read_variant_type(client: Client, node_id: ua.NodeId, timeout_s: float) -> ua.VariantType | None:
    """The built-in VariantType of one node's DataType (``None`` when not a built-in type)."""
    dv = (await _read(client, [ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.DataType)], timeout_s))[0]
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return variant_type_of_data_type(dv.Value.Value if dv.Value else None)


async def _read_eu_properties(client: Client, tags: Sequence[OpcUaTagSpec], info: SessionInfo,
                              timeout_s: float) -> None:
    paths: list[ua.BrowsePath] = []
    for tag in tags:
        for prop in ("EngineeringUnits", "EURange"):
            element = ua.RelativePathElement(ReferenceTypeId=_HAS_PROPERTY, IsInverse=False, IncludeSubtypes=True,
                                             TargetName=ua.QualifiedName(prop, 0))
            paths.append(ua.BrowsePath(StartingNode=info.nodes[tag.name].node_id,
                                       RelativePath=ua.RelativePath(Elements=[element])))
    targets: list[ua.NodeId | None] = []
    for start in range(0, len(paths), BATCH):
        results = await asyncio.wait_for(
            client.uaclient.translate_browsepaths_to_nodeids(paths[start:start + BATCH]), timeout_s)
        for result in results:
            good = result.StatusCode.is_good() and result.Targets
            targets.append(result.Targets[0].TargetId if good else None)
    present = [(i, t) for i, t in enumerate(targets) if t is not None]
    values = await read_values(client, [t for _, t in present], timeout_s) if present else []
    by_index = {i: dv for (i, _), dv in zip(present, values, strict=True)}
    for k, tag in enumerate(tags):
        node = info.nodes[tag.name]
        units_dv, range_dv = by_index.get(2 * k), by_index.get(2 * k + 1)
        units = units_dv.Value.Value if units_dv is not None and units_dv.Value is not None else None
        eu_range = range_dv.Value.Value if range_dv is not None and range_dv.Value is not None else None
        if isinstance(units, ua.EUInformation):
            node.unit_id = int(units.UnitId)
        if isinstance(eu_range, ua.Range) and eu_range.Low is not None and eu_range.High is not None:
            node.eu_range = Range(float(eu_range.Low), float(eu_range.High))


def _mismatch(tag: OpcUaTagSpec, node: NodeInfo) -> str:
    """Why the PLC node's EngineeringUnits / EURange disagree with the config ("" when they agree or are absent)."""
    problems = []
    # a UnitId packs the UNECE code's characters (OPC 10000-8 §5.6.3): compare codes, not a table of units
    if node.unit_id is not None and node.unit_id != -1 and _code_of(node.unit_id) != tag.unit_code.upper():
        problems.append(f"EngineeringUnits UnitId {node.unit_id} ({_code_of(node.unit_id)}) on the PLC, "
                        f"'{tag.unit_code}' in the config")
    if node.eu_range is not None and (
            not _close(node.eu_range.low, tag.eu_range.low) or not _close(node.eu_range.high, tag.eu_range.high)):
        problems.append(f"EURange [{node.eu_range.low:g}, {node.eu_range.high:g}] on the PLC, "
                        f"[{tag.eu_range.low:g}, {tag.eu_range.high:g}] in the config")
    if tag.direction is Direction.COMMANDED and node.variant_type is None and node.typed:
        problems.append("the node's DataType is not a number type (writes will be refused)")
    return "; ".join(problems)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _code_of(unit_id: int) -> str:
    chars = []
    while unit_id > 0:
        chars.append(chr(unit_id & 0xFF))
        unit_id >>= 8
    text = "".join(reversed(chars))
    return text if text.isprintable() else "?"


async def close_client(client: Client, timeout_s: float) -> None:
    """Close the session politely within ``timeout_s``; a hung PLC gets its socket dropped instead."""
    session = getattr(client.uaclient, "session", None)
    publish = getattr(session, "_publish_task", None)  # stop asking for publishes first: no retry noise after this
    if publish is not None and not publish.done():
        publish.cancel()
    protocol = getattr(client.uaclient, "protocol", None)
    try:
        if protocol is not None and getattr(protocol, "state", None) == UASocketState.OPEN:
            await asyncio.wait_for(client.disconnect(), timeout_s)
    except Exception:  # TimeoutError included: a hung PLC never answers CloseSession
        pass
    finally:
        for name in ("_supervisor_task", "_stale_watchdog_task", "_renew_channel_task"):
            task = getattr(client, name, None)
            if task is not None and not task.done():
                task.cancel()
        try:
            client.disconnect_socket()
        except Exception:  # noqa: BLE001 - already closed
            pass
