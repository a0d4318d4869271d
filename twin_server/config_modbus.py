"""Config of units whose PLC speaks Modbus TCP (the default protocol): ``[units.X.plc]`` and the register tags.

Keys of ``[units.X.plc]`` (besides ``protocol``): ``host`` (required), ``port`` (1..65535, required), ``unit_id``
(0..255, default 1), ``timeout_s`` (default 1.0). Keys of a tag: ``direction``, ``unit``, ``eu_range``,
``description``, ``write_limits``, ``max_rate`` (as for every protocol), ``table``, ``address``, ``data_type``,
``byte_order``, ``word_order``, ``scale``, ``offset`` (the register spec, :class:`~plc_adapters.tag_map.TagSpec`).

:func:`parse_plc_unit` is this protocol's entry point, found by ``twin_server.config`` under the connection kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from twin_server.config_checks import host_problem
from twin_server.config_issues import NAME_RE, IssueCollector
from twin_server.historian.settings import TAG_KEYS as _HISTORY_TAG_KEYS
from twin_server.mirror_settings import TAG_KEYS as _MIRROR_TAG_KEYS


def parse_plc_unit(c: IssueCollector, unit: str, plc: Mapping[str, Any],
                   raw_unit: Mapping[str, Any]) -> tuple[ModbusConnection, list[TagSpec]]:
    """``[units.UNIT.plc]`` (``plc``, possibly empty after a reported problem) and ``[units.UNIT.tags]`` of a Modbus
    unit: the connection and the tags free of problems (every problem reported to ``c``)."""
    plc_prefix = f"units.{unit}.plc"
    c.unknown_keys(plc, plc_prefix, PLC_KEYS)
    host = c.string(plc, "host", plc_prefix, what="a host name or IP address") if plc else ""
    if isinstance(plc.get("host"), str) and (problem := host_problem(host)):
        c.add(f"{plc_prefix}.host", host, problem)
    port = c.integer(plc, "port", plc_prefix, 1, 65535) if plc else 0
    unit_id = c.integer(plc, "unit_id", plc_prefix, 0, 255, default=1) if plc else 1
    timeout_s = c.number(plc, "timeout_s", plc_prefix, default=1.0, low=0.0, high=600.0, low_exclusive=True) \
        if plc else 1.0
    connection = ModbusConnection(host=host, port=port, unit_id=unit_id, timeout_s=timeout_s)
    raw_tags = c.table(raw_unit, f"units.{unit}.tags")
    tags = [spec for tag_name, tag_raw in raw_tags.items()
            if (spec := parse_modbus_tag(c, unit, tag_name, tag_raw)) is not None]
    check_overlaps(c, unit, tags)
    return connection, tags


TAG_KEYS = {"direction", "description", "unit", "eu_range", "table", "address", "data_type", "byte_order",
             "word_order", "scale", "offset", "write_limits", "max_rate", "alarms"} \
    | _HISTORY_TAG_KEYS | _MIRROR_TAG_KEYS
PLC_KEYS = {"protocol", "host", "port", "unit_id", "timeout_s"}


def parse_modbus_tag(c: IssueCollector, unit: str, name: str, raw: Any) -> TagSpec | None:
    """One ``[units.UNIT.tags.NAME]`` of a Modbus unit; ``None`` after reporting problems."""
    prefix = f"units.{unit}.tags.{name}"
    if not isinstance(raw, Mapping):
        c.add(prefix, raw, "a table describing the tag")
        return None
    if not NAME_RE.match(name):
        c.add(prefix, name, "a tag name of letters, digits and _ starting with a letter")
    c.unknown_keys(raw, prefix, TAG_KEYS)
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
        unit_symbol=UNITS_BY_CODE[unit_code].symbol,  # type: ignore[index]
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


def check_overlaps(c: IssueCollector, unit: str, tags: list[TagSpec]) -> None:
    """Two tags of a unit must not share a register of one table."""
    by_table: dict[RegisterTable, list[TagSpec]] = {}
    for t in tags:
        by_table.setdefault(t.table, []).append(t)
    for table, items in by_table.items():
        items.sort(key=lambda t: t.address)
        for a, b in zip(items, items[1:], strict=False):
            if b.address < a.end_address:
                c.add(f"units.{unit}.tags.{b.name}.address", b.address,
                      f"no overlap with tag '{a.name}' ({table.value} {a.address}..{a.end_address - 1})")
