"""A unit of a line file as the HIL bench needs it without the twin: kind, ``[model]`` table and tag map.

``hil`` must not import the twin's config loader (``twin_server.config``); the tag tables are read by the same
parsers the loader uses (:func:`plc_adapters.tag_map.parse_modbus_tag`,
:func:`plc_adapters.opcua_spec.parse_opcua_tag`), so a tag means the same to the bench and the twin, and a problem
is a :class:`~plc_adapters.config_issues.ConfigError` naming the file and the key (``linetwin check`` reports the
whole file).

Modbus tags are the twin's :class:`~plc_adapters.tag_map.TagSpec`. A unit whose PLC speaks OPC UA gets register-image
tags of the same data type (``float32`` = S7 Real unless the tag says otherwise), laid out one after the other
(measured tags in input registers, commanded ones in holding registers), so the stepped loop's PLC image holds each
value with the precision the OPC UA PLC's node would.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plc_adapters.config_issues import ConfigError, IssueCollector
from plc_adapters.opcua_spec import OpcUaTagSpec, parse_opcua_tag
from plc_adapters.tag_map import DataType, Direction, RegisterTable, TagSpec, parse_modbus_tag
from process_models.engineering_units import UNITS_BY_CODE


@dataclass(frozen=True)
class LineUnit:
    """``kind``, ``model`` (the twin's ``[model]`` table), ``tags`` (register layout) and ``protocol``."""

    name: str
    kind: str
    model: Mapping[str, Any]
    tags: tuple[TagSpec, ...]
    protocol: str


class UnknownUnitError(KeyError):
    """The line file has no unit of that name; ``units``: the names it has."""

    def __init__(self, line_path: Path, unit: str, units: list[str]) -> None:
        self.units = units
        super().__init__(f"{line_path}: no unit '{unit}'; units: {', '.join(units) or 'none'}")


def read_line_unit(line_path: Path, unit: str) -> LineUnit:
    """Read ``unit`` of the line file ``line_path``.

    Raises:
        OSError, tomllib.TOMLDecodeError: the file cannot be read, is not TOML.
        UnknownUnitError: there is no such unit.
        ConfigError: naming each problem of the unit's tag tables (file and key).
    """
    units = tomllib.loads(Path(line_path).read_text()).get("units", {})
    if not isinstance(units, dict) or not isinstance(units.get(unit), dict):
        raise UnknownUnitError(line_path, unit, list(units) if isinstance(units, dict) else [])
    table = units[unit]
    plc = table.get("plc", {})
    protocol = str(plc.get("protocol", "modbus"))
    c = IssueCollector(str(line_path))
    raw_tags = c.table(table, f"units.{unit}.tags")
    if protocol == "modbus":
        tags = [t for name, raw in raw_tags.items() if (t := parse_modbus_tag(c, unit, name, raw, UNITS_BY_CODE, None))]
    else:
        uri = plc.get("namespace_uri") if isinstance(plc.get("namespace_uri"), str) else None
        tags = _register_image([t for name, raw in raw_tags.items()
                                if (t := parse_opcua_tag(c, unit, name, raw, uri, UNITS_BY_CODE, None))])
    if "kind" not in table:
        c.add(f"units.{unit}.kind", "nothing", "a unit kind (required)")
    if c.issues:
        raise ConfigError(c.issues)
    return LineUnit(unit, str(table["kind"]), dict(table.get("model", {})), tuple(tags), protocol)


def _register_image(tags: list[OpcUaTagSpec]) -> list[TagSpec]:
    """OPC UA tags as register-image tags of the same data type, one after the other per table."""
    next_address = {RegisterTable.INPUT: 0, RegisterTable.HOLDING: 0}
    imaged = []
    for t in tags:
        table = RegisterTable.INPUT if t.direction is Direction.MEASURED else RegisterTable.HOLDING
        tag = TagSpec(t.name, t.direction, t.unit_code, t.eu_range, write_limits=t.write_limits, max_rate=t.max_rate,
                      description=t.description, unit_symbol=t.unit_symbol, table=table, address=next_address[table],
                      data_type=DataType(t.data_type))
        next_address[table] = tag.end_address
        imaged.append(tag)
    return imaged
