"""``[metrics]``: the Prometheus / health endpoint of a line (off by default).

Keys: ``enabled`` (bool, default false), ``host`` (default ``127.0.0.1``: loopback only; a monitoring stack on
another machine scrapes through a reverse proxy or an agent on this one), ``port`` (TCP port, default 9484).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plc_adapters.config_issues import IssueCollector
from twin_server.config_checks import host_problem

METRICS_KEYS = {"enabled", "host", "port"}
DEFAULT_METRICS_PORT = 9484


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Where the metrics/health endpoint listens, if at all."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_METRICS_PORT

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def parse_metrics(c: IssueCollector, data: Mapping[str, Any]) -> MetricsSettings:
    """Validate ``[metrics]`` of a parsed line config (absent: disabled)."""
    raw = data.get("metrics", {})
    if not isinstance(raw, Mapping):
        c.add("metrics", raw, "a table [metrics]")
        return MetricsSettings()
    c.unknown_keys(raw, "metrics", METRICS_KEYS)
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        c.add("metrics.enabled", enabled, "true or false")
        enabled = False
    host = c.string(raw, "host", "metrics", default="127.0.0.1", what="a host name or IP address")
    if isinstance(raw.get("host", ""), str) and (problem := host_problem(host)):
        c.add("metrics.host", host, problem)
    port = c.integer(raw, "port", "metrics", 1, 65535, default=DEFAULT_METRICS_PORT)
    return MetricsSettings(enabled=enabled, host=host, port=port)
