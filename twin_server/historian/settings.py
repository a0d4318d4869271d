"""The historian's configuration: ``[historian]`` of the line config, and per-tag ``historize`` / ``deadband``.

Example::

    [historian]
    backend = "sqlite"            # or "influxdb"
    retention_days = 30           # SQLite: samples older than this are deleted (0 = keep forever)
    flush_interval_s = 0.5        # at most this much is lost by a kill -9 (one batch)
    loss_alarm_clear_s = 60       # the data-loss alarm clears after this long without a lost sample
    loss_alarm_severity = 800

    # InfluxDB 1.x (v1 /write and /query endpoints)
    backend = "influxdb"
    url = "http://127.0.0.1:8086"
    database = "linetwin"
    username_env = "LINETWIN_INFLUX_USER"      # credentials come from the environment, never from the file
    password_env = "LINETWIN_INFLUX_PASSWORD"

    # InfluxDB 2.x (write API, token from the environment)
    api = "v2"
    org = "plant"
    bucket = "linetwin"
    token_env = "LINETWIN_INFLUX_TOKEN"

    [units.tank.tags.level]
    historize = true              # default
    deadband = 0.05               # engineering units; 0 (default) keeps every sample the mirror publishes
                                  # (every change of value or status: report by exception, twin_server.runtime)

The parser reports problems through the config loader's collector (``FILE: KEY: got …; expected …``) and
does not import :mod:`twin_server.config` (which imports this module).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from plc_adapters.config_issues import IssueCollector

BACKENDS = ("sqlite", "influxdb")
INFLUX_APIS = ("v1", "v2")

HISTORIAN_KEYS = {"backend", "data_dir", "retention_days", "flush_interval_s", "batch_size", "queue_size",
                  "max_values_per_read", "url", "api", "database", "org", "bucket", "username_env", "password_env",
                  "token_env", "forward_buffer_samples", "timeout_s", "loss_alarm_clear_s", "loss_alarm_severity"}
TAG_KEYS = {"historize", "deadband"}


@dataclass(frozen=True, slots=True)
class TagHistory:
    """Whether a tag is historized and its absolute deadband (engineering units; 0 keeps every sample)."""

    historize: bool = True
    deadband: float = 0.0


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """Where InfluxDB is and which environment variables hold its credentials (names only, never values)."""

    url: str = "http://127.0.0.1:8086"
    api: str = "v1"
    database: str = "linetwin"
    org: str = ""
    bucket: str = ""
    username_env: str = ""
    password_env: str = ""
    token_env: str = ""
    timeout_s: float = 5.0

    def username(self) -> str:
        return os.environ.get(self.username_env, "") if self.username_env else ""

    def password(self) -> str:
        return os.environ.get(self.password_env, "") if self.password_env else ""

    def token(self) -> str:
        return os.environ.get(self.token_env, "") if self.token_env else ""


@dataclass(frozen=True, slots=True)
class HistorianSettings:
    """``[historian]``: backend, data directory, batching, retention, InfluxDB connection, per-tag settings."""

    backend: str = "sqlite"
    data_dir: str | None = None
    """Relative paths are relative to the config file. ``None``: the CLI puts it beside the config."""
    retention_days: float = 0.0
    flush_interval_s: float = 0.5
    batch_size: int = 20_000
    queue_size: int = 1_000_000
    max_values_per_read: int = 100_000
    forward_buffer_samples: int = 10_000_000
    loss_alarm_clear_s: float = 60.0
    """The ``historian_data_loss`` alarm clears after this long without a lost sample."""
    loss_alarm_severity: int = 800
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    tags: Mapping[tuple[str, str], TagHistory] = field(default_factory=dict)
    """Per ``(unit, tag)``; a tag missing here is historized with no deadband."""

    def tag(self, unit: str, tag: str) -> TagHistory:
        return self.tags.get((unit, tag), _DEFAULT_TAG)

    def resolved_data_dir(self, line_root: Path) -> Path:
        """The historian's folder: ``data_dir`` relative to the line's data dir ``line_root`` (absolute as given),
        else ``line_root/history`` (:mod:`twin_server.data_dir`)."""
        from twin_server.data_dir import layout

        return layout(line_root, history=self.data_dir).history


_DEFAULT_TAG = TagHistory()


def _num(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str, default: float, low: float,
         high: float = math.inf, low_exclusive: bool = False) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < low or value > high or (low_exclusive and value == low):
        bound = f"> {low:g}" if low_exclusive else f">= {low:g}"
        c.add(f"{prefix}.{key}", value, f"a number {bound}" + (f" and <= {high:g}" if math.isfinite(high) else ""))
        return default
    return float(value)


def _int(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        c.add(f"{prefix}.{key}", value, f"an integer in [{low}, {high}]")
        return default
    return value


def _str(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str, default: str, what: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        c.add(f"{prefix}.{key}", value, what)
        return default
    return value


def _env_name(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str, required: bool) -> str:
    """The NAME of an environment variable holding a credential; it must be set when the backend needs it."""
    value = _str(c, raw, key, prefix, "", "the name of an environment variable (credentials never in the file)")
    if value and not value.replace("_", "").isalnum():
        c.add(f"{prefix}.{key}", value, "an environment variable name of letters, digits and _")
        return ""
    if required and not value:
        c.add(f"{prefix}.{key}", "nothing", "the name of an environment variable holding the credential (required)")
    elif value and value not in os.environ:
        c.add(f"{prefix}.{key}", f"{value!r} (not set in the environment)",
              f"environment variable {value} set to the credential")
    return value


def parse_tag_history(c: IssueCollector, unit: str, tag: str, raw: Mapping[str, Any]) -> TagHistory | None:
    """``historize`` / ``deadband`` of one tag table; ``None`` when both are absent (defaults apply)."""
    if "historize" not in raw and "deadband" not in raw:
        return None
    prefix = f"units.{unit}.tags.{tag}"
    historize = raw.get("historize", True)
    if not isinstance(historize, bool):
        c.add(f"{prefix}.historize", historize, "true or false")
        historize = True
    deadband = _num(c, raw, "deadband", prefix, 0.0, 0.0)
    return TagHistory(historize, deadband)


def parse_historian(c: IssueCollector, data: Mapping[str, Any]) -> HistorianSettings:
    """Validate ``[historian]`` and every tag's ``historize`` / ``deadband`` of a parsed line config."""
    tags: dict[tuple[str, str], TagHistory] = {}
    units = data.get("units")
    if isinstance(units, Mapping):
        for unit, unit_raw in units.items():
            tag_tables = unit_raw.get("tags") if isinstance(unit_raw, Mapping) else None
            if not isinstance(tag_tables, Mapping):
                continue
            for tag, tag_raw in tag_tables.items():
                if isinstance(tag_raw, Mapping) and (th := parse_tag_history(c, unit, tag, tag_raw)) is not None:
                    tags[(unit, tag)] = th
    raw = data.get("historian", {})
    if not isinstance(raw, Mapping):
        c.add("historian", raw, "a table [historian]")
        return HistorianSettings(tags=tags)
    p = "historian"
    c.unknown_keys(raw, p, HISTORIAN_KEYS)
    backend = raw.get("backend", "sqlite")
    if backend not in BACKENDS:
        c.add(f"{p}.backend", backend, "one of " + ", ".join(BACKENDS))
        backend = "sqlite"
    data_dir = raw.get("data_dir")
    if data_dir is not None and (not isinstance(data_dir, str) or not data_dir):
        c.add(f"{p}.data_dir", data_dir, "a directory path")
        data_dir = None
    settings = HistorianSettings(
        backend=backend, data_dir=data_dir,
        retention_days=_num(c, raw, "retention_days", p, 0.0, 0.0),
        flush_interval_s=_num(c, raw, "flush_interval_s", p, 0.5, 0.01, 1.0),
        batch_size=_int(c, raw, "batch_size", p, 20_000, 1, 1_000_000),
        queue_size=_int(c, raw, "queue_size", p, 1_000_000, 1_000, 100_000_000),
        max_values_per_read=_int(c, raw, "max_values_per_read", p, 100_000, 100, 10_000_000),
        forward_buffer_samples=_int(c, raw, "forward_buffer_samples", p, 10_000_000, 100, 1_000_000_000),
        loss_alarm_clear_s=_num(c, raw, "loss_alarm_clear_s", p, 60.0, 0.1, 86_400.0),
        loss_alarm_severity=_int(c, raw, "loss_alarm_severity", p, 800, 1, 1000),
        tags=tags,
    )
    influx_keys = {"url", "api", "database", "org", "bucket", "username_env", "password_env", "token_env"}
    if backend != "influxdb":
        for k in sorted(influx_keys & set(raw)):
            c.add(f"{p}.{k}", f"{k} with backend {backend!r}", "InfluxDB keys only with backend = \"influxdb\"")
        return settings
    url = _str(c, raw, "url", p, "http://127.0.0.1:8086", "an http(s) URL")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        c.add(f"{p}.url", url, "an http(s) URL like http://127.0.0.1:8086")
    api = raw.get("api", "v1")
    if api not in INFLUX_APIS:
        c.add(f"{p}.api", api, "one of v1 (InfluxDB 1.x, /write), v2 (InfluxDB 2.x write API)")
        api = "v1"
    if api == "v1":
        for k in ("org", "bucket", "token_env"):
            if k in raw:
                c.add(f"{p}.{k}", f"{k} with api v1", "org/bucket/token_env only with api = \"v2\"")
        database = _str(c, raw, "database", p, "linetwin", "a database name")
        if not database:
            c.add(f"{p}.database", database, "a database name")
        user_env = _env_name(c, raw, "username_env", p, required=False)
        password_env = _env_name(c, raw, "password_env", p, required=bool(user_env))
        influx = InfluxSettings(url=url, api=api, database=database, username_env=user_env, password_env=password_env,
                                timeout_s=_num(c, raw, "timeout_s", p, 5.0, 0.0, 600.0, low_exclusive=True))
    else:
        for k in ("database", "username_env", "password_env"):
            if k in raw:
                c.add(f"{p}.{k}", f"{k} with api v2", "database/username_env/password_env only with api = \"v1\"")
        org = _str(c, raw, "org", p, "", "an organisation name")
        bucket = _str(c, raw, "bucket", p, "", "a bucket name")
        if not org:
            c.add(f"{p}.org", "nothing", "an organisation name (required with api v2)")
        if not bucket:
            c.add(f"{p}.bucket", "nothing", "a bucket name (required with api v2)")
        token_env = _env_name(c, raw, "token_env", p, required=True)
        influx = InfluxSettings(url=url, api=api, org=org, bucket=bucket, token_env=token_env,
                                timeout_s=_num(c, raw, "timeout_s", p, 5.0, 0.0, 600.0, low_exclusive=True))
    return replace(settings, influx=influx)
