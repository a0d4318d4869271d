"""The neutral tag description every PLC protocol shares.

A tag is what the plant engineer declares about a signal — its name, direction, engineering unit and range, write
limits and rate limit — plus *where* the PLC keeps it. The first part is the same for every protocol and lives
here, once; the protocol's tag type (:class:`~plc_adapters.tag_map.TagSpec`: a Modbus register spec,
:class:`~plc_adapters.opcua_spec.OpcUaTagSpec`: an OPC UA node spec) adds only the address fields. The
guarded-write core (:mod:`plc_adapters.guarded_write`) reads only these neutral fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Direction(str, Enum):
    MEASURED = "measured"
    COMMANDED = "commanded"


@dataclass(frozen=True, slots=True)
class Range:
    """Closed interval [low, high] in engineering units."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def quantity_text(value: float, unit_symbol: str, spec: str = "g") -> str:
    """``value`` (format ``spec``) and its unit's symbol: ``95 °C``, ``412.3 µm``. The one way messages — write
    refusals, alarms, the write log — show a quantity (a unit symbol, never a UNECE code like ``CEL``)."""
    return f"{value:{spec}} {unit_symbol}"


@dataclass(frozen=True, slots=True)
class TagDescription:
    """What every protocol's tag declares (protocol types add their address fields after ``eu_range``).

    Attributes:
        name: tag name, unique within the unit (plant language, e.g. ``jacket_temperature_setpoint``).
        direction: measured (read from the PLC) or commanded (written to the PLC).
        unit_code: UNECE Rec. 20 common code of the engineering unit (``CEL`` = °C, ``MTQ`` = m³ ...).
        eu_range: engineering range of the instrument / actuator.
        write_limits: accepted setpoint interval for commanded tags (defaults to eu_range); keyword only.
        max_rate: largest accepted change of a setpoint, engineering units per second (``None`` = unlimited), as
            the step-bounded rule of :mod:`plc_adapters.rate_limit`; keyword only.
        description: free text shown to operators; keyword only.
        unit_symbol: the unit's symbol (``°C``, ``µm``) for messages, from the UNECE table; empty: the code is
            shown; keyword only.
    """

    name: str
    direction: Direction
    unit_code: str
    eu_range: Range
    write_limits: Range | None = field(default=None, kw_only=True)
    max_rate: float | None = field(default=None, kw_only=True)
    description: str = field(default="", kw_only=True)
    unit_symbol: str = field(default="", kw_only=True)

    @property
    def symbol(self) -> str:
        """The unit as messages show it: its symbol (``°C``), else its code."""
        return self.unit_symbol or self.unit_code

    @property
    def effective_write_limits(self) -> Range:
        return self.write_limits if self.write_limits is not None else self.eu_range

    @property
    def not_writable_reason(self) -> str | None:
        """Why the twin may not write this tag (None: writable). Protocols add their own reasons (a read-only
        Modbus table ...)."""
        if self.direction is not Direction.COMMANDED:
            return "measured tag (only commanded tags are writable)"
        return None

    @property
    def address_text(self) -> str:
        """Where the PLC keeps the tag, for log lines (the protocol type says it better)."""
        return self.name
