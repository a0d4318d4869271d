"""The keys every protocol's tag table shares (``[units.X.tags.NAME]``), read once for every protocol.

A tag table names what :class:`~plc_adapters.tag.TagDescription` declares — ``direction`` (measured |
commanded), ``unit`` (a UNECE Rec. 20 common code), ``eu_range`` (``[low, high]``, engineering units),
``write_limits`` (commanded tags only, inside ``eu_range``), ``max_rate`` (commanded tags only, engineering units
per second, > 0), ``description`` — beside the protocol's address keys, which the protocol's tag parser reads
(:func:`plc_adapters.tag_map.parse_modbus_tag`, :func:`plc_adapters.opcua_spec.parse_opcua_tag`).

The engineering units are passed in (``units``: code → an object with a ``symbol``, e.g.
``process_models.engineering_units.UNITS_BY_CODE``): ``plc_adapters`` does not import ``process_models``. Both the
twin's config loader and the HIL bench's line reader (``hil.line_unit``) call these parsers, so a tag means the same
to both and every problem is reported as ``FILE: units.X.tags.NAME.KEY: got …; expected …``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Protocol

from plc_adapters.config_issues import IssueCollector
from plc_adapters.tag import Direction, Range

TAG_DESCRIPTION_KEYS = frozenset({"direction", "description", "unit", "eu_range", "write_limits", "max_rate"})
"""The keys of a tag table every protocol reads."""


class EngineeringUnitLike(Protocol):
    """What a tag parser needs of an engineering unit: its symbol (``°C``)."""

    @property
    def symbol(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TagFields:
    """The protocol-neutral fields of one tag table, checked; ``TagSpec(**fields.as_kwargs(), address…)``."""

    name: str
    direction: Direction
    unit_code: str
    eu_range: Range
    write_limits: Range | None
    max_rate: float | None
    description: str
    unit_symbol: str

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def tag_table(c: IssueCollector, unit: str, name: str, raw: Any, keys: Set[str] | None) -> Mapping[str, Any] | None:
    """The table of tag ``name`` of ``unit`` when it is one (else reported, ``None``); its name checked, and its keys
    against ``keys`` (``None``: not checked — a reader of a file the twin's loader has checked, whose other
    layers' keys it does not know)."""
    return c.named_table(raw, f"units.{unit}.tags.{name}", name, "tag", None if keys is None else set(keys))


def parse_tag_fields(c: IssueCollector, prefix: str, name: str, raw: Mapping[str, Any],
                     units: Mapping[str, EngineeringUnitLike]) -> TagFields | None:
    """The protocol-neutral keys of tag table ``raw`` (at ``prefix``); ``None`` after reporting a problem."""
    n_before = len(c.issues)
    direction = c.choice(raw, "direction", prefix, [d.value for d in Direction])
    unit_code = c.string(raw, "unit", prefix, what="a UNECE Rec. 20 common code")
    if isinstance(raw.get("unit"), str) and unit_code not in units:
        c.add(f"{prefix}.unit", unit_code, "a UNECE Rec. 20 common code known to linetwin: " + ", ".join(sorted(units)))
    eu_range = c.range(raw, "eu_range", prefix, required=True)
    write_limits = c.range(raw, "write_limits", prefix, required=False)
    max_rate = c.number(raw, "max_rate", prefix, low=0.0, low_exclusive=True) if "max_rate" in raw else None
    description = c.string(raw, "description", prefix, default="")
    if len(c.issues) > n_before or direction is None or eu_range is None:
        return None
    return TagFields(name=name, direction=Direction(direction), unit_code=unit_code, eu_range=eu_range,
                     write_limits=write_limits, max_rate=max_rate, description=description,
                     unit_symbol=units[unit_code].symbol)


def limits_fit(c: IssueCollector, prefix: str, fields: TagFields) -> bool:
    """Write limits and a rate only on a commanded tag, the limits inside ``eu_range``; ``False`` after reporting."""
    ok = True
    if fields.direction is Direction.MEASURED and (fields.write_limits is not None or fields.max_rate is not None):
        c.add(f"{prefix}.write_limits", "write_limits/max_rate on a measured tag", "these only on commanded tags")
        ok = False
    limits, eu = fields.write_limits, fields.eu_range
    if limits is not None and not (eu.low <= limits.low and limits.high <= eu.high):
        c.add(f"{prefix}.write_limits", [limits.low, limits.high], f"limits inside eu_range [{eu.low}, {eu.high}]")
        ok = False
    return ok

