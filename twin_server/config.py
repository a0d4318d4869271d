"""Line configuration: one TOML file describes a line (server, units, PLC connections, tag maps).

Loading parses and validates every key up front and reports every problem at once, each naming the file, the key,
what was found and what was expected (:mod:`twin_server.config_issues`). Loading builds nothing: the models, HIL
plants and control plans a config names are built once, by ``check``, ``serve``, ``demo`` and ``hil serve``
(:mod:`twin_server.line_build`), which report build failures as config issues too. The server never starts
half-configured.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from plc_adapters.opcua_spec import OpcUaConnection, OpcUaTagSpec
from plc_adapters.tag_map import (
    ByteOrder,
    DataType,
    Direction,
    ModbusConnection,
    RegisterTable,
    TagSpec,
    WordOrder,
)
from process_models.engineering_units import UNITS_BY_CODE
from process_models.registry import controlled_kinds, unit_kinds
from twin_server.alarms.alarm_config import UnitAlarmConfig, parse_unit_alarms
from twin_server.config_checks import (
    brief,
    endpoint_problem,
    host_problem,
    is_finite_number,
    namespace_problem,
    shared_plc_issues,
)
from twin_server.config_issues import NAME_RE, ConfigError, ConfigIssue, IssueCollector
from twin_server.historian.settings import TAG_KEYS as _HISTORY_TAG_KEYS
from twin_server.historian.settings import HistorianSettings, parse_historian
from twin_server.security.settings import SecuritySettings, parse_security

__all__ = ["ConfigError", "ConfigIssue", "LineConfig", "ServerConfig", "UnitConfig", "load_line_config",
           "parse_line_config"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """OPC UA endpoint (``opc.tcp://host:port/path``) and the namespace URI of the line's nodes."""

    endpoint: str
    namespace: str

    @property
    def host(self) -> str:
        return urlparse(self.endpoint).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlparse(self.endpoint).port or 4840


@dataclass(frozen=True, slots=True)
class UnitConfig:
    """One process unit: its kind, model parameters, PLC connection and tag map."""

    name: str
    kind: str
    description: str
    model: Mapping[str, Any]
    plant: Mapping[str, Any]
    connection: ModbusConnection | OpcUaConnection
    tags: tuple[TagSpec | OpcUaTagSpec, ...]
    control: Mapping[str, Any] = field(default_factory=dict)
    """``[units.<unit>.control]``: estimator/NMPC/supervisor options (validated per kind); empty = no control loop."""
    alarms: UnitAlarmConfig = field(default_factory=UnitAlarmConfig)
    """Limit alarms per tag and the unit's alarm options (:mod:`twin_server.alarms.alarm_config`)."""
    surrogate: Mapping[str, Any] = field(default_factory=dict)
    """``[units.<unit>.surrogate]``: a surrogate run beside the physics model (docs/surrogates.md); empty = none."""

    def tag(self, name: str) -> TagSpec | OpcUaTagSpec:
        for t in self.tags:
            if t.name == name:
                return t
        raise KeyError(f"unit '{self.name}' has no tag '{name}'")


@dataclass(frozen=True, slots=True)
class LineConfig:
    """A whole line, validated. ``scan_period_s`` is the PLC polling period in seconds."""

    name: str
    description: str
    scan_period_s: float
    server: ServerConfig
    units: tuple[UnitConfig, ...]
    source: str = "<memory>"
    extra: Mapping[str, Any] = field(default_factory=dict)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    """``[security]``: endpoints, anonymous access, data dir (users, PKI, audit store); see docs/security.md."""
    historian: HistorianSettings = field(default_factory=HistorianSettings)
    """``[historian]`` and per-tag ``historize`` / ``deadband`` (see :mod:`twin_server.historian.settings`)."""

    def unit(self, name: str) -> UnitConfig:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(f"line '{self.name}' has no unit '{name}'")


_TAG_KEYS = {"direction", "description", "unit", "eu_range", "table", "address", "data_type", "byte_order",
             "word_order", "scale", "offset", "write_limits", "max_rate", "alarms"} | _HISTORY_TAG_KEYS
_UNIT_KEYS = {"kind", "description", "model", "plant", "plc", "tags", "control", "alarms", "surrogate"}
_PLC_KEYS = {"protocol", "host", "port", "unit_id", "timeout_s"}


def _parse_tag(c: IssueCollector, unit: str, name: str, raw: Any) -> TagSpec | None:
    prefix = f"units.{unit}.tags.{name}"
    if not isinstance(raw, Mapping):
        c.add(prefix, raw, "a table describing the tag")
        return None
    if not NAME_RE.match(name):
        c.add(prefix, name, "a tag name of letters, digits and _ starting with a letter")
    c.unknown_keys(raw, prefix, _TAG_KEYS)
    n_before = len(c.issues)
    direction = c.choice(raw, "direction", prefix, [d.value for d in Direction])
    unit_code = c.string(raw, "unit", prefix, what="a UNECE Rec. 20 common code")
    if isinstance(raw.get("unit"), str) and unit_code not in UNITS_BY_CODE:
        c.add(f"{prefix}.unit", unit_code, "a UNECE Rec. 20 common code known to linetwin: "
              + ", ".join(sorted(UNITS_BY_CODE)))
    eu_range = c.range(raw, "eu_range", prefix, required=True)
    table = c.choice(raw, "table", prefix, [t.value for t in RegisterTable])
    data_type = c.choice(raw, "data_type", prefix, [d.value for d in DataType])
    address = c.integer(raw, "address", prefix, 0, 65535)
    byte_order = c.choice(raw, "byte_order", prefix, [b.value for b in ByteOrder], default="big")
    word_order = c.choice(raw, "word_order", prefix, [w.value for w in WordOrder], default="big")
    scale = c.number(raw, "scale", prefix, default=1.0)
    if scale == 0:
        c.add(f"{prefix}.scale", 0, "a non-zero number")
    offset = c.number(raw, "offset", prefix, default=0.0)
    write_limits = c.range(raw, "write_limits", prefix, required=False)
    max_rate = None
    if "max_rate" in raw:
        max_rate = c.number(raw, "max_rate", prefix, low=0.0, low_exclusive=True)
    description = c.string(raw, "description", prefix, default="")
    if len(c.issues) > n_before or None in (direction, table, data_type, eu_range):
        return None
    spec = TagSpec(
        name=name, direction=Direction(direction), unit_code=unit_code, eu_range=eu_range,  # type: ignore[arg-type]
        table=RegisterTable(table), address=address, data_type=DataType(data_type),
        byte_order=ByteOrder(byte_order), word_order=WordOrder(word_order), scale=scale, offset=offset,
        write_limits=write_limits, max_rate=max_rate, description=description,
    )
    ok = True
    if spec.end_address > 65536:
        c.add(f"{prefix}.address", address, f"an address leaving room for {spec.register_count} registers (<= 65535)")
        ok = False
    if spec.table.is_bit_table != (spec.data_type is DataType.BOOL):
        c.add(f"{prefix}.data_type", spec.data_type.value,
              "bool for coil/discrete tables, a numeric type for holding/input registers")
        ok = False
    if spec.direction is Direction.COMMANDED and not spec.table.writable:
        c.add(f"{prefix}.table", spec.table.value, "holding or coil for a commanded tag (input/discrete are read-only)")
        ok = False
    if spec.direction is Direction.MEASURED and (write_limits is not None or max_rate is not None):
        c.add(f"{prefix}.write_limits", "write_limits/max_rate on a measured tag", "these only on commanded tags")
        ok = False
    if write_limits is not None and not (eu_range.low <= write_limits.low and write_limits.high <= eu_range.high):
        c.add(f"{prefix}.write_limits", [write_limits.low, write_limits.high],
              f"limits inside eu_range [{eu_range.low}, {eu_range.high}]")
        ok = False
    return spec if ok else None


def _check_overlaps(c: IssueCollector, unit: str, tags: list[TagSpec]) -> None:
    by_table: dict[RegisterTable, list[TagSpec]] = {}
    for t in tags:
        by_table.setdefault(t.table, []).append(t)
    for table, items in by_table.items():
        items.sort(key=lambda t: t.address)
        for a, b in zip(items, items[1:], strict=False):
            if b.address < a.end_address:
                c.add(f"units.{unit}.tags.{b.name}.address", b.address,
                      f"no overlap with tag '{a.name}' ({table.value} {a.address}..{a.end_address - 1})")


def _check_control(c: IssueCollector, kind: str, prefix: str, control: Mapping[str, Any], tags: set[str]) -> None:
    """Validate a unit's control table with its kind's option parser (imported only when a line has one)."""
    if kind not in controlled_kinds():
        c.add(prefix, f"a control table on a {kind} unit",
              "control only on units of kind " + ", ".join(controlled_kinds()))
        return
    from controllers.plan_registry import control_plan_for_kind

    try:
        _, issues = control_plan_for_kind(kind).parse_options(control, prefix, tags)
    except Exception as exc:  # noqa: BLE001 - a kind's option parser must not crash `check`
        issues = [(prefix, control, f"options the {kind} control plan accepts ({brief(exc)})")]
    c.extend(issues)


def _model_files_relative_to_config(c: IssueCollector, prefix: str, model: Mapping[str, Any],
                                    config_dir: Path | None) -> dict[str, Any]:
    """The model table with its ``case`` file (a path: ends in ``.toml`` or has a ``/``) made absolute, relative to
    the config's folder (never to the source tree or the working directory of a loaded file); a missing file is an
    issue naming the key and the path tried. A short name (no ``.toml``) names a shipped case and is kept."""
    out = dict(model)
    case = out.get("case")
    if not isinstance(case, str) or not (case.endswith(".toml") or "/" in case):
        return out
    path = Path(case).expanduser()
    if not path.is_absolute():
        path = (config_dir if config_dir is not None else Path.cwd()) / path
    if not path.is_file():
        c.add(f"{prefix}.model.case", case, f"a case file, relative to the line config; tried {path}")
        return out
    out["case"] = str(path.resolve())
    return out


def _parse_unit(c: IssueCollector, name: str, raw: Any, buildable: list[UnitConfig],
                config_dir: Path | None = None) -> UnitConfig | None:
    """One ``[units.NAME]``; ``None`` after reporting problems that leave no usable unit. A unit whose model, plant,
    control and surrogate tables are free of problems is also appended to ``buildable`` (``check`` builds it even
    when other keys of the file are wrong, to report every problem at once)."""
    prefix = f"units.{name}"
    if not isinstance(raw, Mapping):
        c.add(prefix, raw, "a table describing the unit")
        return None
    if not NAME_RE.match(name):
        c.add(prefix, name, "a unit name of letters, digits and _ starting with a letter")
    c.unknown_keys(raw, prefix, _UNIT_KEYS)
    kind = c.choice(raw, "kind", prefix, list(unit_kinds()))
    description = c.string(raw, "description", prefix, default="")
    model = c.table(raw, f"{prefix}.model", required=False)
    plant = c.table(raw, f"{prefix}.plant", required=False)
    n_before = len(c.issues)
    for section_name, section in (("model", model), ("plant", plant)):
        for k, v in section.items():
            if not isinstance(v, int | float | str | bool | list):
                c.add(f"{prefix}.{section_name}.{k}", v, "a number, string, boolean or list")
            elif isinstance(v, int | float) and not isinstance(v, bool) and not is_finite_number(v):
                c.add(f"{prefix}.{section_name}.{k}", v, "a finite number (a float holds up to about 1.8e308)")
    model = _model_files_relative_to_config(c, prefix, model, config_dir)
    parameters_typed = len(c.issues) == n_before
    plc = c.table(raw, f"{prefix}.plc")
    plc_prefix = f"{prefix}.plc"
    protocol = c.choice(plc, "protocol", plc_prefix, ["modbus", "opcua"], default="modbus") if plc else None
    if protocol == "opcua":
        from twin_server.config_opcua import check_unique_nodes, parse_opcua_plc, parse_opcua_tag

        connection: ModbusConnection | OpcUaConnection | None = parse_opcua_plc(c, plc, plc_prefix)
        default_uri = plc.get("namespace_uri") if isinstance(plc.get("namespace_uri"), str) else None
        raw_tags = c.table(raw, f"{prefix}.tags")
        ua_tags = [t for n, r in raw_tags.items() if (t := parse_opcua_tag(c, name, n, r, default_uri)) is not None]
        check_unique_nodes(c, name, ua_tags)
        tags: list[TagSpec | OpcUaTagSpec] = list(ua_tags)
    else:
        c.unknown_keys(plc, plc_prefix, _PLC_KEYS)
        host = c.string(plc, "host", plc_prefix, what="a host name or IP address") if plc else ""
        if isinstance(plc.get("host"), str) and (problem := host_problem(host)):
            c.add(f"{plc_prefix}.host", host, problem)
        port = c.integer(plc, "port", plc_prefix, 1, 65535) if plc else 0
        unit_id = c.integer(plc, "unit_id", plc_prefix, 0, 255, default=1) if plc else 1
        timeout_s = c.number(plc, "timeout_s", plc_prefix, default=1.0, low=0.0, high=600.0, low_exclusive=True) \
            if plc else 1.0
        connection = ModbusConnection(host=host, port=port, unit_id=unit_id, timeout_s=timeout_s)
        raw_tags = c.table(raw, f"{prefix}.tags")
        modbus_tags: list[TagSpec] = []
        for tag_name, tag_raw in raw_tags.items():
            spec = _parse_tag(c, name, tag_name, tag_raw)
            if spec is not None:
                modbus_tags.append(spec)
        _check_overlaps(c, name, modbus_tags)
        tags = list(modbus_tags)
    if raw_tags and not tags and not c.issues:
        c.add(f"{prefix}.tags", "no usable tags", "at least one tag")
    alarms = parse_unit_alarms(c, raw, prefix, tags)
    control = c.table(raw, f"{prefix}.control", required=False)
    n_before = len(c.issues)
    if control and kind is not None:
        _check_control(c, kind, f"{prefix}.control", control, {t.name for t in tags})
    surrogate = c.table(raw, f"{prefix}.surrogate", required=False)
    if surrogate:
        from process_models.surrogates.twin_options import parse_surrogate_options

        c.extend(parse_surrogate_options(surrogate, f"{prefix}.surrogate")[1])
        if not control:
            c.add(f"{prefix}.surrogate", "a surrogate on a unit without [control]",
                  "a [units.<unit>.control] table (its state estimator supplies the live states)")
    if kind is None or protocol is None or connection is None:
        return None
    unit = UnitConfig(
        name=name, kind=kind, description=description, model=dict(model), plant=dict(plant),
        connection=connection, tags=tuple(tags), control=dict(control), alarms=alarms,
        surrogate=dict(surrogate),
    )
    if parameters_typed and len(c.issues) == n_before:
        buildable.append(unit)
    return unit


def parse_line_config(data: Mapping[str, Any], source: str = "<memory>") -> LineConfig:
    """Validate a parsed TOML mapping (keys and values only; nothing is built). Raises :class:`ConfigError` listing
    every problem."""
    c = IssueCollector(source)
    c.unknown_keys(data, "", {"line", "server", "units", "security", "historian"})
    line = c.table(data, "line")
    c.unknown_keys(line, "line", {"name", "description", "scan_period_s"})
    name = c.string(line, "name", "line", pattern=NAME_RE, what="a line name of letters, digits and _") if line else ""
    description = c.string(line, "description", "line", default="") if line else ""
    scan = c.number(line, "scan_period_s", "line", default=1.0, low=0.01, high=3600.0) if line else 1.0
    server = c.table(data, "server")
    c.unknown_keys(server, "server", {"endpoint", "namespace"})
    endpoint = c.string(server, "endpoint", "server", default="opc.tcp://127.0.0.1:4840/linetwin/")
    if isinstance(server.get("endpoint", ""), str) and (problem := endpoint_problem(endpoint)):
        c.add("server.endpoint", endpoint, problem)
    namespace = c.string(server, "namespace", "server", default=f"urn:linetwin:{name or 'line'}")
    if isinstance(server.get("namespace"), str) and (problem := namespace_problem(namespace)):
        c.add("server.namespace", namespace, problem)
    units_raw = c.table(data, "units")
    buildable: list[UnitConfig] = []
    config_dir = None if source == "<memory>" else Path(source).parent
    units = [u for n, r in units_raw.items() if (u := _parse_unit(c, n, r, buildable, config_dir)) is not None]
    if isinstance(units_raw, Mapping) and not units_raw and "units" in data:
        c.add("units", "no units", "at least one [units.NAME] table")
    sharing = [(u.name, *space, u.tags) for u in units if (space := u.connection.register_space) is not None]
    shared_plc_issues(c, sharing)  # units on one register space (a Modbus PLC's): their tags must not overlap
    security = parse_security(c, data.get("security"), config_dir)
    historian = parse_historian(c, data)
    if c.issues:
        raise ConfigError(c.issues, buildable_units=tuple(buildable))
    return LineConfig(name=name, description=description, scan_period_s=scan,
                      server=ServerConfig(endpoint=endpoint, namespace=namespace), units=tuple(units), source=source,
                      security=security, historian=historian)


def load_line_config(path: str | Path) -> LineConfig:
    """Read and validate a line config file (nothing is built). Raises :class:`ConfigError` (all problems at once)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(p), "<file>", f"unreadable ({exc.strerror})", "a readable TOML file")]) \
            from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        got = f"a byte 0x{raw[exc.start]:02x} at offset {exc.start} that is not UTF-8"
        raise ConfigError([ConfigIssue(str(p), "<file>", got, "a UTF-8 encoded TOML file")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(str(p), "<syntax>", brief(exc), "valid TOML")]) from exc
    except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits; arrays nested too deep
        raise ConfigError([ConfigIssue(str(p), "<syntax>", brief(exc), "valid TOML with integers of at most "
                                       "4300 digits and arrays nested a few levels deep")]) from exc
    return parse_line_config(data, source=str(p))
