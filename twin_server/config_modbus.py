"""Config of units whose PLC speaks Modbus TCP (the default protocol): ``[units.X.plc]`` and the register tags.

Keys of ``[units.X.plc]`` (besides ``protocol``): ``host`` (required), ``port`` (1..65535, required), ``unit_id``
(0..255, default 1), ``timeout_s`` (default 1.0). Keys of a tag: ``direction``, ``unit``, ``eu_range``,
``description``, ``write_limits``, ``max_rate`` (as for every protocol), ``table``, ``address``, ``data_type``,
``byte_order``, ``word_order``, ``scale``, ``offset`` (the register spec, :class:`~plc_adapters.tag_map.TagSpec`,
read by :func:`plc_adapters.tag_map.parse_modbus_tag`, which the HIL bench's line reader uses too), ``alarms``,
``historize``, ``deadband``.

:func:`parse_plc_unit` is this protocol's entry point, found by ``twin_server.config`` under the connection kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plc_adapters.config_issues import IssueCollector
from plc_adapters.tag_map import ModbusConnection, TagSpec, check_overlaps, parse_modbus_tag
from process_models.engineering_units import UNITS_BY_CODE
from twin_server.config_checks import host_problem
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
            if (spec := parse_modbus_tag(c, unit, tag_name, tag_raw, UNITS_BY_CODE, TWIN_TAG_KEYS)) is not None]
    check_overlaps(c, unit, tags)
    return connection, tags


TWIN_TAG_KEYS = frozenset({"alarms"} | _HISTORY_TAG_KEYS | _MIRROR_TAG_KEYS)
"""The keys of a Modbus tag table the twin reads beside the tag's own (:data:`plc_adapters.tag_map.MODBUS_TAG_KEYS`):
its alarms, history and report deadband."""
PLC_KEYS = {"protocol", "host", "port", "unit_id", "timeout_s"}
