"""Helpers for the HIL tests: the demo line's tag maps read from examples/pilot_line.toml, loopback address."""

from __future__ import annotations

import tomllib
from pathlib import Path

from plc_adapters.tag_map import (
    ByteOrder,
    DataType,
    Direction,
    ModbusConnection,
    Range,
    RegisterTable,
    TagSpec,
    WordOrder,
)

PILOT_LINE = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"


def pilot_line_unit(unit: str) -> tuple[str, dict[str, float], list[TagSpec]]:
    """(kind, model parameters, tag map) of ``unit`` in examples/pilot_line.toml.

    A minimal reader for the tests only (the project's config loader lives in twin_server, which hil
    must not import).
    """
    config = tomllib.loads(PILOT_LINE.read_text())["units"][unit]
    tags = []
    for name, t in config["tags"].items():
        tags.append(
            TagSpec(
                name=name,
                direction=Direction(t["direction"]),
                unit_code=t["unit"],
                eu_range=Range(*t["eu_range"]),
                table=RegisterTable(t["table"]),
                address=t["address"],
                data_type=DataType(t["data_type"]),
                byte_order=ByteOrder(t.get("byte_order", "big")),
                word_order=WordOrder(t.get("word_order", "big")),
                scale=t.get("scale", 1.0),
                offset=t.get("offset", 0.0),
                write_limits=Range(*t["write_limits"]) if "write_limits" in t else None,
                max_rate=t.get("max_rate"),
                description=t.get("description", ""),
            )
        )
    return config["kind"], dict(config["model"]), tags


def loopback(unit_id: int = 1) -> ModbusConnection:
    """127.0.0.1 with port 0 (the OS picks a free port at start)."""
    return ModbusConnection(host="127.0.0.1", port=0, unit_id=unit_id)
