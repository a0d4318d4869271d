"""Checks of a line config beyond the type of each key, used by :mod:`twin_server.config`.

What ``linetwin check`` accepts, ``linetwin serve`` and ``linetwin hil serve`` must start, so loading also checks:

* numbers: TOML integers too large for a float (``1e400`` written as digits) are refused like NaN and inf;
* host names and endpoints: a DNS name (RFC 1123: labels of letters, digits and ``-``, 253 characters at most) or an
  IP address; an endpoint ``opc.tcp://HOST:PORT/path`` with a port in 1..65535 (port 0 would make the OS pick one
  that no client knows) and no whitespace;
* one PLC shared by several units (same host, port and ``unit_id``): their registers may not overlap;
* numbers in ``[units.X.model]`` / ``[units.X.plant]``: finite as a float.

Building the models, HIL plants and control plans is not part of loading: :mod:`twin_server.line_build` does it
once, in ``check``, ``serve``, ``demo`` and ``hil serve``, and reports failures as config issues.

Values and exception texts that reach an error line are shortened (:func:`plc_adapters.config_issues.show`,
:func:`~plc_adapters.config_issues.brief`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from plc_adapters.config_issues import Described

if TYPE_CHECKING:
    from plc_adapters.config_issues import IssueCollector
    from plc_adapters.tag_map import TagSpec

MAX_HOST_CHARS = 253
"""Longest DNS name (RFC 1035 §2.3.4)."""
MAX_URI_CHARS = 1024
"""Longest endpoint URL or namespace URI accepted."""

_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_WHITESPACE_OR_CONTROL_RE = re.compile(r"[\s\x00-\x1f\x7f]")

def host_problem(host: str) -> str | None:
    """``None`` when ``host`` is an IP address or a DNS name; else what was expected."""
    expected = f"a host name (letters, digits, '-' and '.', at most {MAX_HOST_CHARS} characters) or an IP address"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_HOST_CHARS or not all(_LABEL_RE.match(label) for label in name.split(".")):
        return expected
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """``None`` when ``endpoint`` is a usable OPC UA endpoint URL; else what was expected."""
    expected = "an OPC UA endpoint URL like opc.tcp://0.0.0.0:4840/linetwin/"
    if len(endpoint) > MAX_URI_CHARS or _WHITESPACE_OR_CONTROL_RE.search(endpoint):
        return f"{expected}, without spaces, at most {MAX_URI_CHARS} characters"
    parsed = urlparse(endpoint)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "opc.tcp" or not parsed.hostname:
        return expected
    if port is None or not 1 <= port <= 65535:
        return f"{expected} with a port in 1..65535"
    if host_problem(parsed.hostname) is not None:
        return f"{expected} whose host is a host name or an IP address"
    return None


def namespace_problem(namespace: str) -> str | None:
    """``None`` when ``namespace`` is a non-empty URI without spaces of at most MAX_URI_CHARS characters."""
    if not namespace or len(namespace) > MAX_URI_CHARS or _WHITESPACE_OR_CONTROL_RE.search(namespace):
        return f"a namespace URI like urn:linetwin:LINE (no spaces, 1..{MAX_URI_CHARS} characters)"
    return None


def shared_plc_issues(c: IssueCollector, units: Sequence[tuple[str, str, int, int, Sequence[TagSpec]]]) -> None:
    """Units on one PLC (same host, port and unit_id) whose registers overlap.

    ``units``: (unit name, host, port, unit_id, tags) in file order. One issue per pair of units, on the later one.
    """
    for i, (name_b, host_b, port_b, uid_b, tags_b) in enumerate(units):
        for name_a, host_a, port_a, uid_a, tags_a in units[:i]:
            if (host_a.lower(), port_a, uid_a) != (host_b.lower(), port_b, uid_b):
                continue
            clash = _first_overlap(tags_a, tags_b)
            if clash is None:
                continue
            ta, tb = clash
            c.add(
                f"units.{name_b}.plc",
                Described(f"{host_b}:{port_b} unit_id {uid_b}, tag '{tb.name}' at {tb.table.value} "
                f"{tb.address}..{tb.end_address - 1}"),
                f"registers not used by unit '{name_a}' on the same PLC (its tag '{ta.name}' is at "
                f"{ta.table.value} {ta.address}..{ta.end_address - 1}), or another port or unit_id",
            )


def _first_overlap(tags_a: Sequence[TagSpec], tags_b: Sequence[TagSpec]) -> tuple[TagSpec, TagSpec] | None:
    for tb in tags_b:
        for ta in tags_a:
            if ta.table is tb.table and ta.address < tb.end_address and tb.address < ta.end_address:
                return ta, tb
    return None
