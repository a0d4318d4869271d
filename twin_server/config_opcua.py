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
``data_type`` (what the virtual PLC serves; the adapter reads the PLC's own DataType) — read by
:func:`plc_adapters.opcua_spec.parse_opcua_tag`, which the HIL bench's line reader uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from plc_adapters.config_issues import IssueCollector
from plc_adapters.opcua_spec import (
    SECURITY_POLICIES,
    AcquisitionMode,
    OpcUaConnection,
    OpcUaTagSpec,
    SecurityMode,
    check_unique_nodes,
    parse_opcua_tag,
)
from process_models.engineering_units import UNITS_BY_CODE
from twin_server.mirror_settings import TAG_KEYS as _MIRROR_TAG_KEYS

OPCUA_PLC_KEYS = {"protocol", "endpoint", "namespace_uri", "security_policy", "security_mode", "user", "password_env",
                  "certificate", "private_key", "server_certificate", "timeout_s", "publishing_interval_s",
                  "keep_alive_count", "queue_size", "max_items_per_subscription", "session_timeout_s", "mode"}


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


def parse_plc_unit(c: IssueCollector, unit: str, plc: Mapping[str, Any],
                   raw_unit: Mapping[str, Any]) -> tuple[OpcUaConnection | None, list[OpcUaTagSpec]]:
    """``[units.UNIT.plc]`` and ``[units.UNIT.tags]`` of an OPC UA unit: the connection (``None`` after reporting
    problems) and the tags free of problems (every problem reported to ``c``); this protocol's entry point, found by
    ``twin_server.config`` under the connection kind."""
    connection = parse_opcua_plc(c, plc, f"units.{unit}.plc")
    default_uri = plc.get("namespace_uri") if isinstance(plc.get("namespace_uri"), str) else None
    raw_tags = c.table(raw_unit, f"units.{unit}.tags")
    tags = [t for n, r in raw_tags.items()
            if (t := parse_opcua_tag(c, unit, n, r, default_uri, UNITS_BY_CODE, _MIRROR_TAG_KEYS)) is not None]
    check_unique_nodes(c, unit, tags)
    return connection, tags
