"""A unit of a line file as the HIL bench needs it without the twin: kind, ``[model]`` table and tag map.

``hil`` must not import the twin's config loader (``twin_server.config``), so this is a small reader of the line
TOML with ``tomllib`` for files the twin has already validated (``linetwin check``): a missing key raises
``KeyError`` naming the unit and the tag.

Modbus tags become :class:`~plc_adapters.tag_map.TagSpec` as the twin builds them. A unit whose PLC speaks OPC UA
gets register-image tags of the same data type (``float32`` = S7 Real unless the tag says otherwise), laid out
one after the other (measured tags in input registers, commanded ones in holding registers), so the stepped loop's
PLC image holds each value with the precision the OPC UA PLC's node would.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plc_adapters.tag_map import ByteOrder, DataType, Direction, Range, RegisterTable, TagSpec, WordOrder


@dataclass(frozen=True)
class LineUnit:
    """``kind``, ``model`` (the twin's ``[model]`` table), ``tags`` (register layout) and ``protocol``."""

    name: str
    kind: str
    model: Mapping[str, Any]
    tags: tuple[TagSpec, ...]
    protocol: str


def read_line_unit(line_path: Path, unit: str) -> LineUnit:
    """Read ``unit`` of the line file ``line_path`` (KeyError naming what is missing)."""
    units = tomllib.loads(Path(line_path).read_text())["units"]
    if unit not in units:
        raise KeyError(f"{line_path}: no unit '{unit}'; units: {', '.join(units)}")
    table = units[unit]
    protocol = str(table.get("plc", {}).get("protocol", "modbus"))
    tags: list[TagSpec] = []
    next_address = {RegisterTable.INPUT: 0, RegisterTable.HOLDING: 0}
    for name, t in table.get("tags", {}).items():
        try:
            tags.append(_modbus_tag(name, t) if protocol == "modbus" else _imaged_tag(name, t, next_address))
        except KeyError as exc:
            raise KeyError(f"{line_path}: units.{unit}.tags.{name}: missing key {exc}") from None
    return LineUnit(unit, str(table["kind"]), dict(table.get("model", {})), tuple(tags), protocol)


def _common(name: str, t: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "direction": Direction(t["direction"]), "unit_code": t["unit"],
            "eu_range": Range(*t["eu_range"]),
            "write_limits": Range(*t["write_limits"]) if "write_limits" in t else None,
            "max_rate": t.get("max_rate"), "description": t.get("description", "")}


def _modbus_tag(name: str, t: Mapping[str, Any]) -> TagSpec:
    return TagSpec(**_common(name, t), table=RegisterTable(t["table"]), address=t["address"],
                   data_type=DataType(t["data_type"]), byte_order=ByteOrder(t.get("byte_order", "big")),
                   word_order=WordOrder(t.get("word_order", "big")), scale=t.get("scale", 1.0),
                   offset=t.get("offset", 0.0))


def _imaged_tag(name: str, t: Mapping[str, Any], next_address: dict[RegisterTable, int]) -> TagSpec:
    direction = Direction(t["direction"])
    table = RegisterTable.INPUT if direction is Direction.MEASURED else RegisterTable.HOLDING
    tag = TagSpec(**_common(name, t), table=table, address=next_address[table],
                  data_type=DataType(t.get("data_type", "float32")))
    next_address[table] = tag.end_address
    return tag
