"""Config of units whose PLC speaks OPC UA: the ``[units.X.plc]`` table with ``protocol = "opcua"`` and the tags.

Keys of ``[units.X.plc]`` (besides ``protocol``)::

    endpoint = "opc.tcp://10.0.0.5:4840/"     # required
    namespace_uri = "http://vendor/plc"       # default namespace URI of the tags' node ids (optional)
    security_policy = "None"                  # None | Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss
    security_mode = "None"                    # None | Sign | SignAndEncrypt (None only with policy None)
    user = "twin"                             # UserName identity; the password comes from password_env
    password_env = "LINETWIN_PLC_PASSWORD"    # required with user
    certificate = "pki/client.der"            # client certificate + private_key: secure channel / X.509 identity
    private_key = "pki/client.pem"
    server_certificate = "pki/plc.der"        # the PLC's certificate (optional)
    timeout_s = 2.0                           # request timeout, s
    publishing_interval_s = 0.5               # default: the line's scan_period_s
    keep_alive_count = 1
    queue_size = 10
    max_items_per_subscription = 5000
    session_timeout_s = 30.0
    mode = "subscribe"                        # subscribe (falls back to polling when refused) | poll

Keys of a tag: ``direction``, ``unit``, ``eu_range``, ``description``, ``write_limits``, ``max_rate`` (as for
Modbus tags) and ``node_id`` (``nsu=URI;s=...``, or ``ns=N;s=...`` / ``s=...`` with a ``namespace_uri``),
``namespace_uri``, ``sampling_interval_s``, ``deadband``, ``deadband_kind`` (absolute | percent),
``data_type`` (what the virtual PLC serves; the adapter reads the PLC's own DataType).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from plc_adapters.opcua_spec import (
    OPCUA_DATA_TYPES,
    SECURITY_POLICIES,
    AcquisitionMode,
    DeadbandKind,
    OpcUaConnection,
    OpcUaTagSpec,
    SecurityMode,
    parse_node_address,
)
from plc_adapters.tag_map import Direction
from process_models.engineering_units import UNITS_BY_CODE
from twin_server.config_issues import NAME_RE, IssueCollector
from twin_server.mirror_settings import TAG_KEYS as _MIRROR_TAG_KEYS

OPCUA_PLC_KEYS = {"protocol", "endpoint", "namespace_uri", "security_policy", "security_mode", "user", "password_env",
                  "certificate", "private_key", "server_certificate", "timeout_s", "publishing_interval_s",
                  "keep_alive_count", "queue_size", "max_items_per_subscription", "session_timeout_s", "mode"}
OPCUA_TAG_KEYS = {"direction", "description", "unit", "eu_range", "node_id", "namespace_uri", "sampling_interval_s",
                  "deadband", "deadband_kind", "data_type", "write_limits", "max_rate"} | _MIRROR_TAG_KEYS


def parse_opcua_plc(c: IssueCollector, plc: Mapping[str, Any], prefix: str) -> OpcUaConnection | None:
    """``[units.X.plc]`` of an OPC UA PLC; ``None`` after reporting problems."""
    n_before = len(c.issues)
    c.unknown_keys(plc, prefix, OPCUA_PLC_KEYS)
    endpoint = c.string(plc, "endpoint", prefix, what="an OPC UA endpoint URL like opc.tcp://10.0.0.5:4840/")
    host, port, path = "", 0, "/"
    if endpoint:
        parsed = urlparse(endpoint)
        try:
            port = parsed.port or 4840
        except ValueError:
            port = -1
        if parsed.scheme != "opc.tcp" or not parsed.hostname or not 0 < port < 65536:
            c.add(f"{prefix}.endpoint", endpoint, "an OPC UA endpoint URL like opc.tcp://10.0.0.5:4840/")
        host, path = parsed.hostname or "", parsed.path or "/"
    if "namespace_uri" in plc:
        c.string(plc, "namespace_uri", prefix, what="a namespace URI")
    policy = c.choice(plc, "security_policy", prefix, list(SECURITY_POLICIES), default="None")
    mode = c.choice(plc, "security_mode", prefix, [m.value for m in SecurityMode], default="None")
    if policy is not None and mode is not None and (policy == "None") != (mode == "None"):
        c.add(f"{prefix}.security_mode", mode, "None with security_policy None, Sign or SignAndEncrypt otherwise")
    optional: dict[str, str | None] = {}
    for key in ("user", "password_env", "certificate", "private_key", "server_certificate"):
        optional[key] = c.string(plc, key, prefix, what="a string") if key in plc else None
    if optional["user"] is not None and optional["password_env"] is None:
        c.add(f"{prefix}.password_env", "nothing", "the name of the environment variable holding the password of "
              "user (passwords are never written in the config)")
    if (optional["certificate"] is None) != (optional["private_key"] is None):
        c.add(f"{prefix}.private_key", "one of certificate/private_key", "both certificate and private_key, or neither")
    if policy not in (None, "None") and optional["certificate"] is None:
        c.add(f"{prefix}.certificate", "nothing",
              f"a client certificate (and private_key) for security_policy {policy}")
    timeout_s = c.number(plc, "timeout_s", prefix, default=2.0, low=0.0, low_exclusive=True, high=600.0)
    publishing = None
    if "publishing_interval_s" in plc:
        publishing = c.number(plc, "publishing_interval_s", prefix, low=0.001, high=3600.0)
    keep_alive = c.integer(plc, "keep_alive_count", prefix, 1, 1000, default=1)
    queue_size = c.integer(plc, "queue_size", prefix, 1, 100000, default=10)
    per_sub = c.integer(plc, "max_items_per_subscription", prefix, 1, 1000000, default=5000)
    session_timeout = c.number(plc, "session_timeout_s", prefix, default=30.0, low=1.0, high=86400.0)
    acquisition = c.choice(plc, "mode", prefix, [m.value for m in AcquisitionMode], default="subscribe")
    if len(c.issues) > n_before or policy is None or mode is None or acquisition is None:
        return None
    return OpcUaConnection(
        host=host, port=port, path=path, security_policy=policy, security_mode=SecurityMode(mode),
        user=optional["user"], password_env=optional["password_env"], certificate=optional["certificate"],
        private_key=optional["private_key"], server_certificate=optional["server_certificate"], timeout_s=timeout_s,
        publishing_interval_s=publishing, keep_alive_count=keep_alive, queue_size=queue_size,
        max_items_per_subscription=per_sub, session_timeout_s=session_timeout, mode=AcquisitionMode(acquisition))


def parse_opcua_tag(c: IssueCollector, unit: str, name: str, raw: Any, default_uri: str | None) -> OpcUaTagSpec | None:
    """One ``[units.X.tags.NAME]`` of an OPC UA unit; ``None`` after reporting problems."""
    prefix = f"units.{unit}.tags.{name}"
    if not isinstance(raw, Mapping):
        c.add(prefix, raw, "a table describing the tag")
        return None
    if not NAME_RE.match(name):
        c.add(prefix, name, "a tag name of letters, digits and _ starting with a letter")
    modbus_only = {"table", "address", "byte_order", "word_order", "scale", "offset"} & set(raw)
    for key in sorted(modbus_only):
        c.add(f"{prefix}.{key}", "a Modbus register key on an OPC UA tag", "node_id (and the other OPC UA tag keys: "
              + ", ".join(sorted(OPCUA_TAG_KEYS)) + ")")
    c.unknown_keys({k: v for k, v in raw.items() if k not in modbus_only}, prefix, OPCUA_TAG_KEYS)
    n_before = len(c.issues)
    direction = c.choice(raw, "direction", prefix, [d.value for d in Direction])
    unit_code = c.string(raw, "unit", prefix, what="a UNECE Rec. 20 common code")
    if unit_code and unit_code not in UNITS_BY_CODE:
        c.add(f"{prefix}.unit", unit_code, "a UNECE Rec. 20 common code known to linetwin: "
              + ", ".join(sorted(UNITS_BY_CODE)))
    eu_range = c.range(raw, "eu_range", prefix, required=True)
    node_text = c.string(raw, "node_id", prefix, what='a node id like nsu=URI;s="DB_Unit"."Tag" or s=... with '
                         "namespace_uri")
    own_uri = c.string(raw, "namespace_uri", prefix, what="a namespace URI") if "namespace_uri" in raw else None
    node = None
    if node_text:
        # the unit's namespace_uri is only a default: an 'nsu=' id or the tag's own namespace_uri wins
        uri = own_uri if own_uri is not None or node_text.strip().startswith("nsu=") else default_uri
        try:
            node = parse_node_address(node_text, uri)
        except ValueError as exc:
            c.add(f"{prefix}.node_id", node_text, str(exc))
    sampling = None
    if "sampling_interval_s" in raw:
        sampling = c.number(raw, "sampling_interval_s", prefix, low=0.0, high=3600.0)
    deadband = None
    if "deadband" in raw:
        deadband = c.number(raw, "deadband", prefix, low=0.0)
    deadband_kind = c.choice(raw, "deadband_kind", prefix, [k.value for k in DeadbandKind], default="absolute")
    if deadband_kind == DeadbandKind.PERCENT.value and deadband is not None and deadband > 100:
        c.add(f"{prefix}.deadband", deadband, "a percentage in [0, 100] with deadband_kind percent")
    data_type = c.choice(raw, "data_type", prefix, list(OPCUA_DATA_TYPES), default="float32")
    write_limits = c.range(raw, "write_limits", prefix, required=False)
    max_rate = c.number(raw, "max_rate", prefix, low=0.0, low_exclusive=True) if "max_rate" in raw else None
    description = c.string(raw, "description", prefix, default="")
    if len(c.issues) > n_before or None in (direction, eu_range, node, deadband_kind, data_type):
        return None
    assert eu_range is not None and node is not None
    if direction == Direction.MEASURED.value and (write_limits is not None or max_rate is not None):
        c.add(f"{prefix}.write_limits", "write_limits/max_rate on a measured tag", "these only on commanded tags")
        return None
    if write_limits is not None and not (eu_range.low <= write_limits.low and write_limits.high <= eu_range.high):
        c.add(f"{prefix}.write_limits", [write_limits.low, write_limits.high],
              f"limits inside eu_range [{eu_range.low}, {eu_range.high}]")
        return None
    return OpcUaTagSpec(
        name=name, direction=Direction(direction), unit_code=unit_code, eu_range=eu_range, node=node,
        sampling_interval_s=sampling, deadband=deadband, deadband_kind=DeadbandKind(deadband_kind),
        data_type=str(data_type), write_limits=write_limits, max_rate=max_rate, description=description,
        unit_symbol=UNITS_BY_CODE[unit_code].symbol if unit_code in UNITS_BY_CODE else "")


def check_unique_nodes(c: IssueCollector, unit: str, tags: list[OpcUaTagSpec]) -> None:
    """Two tags of a unit must not name the same node."""
    seen: dict[tuple[str, str], str] = {}
    for t in tags:
        key = (t.node.namespace_uri, t.node.identifier)
        if key in seen:
            c.add(f"units.{unit}.tags.{t.name}.node_id", str(t.node), f"a node not already used by tag '{seen[key]}'")
        else:
            seen[key] = t.name


def parse_plc_unit(c: IssueCollector, unit: str, plc: Mapping[str, Any],
                   raw_unit: Mapping[str, Any]) -> tuple[OpcUaConnection | None, list[OpcUaTagSpec]]:
    """``[units.UNIT.plc]`` and ``[units.UNIT.tags]`` of an OPC UA unit: the connection (``None`` after reporting
    problems) and the tags free of problems (every problem reported to ``c``); this protocol's entry point, found by
    ``twin_server.config`` under the connection kind."""
    connection = parse_opcua_plc(c, plc, f"units.{unit}.plc")
    default_uri = plc.get("namespace_uri") if isinstance(plc.get("namespace_uri"), str) else None
    raw_tags = c.table(raw_unit, f"units.{unit}.tags")
    tags = [t for n, r in raw_tags.items() if (t := parse_opcua_tag(c, unit, n, r, default_uri)) is not None]
    check_unique_nodes(c, unit, tags)
    return connection, tags
