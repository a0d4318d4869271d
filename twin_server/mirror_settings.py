"""Report-by-exception of the mirror: per-tag ``report_deadband`` of the line config.

Example::

    [units.tank.tags.level]
    report_deadband = 0.02        # engineering units of the tag (here m); 0 (default): every change goes out

The mirror (:mod:`twin_server.runtime`) writes a tag's value into the address space — and so notifies
subscriptions, historizes it and checks its alarm limits — only when it differs from the value it last published
for that tag, or when its status changed. ``report_deadband`` widens "differs" for noisy analog values: a new value
goes out only when it is more than ``report_deadband`` away from the last published one (absolute, in the tag's
engineering unit, as OPC 10000-8 §6.2's absolute deadband). A change of status (quality) always goes out, whatever
the value.

Refused with a clear error (``FILE: units.U.tags.T.report_deadband: got …; expected …``), nothing built: a value
that is not a finite number, a negative one, and one not smaller than the width of the tag's ``eu_range`` (it
would hide every change of the instrument).

The parser reports problems through the config loader's collector and does not import :mod:`twin_server.config`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plc_adapters.config_issues import IssueCollector

TAG_KEYS = {"report_deadband"}
"""The keys of a tag table this module reads (accepted by every protocol's tag parser)."""


@dataclass(frozen=True, slots=True)
class MirrorSettings:
    """Per ``(unit, tag)``: the report deadband in the tag's engineering unit (a tag missing here has 0)."""

    report_deadbands: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def report_deadband(self, unit: str, tag: str) -> float:
        return self.report_deadbands.get((unit, tag), 0.0)


def _eu_width(raw: Mapping[str, Any]) -> float | None:
    """``high - low`` of a tag table's ``eu_range`` when it is two finite numbers, else None (reported elsewhere)."""
    eu = raw.get("eu_range")
    if not isinstance(eu, list) or len(eu) != 2:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in eu):
        return None
    return float(eu[1]) - float(eu[0])


def parse_report_deadband(c: IssueCollector, unit: str, tag: str, raw: Mapping[str, Any]) -> float | None:
    """``report_deadband`` of one tag table; ``None`` when absent or refused (a refusal is reported to ``c``)."""
    if "report_deadband" not in raw:
        return None
    key = f"units.{unit}.tags.{tag}.report_deadband"
    value = raw["report_deadband"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        c.add(key, value, "a finite number >= 0 in the tag's engineering unit (0: every change is reported)")
        return None
    width = _eu_width(raw)
    if width is not None and width > 0 and value >= width:
        c.add(key, value, f"a deadband smaller than the width of the tag's eu_range ({width:g}): a wider one hides "
                          "every change of the value")
        return None
    return float(value)


def parse_mirror(c: IssueCollector, data: Mapping[str, Any]) -> MirrorSettings:
    """Every tag's ``report_deadband`` of a parsed line config (problems reported to ``c``)."""
    deadbands: dict[tuple[str, str], float] = {}
    units = data.get("units")
    if not isinstance(units, Mapping):
        return MirrorSettings()
    for unit, unit_raw in units.items():
        tag_tables = unit_raw.get("tags") if isinstance(unit_raw, Mapping) else None
        if not isinstance(tag_tables, Mapping):
            continue
        for tag, tag_raw in tag_tables.items():
            if isinstance(tag_raw, Mapping) and (db := parse_report_deadband(c, unit, tag, tag_raw)) is not None:
                deadbands[(unit, tag)] = db
    return MirrorSettings(deadbands)
