"""OPC UA connection and tag declarations: where a unit's PLC serves its OPC UA nodes.

A node is named by the *namespace URI* of its namespace and its identifier (``s="DB_Crystallizer"."Temperature"``,
``i=1001`` ...), never by the namespace index alone: a PLC may renumber its namespaces when its program or
firmware changes (OPC 10000-3 §8.2.2: the NamespaceArray index is only stable within a session), so the adapter
looks the index up in the server's NamespaceArray on every connect.

:func:`parse_opcua_tag` reads one OPC UA tag table of a line config (for the twin's loader and the HIL bench
alike), :func:`check_unique_nodes` the nodes of a unit's tags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import Enum
from typing import Any

from plc_adapters.config_issues import IssueCollector
from plc_adapters.tag import TagDescription
from plc_adapters.tag_config import TAG_DESCRIPTION_KEYS, EngineeringUnitLike, limits_fit, parse_tag_fields, tag_table

_IDENTIFIER_RE = re.compile(r"^(?:[isgb]=.+)$", re.DOTALL)
_NS_PREFIX_RE = re.compile(r"^ns=(\d+);(.*)$", re.DOTALL)
_NSU_PREFIX_RE = re.compile(r"^nsu=([^;]+);(.*)$", re.DOTALL)


class SecurityMode(str, Enum):
    """OPC UA MessageSecurityMode of the channel to the PLC."""

    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
"""Security policies accepted in the config (the policy URI fragments of OPC 10000-7)."""


class DeadbandKind(str, Enum):
    """How a tag's deadband is given: in engineering units, or in percent of the PLC node's EURange span."""

    ABSOLUTE = "absolute"
    PERCENT = "percent"


class AcquisitionMode(str, Enum):
    """How values are acquired: a subscription (monitored items), or polling with Read when refused."""

    SUBSCRIBE = "subscribe"
    POLL = "poll"


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A node by namespace URI and identifier (``s=...``, ``i=...``, ``g=...``, ``b=...``).

    ``namespace_uri`` is ``""`` for namespace 0 (the OPC UA namespace, index 0 on every server).
    """

    namespace_uri: str
    identifier: str

    def __str__(self) -> str:
        return f"nsu={self.namespace_uri};{self.identifier}" if self.namespace_uri else f"ns=0;{self.identifier}"


def parse_node_address(node_id: str, namespace_uri: str | None) -> NodeAddress:
    """Read a configured node id.

    Accepted: ``nsu=URI;s=...`` (the URI inside the id); ``ns=N;s=...`` or a bare ``s=...`` together with
    ``namespace_uri`` (the index ``N`` is then ignored: the URI decides); ``ns=0;i=...`` for standard nodes.

    Raises:
        ValueError: saying what was expected.
    """
    text = node_id.strip()
    match = _NSU_PREFIX_RE.match(text)
    if match:
        uri, identifier = match.group(1), match.group(2)
        if namespace_uri is not None and namespace_uri != uri:
            raise ValueError(f"the id names namespace '{uri}' but namespace_uri is '{namespace_uri}'")
    else:
        match = _NS_PREFIX_RE.match(text)
        index, identifier = (int(match.group(1)), match.group(2)) if match else (None, text)
        if namespace_uri is not None:
            uri = namespace_uri
        elif index == 0:
            uri = ""
        else:
            raise ValueError("a namespace URI (the 'nsu=URI;' form or a namespace_uri key): a namespace index "
                             "can change when the PLC restarts")
    if not _IDENTIFIER_RE.match(identifier):
        raise ValueError("an identifier 's=...', 'i=...', 'g=...' or 'b=...' after the namespace")
    if identifier.startswith("i="):
        try:
            int(identifier[2:])
        except ValueError:
            raise ValueError("a number after 'i='") from None
    return NodeAddress(uri, identifier)


@dataclass(frozen=True, slots=True)
class OpcUaConnection:
    """Where and how a unit's PLC is reached over OPC UA (client side).

    Attributes:
        host / port / path: the endpoint ``opc.tcp://host:port/path``.
        security_policy / security_mode: channel security (``None`` / ``None`` only on a trusted network).
        user: user name for a UserName identity token; the password is read from the environment variable
            ``password_env`` when connecting (never stored in the config).
        certificate / private_key: client application certificate and key files (PEM or DER) for signed or
            encrypted channels, also used as X.509 identity when no user is set.
        server_certificate: the PLC's certificate file to trust (optional).
        timeout_s: bound of each request (connect, read, write, create), seconds.
        publishing_interval_s: subscription publishing interval / poll period in seconds; ``None`` = the line's
            scan period.
        keep_alive_count: publishing intervals without data after which the PLC sends a keep-alive (1 lets
            a lost link be seen within two publishing intervals).
        queue_size: monitored-item queue size on the PLC (values kept between two publishes).
        max_items_per_subscription: monitored items per subscription (more tags → more subscriptions).
        session_timeout_s: requested session timeout, seconds.
        mode: ``subscribe`` (falls back to polling when the PLC refuses subscriptions) or ``poll``.
    """

    host: str
    port: int
    path: str = "/"
    security_policy: str = "None"
    security_mode: SecurityMode = SecurityMode.NONE
    user: str | None = None
    password_env: str | None = None
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    timeout_s: float = 2.0
    publishing_interval_s: float | None = None
    keep_alive_count: int = 1
    queue_size: int = 10
    max_items_per_subscription: int = 5000
    session_timeout_s: float = 30.0
    mode: AcquisitionMode = AcquisitionMode.SUBSCRIBE

    @property
    def endpoint(self) -> str:
        path = self.path if self.path.startswith("/") else "/" + self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{self.port}{path}"

    protocol = "opcua"
    """Connection kind: the key of the adapter and virtual-PLC registries."""

    register_space = None
    """OPC UA nodes are not a register space that several units' tag maps could overlap in."""


@dataclass(frozen=True, slots=True)
class OpcUaTagSpec(TagDescription):
    """One tag of a unit whose PLC speaks OPC UA: the neutral description plus its node spec.

    The neutral fields (name, direction, unit_code, eu_range, and keyword-only write_limits, max_rate,
    description) are :class:`~plc_adapters.tag.TagDescription`'s.

    Attributes:
        node: the PLC node (namespace URI + identifier).
        sampling_interval_s: how often the PLC samples the node for the subscription, seconds (``None`` = the
            publishing interval).
        deadband: smallest change reported, ``None`` = every change. With ``deadband_kind`` percent, in percent
            of the PLC node's EURange span (or the configured ``eu_range`` when the node has none).
        data_type: the node's data type as the *virtual* PLC creates it (``float32`` = S7 Real); the adapter
            reads the real DataType from the PLC and converts writes to it.
    """

    node: NodeAddress
    sampling_interval_s: float | None = None
    deadband: float | None = None
    deadband_kind: DeadbandKind = DeadbandKind.ABSOLUTE
    data_type: str = "float32"

    @property
    def address_text(self) -> str:
        return f"node {self.node}"


OPCUA_DATA_TYPES = ("float32", "float64", "int16", "uint16", "int32", "uint32", "bool")
"""Node data types the virtual OPC UA PLC can serve (``float32`` = Float, ``float64`` = Double ...)."""

OPCUA_TAG_KEYS = TAG_DESCRIPTION_KEYS | {"node_id", "namespace_uri", "sampling_interval_s", "deadband",
                                        "deadband_kind", "data_type"}
"""The keys of an OPC UA tag table that :func:`parse_opcua_tag` reads."""
MODBUS_ONLY_KEYS = ("address", "byte_order", "offset", "scale", "table", "word_order")
"""Modbus register keys, named as such when found on an OPC UA tag."""


def parse_opcua_tag(c: IssueCollector, unit: str, name: str, raw: Any, default_uri: str | None,
                    units: Mapping[str, EngineeringUnitLike], other_keys: Set[str] | None = frozenset(),
                    ) -> OpcUaTagSpec | None:
    """One ``[units.UNIT.tags.NAME]`` of an OPC UA unit; ``None`` after reporting problems to ``c``.

    ``default_uri``: the unit's ``namespace_uri``; ``units``: the engineering units by UNECE code; ``other_keys``:
    keys of the table other layers read, or ``None`` not to check for unknown keys."""
    prefix = f"units.{unit}.tags.{name}"
    if isinstance(raw, Mapping):
        for key in sorted(set(MODBUS_ONLY_KEYS) & set(raw)):
            c.add(f"{prefix}.{key}", "a Modbus register key on an OPC UA tag",
                  "node_id (and the other OPC UA tag keys: " + ", ".join(sorted(OPCUA_TAG_KEYS)) + ")")
        raw = {k: v for k, v in raw.items() if k not in MODBUS_ONLY_KEYS}
    table_raw = tag_table(c, unit, name, raw, None if other_keys is None else OPCUA_TAG_KEYS | other_keys)
    if table_raw is None:
        return None
    n_before = len(c.issues)
    fields = parse_tag_fields(c, prefix, name, table_raw, units)
    node_text = c.string(table_raw, "node_id", prefix, what='a node id like nsu=URI;s="DB_Unit"."Tag" or s=... with '
                         "namespace_uri")
    own_uri = c.string(table_raw, "namespace_uri", prefix, what="a namespace URI") if "namespace_uri" in table_raw \
        else None
    node = None
    if node_text:
        # the unit's namespace_uri is only a default: an 'nsu=' id or the tag's own namespace_uri wins
        uri = own_uri if own_uri is not None or node_text.strip().startswith("nsu=") else default_uri
        try:
            node = parse_node_address(node_text, uri)
        except ValueError as exc:
            c.add(f"{prefix}.node_id", node_text, str(exc))
    sampling = None
    if "sampling_interval_s" in table_raw:
        sampling = c.number(table_raw, "sampling_interval_s", prefix, low=0.0, high=3600.0)
    deadband = c.number(table_raw, "deadband", prefix, low=0.0) if "deadband" in table_raw else None
    deadband_kind = c.choice(table_raw, "deadband_kind", prefix, [k.value for k in DeadbandKind], default="absolute")
    if deadband_kind == DeadbandKind.PERCENT.value and deadband is not None and deadband > 100:
        c.add(f"{prefix}.deadband", deadband, "a percentage in [0, 100] with deadband_kind percent")
    data_type = c.choice(table_raw, "data_type", prefix, list(OPCUA_DATA_TYPES), default="float32")
    if len(c.issues) > n_before or fields is None or node is None or deadband_kind is None or data_type is None:
        return None
    if not limits_fit(c, prefix, fields):
        return None
    return OpcUaTagSpec(**fields.as_kwargs(), node=node, sampling_interval_s=sampling, deadband=deadband,
                        deadband_kind=DeadbandKind(deadband_kind), data_type=str(data_type))


def check_unique_nodes(c: IssueCollector, unit: str, tags: list[OpcUaTagSpec]) -> None:
    """Two tags of a unit must not name the same node."""
    seen: dict[tuple[str, str], str] = {}
    for t in tags:
        key = (t.node.namespace_uri, t.node.identifier)
        if key in seen:
            c.add(f"units.{unit}.tags.{t.name}.node_id", str(t.node), f"a node not already used by tag '{seen[key]}'")
        else:
            seen[key] = t.name
