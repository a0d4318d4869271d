"""Helpers for the HIL tests: the demo line's tag maps read from examples/pilot_line.toml, loopback address."""

from __future__ import annotations

from pathlib import Path

from hil.line_unit import read_line_unit
from plc_adapters.tag_map import ModbusConnection, TagSpec

PILOT_LINE = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"


def pilot_line_unit(unit: str) -> tuple[str, dict[str, float], list[TagSpec]]:
    """(kind, model parameters, tag map) of ``unit`` in examples/pilot_line.toml (read by :mod:`hil.line_unit`:
    hil must not import the twin's config loader)."""
    line_unit = read_line_unit(PILOT_LINE, unit)
    return line_unit.kind, dict(line_unit.model), list(line_unit.tags)


def loopback(unit_id: int = 1) -> ModbusConnection:
    """127.0.0.1 with port 0 (the OS picks a free port at start)."""
    return ModbusConnection(host="127.0.0.1", port=0, unit_id=unit_id)
