"""A unit of a line file as the HIL bench needs it without the twin: kind, ``[model]`` table and tag map.

``hil`` must not import the twin's config loader (``twin_server.config``); the tag tables are read by the same
parsers the loader uses (:func:`plc_adapters.tag_map.parse_modbus_tag`; for other protocols the neutral keys of
:mod:`plc_adapters.tag_config`), so a tag means the same to the bench and the twin, and a problem is a
:class:`~plc_adapters.config_issues.ConfigError` naming the file and the key (``linetwin check`` reports the whole
file).

Modbus tags are the twin's :class:`~plc_adapters.tag_map.TagSpec`. A unit whose PLC speaks another protocol (OPC UA,
or any added one) gets register-image tags of the same data type (``float32`` = S7 Real unless the tag says
otherwise), laid out one after the other (measured tags in input registers, commanded ones in holding registers), so
the stepped loop's PLC image holds each value with the precision the PLC's node would.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plc_adapters.config_issues import ConfigError, IssueCollector
from plc_adapters.tag_config import limits_fit, parse_tag_fields, tag_table
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
        tags = _register_image(c, unit, raw_tags)
    if "kind" not in table:
        c.add(f"units.{unit}.kind", "nothing", "a unit kind (required)")
    if c.issues:
        raise ConfigError(c.issues)
    return LineUnit(unit, str(table["kind"]), dict(table.get("model", {})), tuple(tags), protocol)


def _register_image(c: IssueCollector, unit: str, raw_tags: Mapping[str, Any]) -> list[TagSpec]:
    """The tags of a unit whose PLC does not speak Modbus as register-image tags: their neutral keys
    (:mod:`plc_adapters.tag_config`, what every protocol's tag has) and ``data_type`` (default ``float32``), one
    after the other per table. The protocol's address keys are the twin's business (its loader checks them)."""
    next_address = {RegisterTable.INPUT: 0, RegisterTable.HOLDING: 0}
    imaged = []
    for name, raw in raw_tags.items():
        prefix = f"units.{unit}.tags.{name}"
        table_raw = tag_table(c, unit, name, raw, None)
        fields = parse_tag_fields(c, prefix, name, table_raw, UNITS_BY_CODE) if table_raw is not None else None
        data_type = c.choice(table_raw or {}, "data_type", prefix, [d.value for d in DataType], default="float32")
        if fields is None or data_type is None or not limits_fit(c, prefix, fields):
            continue
        table = RegisterTable.INPUT if fields.direction is Direction.MEASURED else RegisterTable.HOLDING
        tag = TagSpec(**fields.as_kwargs(), table=table, address=next_address[table], data_type=DataType(data_type))
        next_address[table] = tag.end_address
        imaged.append(tag)
    return imaged
