"""Line configuration: one TOML file describes a line (server, units, PLC connections, tag maps).

Loading parses and validates every key up front and reports every problem at once, each naming the file, the key,
what was found and what was expected (:mod:`plc_adapters.config_issues`). Loading builds nothing: the models, HIL
plants and control plans a config names are built once, by ``check``, ``serve``, ``demo`` and ``hil serve``
(:mod:`twin_server.line_build`), which report build failures as config issues too. The server never starts
half-configured.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from plc_adapters.adapter import DEFAULT_PROTOCOL, PlcConnection, protocol_names
from plc_adapters.config_issues import NAME_RE, ConfigError, ConfigIssue, IssueCollector, brief, is_finite_number
from plc_adapters.tag import TagDescription
from process_models.registry import controlled_kinds, unit_kinds
from twin_server.alarms.alarm_config import UnitAlarmConfig, parse_unit_alarms
from twin_server.config_checks import endpoint_problem, namespace_problem, shared_plc_issues
from twin_server.historian.settings import HistorianSettings, parse_historian
from twin_server.metrics.settings import MetricsSettings, parse_metrics
from twin_server.mirror_settings import MirrorSettings, parse_mirror
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
    connection: PlcConnection
    """The protocol's connection declaration (``ModbusConnection``, ``OpcUaConnection``, ...)."""
    tags: tuple[TagDescription, ...]
    """The protocol's tag type (``TagSpec``, ``OpcUaTagSpec``, ...)."""
    control: Mapping[str, Any] = field(default_factory=dict)
    """``[units.<unit>.control]``: estimator/NMPC/supervisor options (validated per kind); empty = no control loop."""
    alarms: UnitAlarmConfig = field(default_factory=UnitAlarmConfig)
    """Limit alarms per tag and the unit's alarm options (:mod:`twin_server.alarms.alarm_config`)."""
    surrogate: Mapping[str, Any] = field(default_factory=dict)
    """``[units.<unit>.surrogate]``: a surrogate run beside the physics model (docs/surrogates.md); empty = none."""

    def plant_parameters(self) -> dict[str, Any]:
        """The HIL plant's parameters (:func:`plant_parameters`). Raises ValueError (a method stated twice)."""
        return plant_parameters(self.model, self.plant, self.control)

    def tag(self, name: str) -> TagDescription:
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
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    """``[metrics]``: the Prometheus / health endpoint, off by default (:mod:`twin_server.metrics.settings`)."""
    mirror: MirrorSettings = field(default_factory=MirrorSettings)
    """Per-tag ``report_deadband`` of the mirror's report-by-exception (:mod:`twin_server.mirror_settings`)."""

    def unit(self, name: str) -> UnitConfig:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(f"line '{self.name}' has no unit '{name}'")


def plant_parameters(model: Mapping[str, Any], plant: Mapping[str, Any],
                     control: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A unit's HIL plant parameters: its ``[model]`` table overridden by its ``[plant]`` table; a chromatography
    skid whose pooling table states the method (``[units.X.control.method]``) runs that method — one programme for
    the skid's PLC and the pooling loop's model (``hil serve``, ``demo`` and ``check`` build the plant from this).

    Raises:
        ValueError: the method is stated twice and differently (``[plant.method]`` and ``[control.method]``).
    """
    merged = {**model, **plant}
    method = (control or {}).get("method")
    if isinstance(method, Mapping):
        if "method" in plant and plant["method"] != method:
            raise ValueError("the skid's method is stated in [plant.method] and differently in [control.method]; "
                             "expected it once, in [control.method] (the skid runs it, the pooling loop assumes it)")
        merged["method"] = dict(method)
    return merged


_UNIT_KEYS = {"kind", "description", "model", "plant", "plc", "tags", "control", "alarms", "surrogate"}


def _parse_plc_unit(protocol: str, c: IssueCollector, unit: str, plc: Mapping[str, Any],
                    raw_unit: Mapping[str, Any]) -> tuple[PlcConnection | None, list[TagDescription]]:
    """``[units.UNIT.plc]`` and ``[units.UNIT.tags]`` by the config module of connection kind ``protocol``
    (``twin_server/config_<protocol>.py``, its ``parse_plc_unit``; the kinds come from the protocol table,
    :func:`plc_adapters.adapter.protocol_names`), so a new protocol adds a module and no line here."""
    module = importlib.import_module(f"twin_server.config_{protocol}")
    connection, tags = module.parse_plc_unit(c, unit, plc, raw_unit)
    return connection, list(tags)


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
    raw = c.named_table(raw, prefix, name, "unit", _UNIT_KEYS)
    if raw is None:
        return None
    kind = c.choice(raw, "kind", prefix, list(unit_kinds()))
    description = c.string(raw, "description", prefix, default="")
    model = c.table(raw, f"{prefix}.model", required=False)
    plant = c.table(raw, f"{prefix}.plant", required=False)
    n_before = len(c.issues)
    for section_name, section in (("model", model), ("plant", plant)):
        for k, v in section.items():
            if section_name == "plant" and isinstance(v, Mapping):
                continue  # a plant's table (the skid's method, its deviation): the HIL plant's factory checks it
            if not isinstance(v, int | float | str | bool | list):
                c.add(f"{prefix}.{section_name}.{k}", v, "a number, string, boolean or list")
            elif isinstance(v, int | float) and not isinstance(v, bool) and not is_finite_number(v):
                c.add(f"{prefix}.{section_name}.{k}", v, "a finite number (a float holds up to about 1.8e308)")
    model = _model_files_relative_to_config(c, prefix, model, config_dir)
    parameters_typed = len(c.issues) == n_before
    plc = c.table(raw, f"{prefix}.plc")
    plc_prefix = f"{prefix}.plc"
    protocol = c.choice(plc, "protocol", plc_prefix, list(protocol_names()), default=DEFAULT_PROTOCOL) \
        if plc else None
    # a missing or unknown protocol (already reported) still gets the default protocol's checks of the plc and tag
    # tables, so every problem of the unit is reported at once
    connection, tags = _parse_plc_unit(protocol or DEFAULT_PROTOCOL, c, name, plc, raw)
    if isinstance(raw.get("tags"), Mapping) and raw["tags"] and not tags and not c.issues:
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
    c.unknown_keys(data, "", {"line", "server", "units", "security", "historian", "metrics"})
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
    metrics = parse_metrics(c, data)
    mirror = parse_mirror(c, data)
    if c.issues:
        raise ConfigError(c.issues, buildable_units=tuple(buildable))
    return LineConfig(name=name, description=description, scan_period_s=scan,
                      server=ServerConfig(endpoint=endpoint, namespace=namespace), units=tuple(units), source=source,
                      security=security, historian=historian, metrics=metrics, mirror=mirror)


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
