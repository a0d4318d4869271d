"""OPC UA connection and tag declarations: where a unit's PLC serves its OPC UA nodes.

A node is named by the *namespace URI* of its namespace and its identifier (``s="DB_Crystallizer"."Temperature"``,
``i=1001`` ...), never by the namespace index alone: a PLC may renumber its namespaces when its program or
firmware changes (OPC 10000-3 §8.2.2: the NamespaceArray index is only stable within a session), so the adapter
looks the index up in the server's NamespaceArray on every connect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from plc_adapters.tag import TagDescription

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
