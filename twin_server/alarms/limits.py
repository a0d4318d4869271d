"""Limit alarms per tag (HH / H / L / LL with deadband, on-delay and severity), from the line config.

.. code-block:: toml

    [alarms.crystallizer.temperature]   # [alarms.<unit>.<tag>]
    high_high = 60.0      # any of high_high, high, low, low_low (engineering units of the tag); at least one
    high = 55.0
    low = 5.0
    low_low = 2.0
    deadband = 0.5        # the alarm clears only once the value is this far back inside the limit (default 0)
    on_delay_s = 2.0      # the limit must be exceeded this long before the alarm becomes active (default 0)
    severity = 700        # OPC UA severity 1..1000 (default 700; HH/LL use min(1000, severity + 100))

Each configured tag becomes an ExclusiveLimitAlarmType condition ``<line>.<unit>.<tag>.limit_alarm`` whose
``LimitState`` is HighHigh, High, Low or LowLow (OPC 10000-9 §5.8.18), evaluated on every mirrored value of Good
quality (a Bad value changes nothing: communication loss has its own alarm).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("high_high", "high", "low", "low_low")
STATE_NAMES = {"high_high": "HighHigh", "high": "High", "low": "Low", "low_low": "LowLow"}
KEYS = {*LEVELS, "deadband", "on_delay_s", "severity"}


@dataclass(frozen=True, slots=True)
class LimitAlarmSpec:
    unit: str
    tag: str
    high_high: float | None = None
    high: float | None = None
    low: float | None = None
    low_low: float | None = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    severity: int = 700

    def limit(self, level: str) -> float | None:
        return getattr(self, level)


def parse_limit_alarms(raw: Any, units: Mapping[str, set[str]], add: Callable[[str, object, str], None]
                       ) -> tuple[LimitAlarmSpec, ...]:
    """Validate ``[alarms.<unit>.<tag>]``; ``units``: unit → its tag names. Problems go to ``add``."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        add("alarms", raw, "a table [alarms.<unit>.<tag>]")
        return ()
    specs = []
    for unit, tags in raw.items():
        if unit not in units:
            add(f"alarms.{unit}", unit, "a unit of the line: " + ", ".join(sorted(units)))
            continue
        if not isinstance(tags, Mapping):
            add(f"alarms.{unit}", tags, "a table of tags [alarms.<unit>.<tag>]")
            continue
        for tag, table in tags.items():
            prefix = f"alarms.{unit}.{tag}"
            if tag not in units[unit]:
                add(prefix, tag, f"a tag of unit {unit}: " + ", ".join(sorted(units[unit])))
                continue
            spec = _parse_one(unit, tag, table, prefix, add)
            if spec is not None:
                specs.append(spec)
    return tuple(specs)


def _number(table: Mapping[str, Any], key: str, prefix: str, add: Callable[[str, object, str], None],
            low: float = -math.inf) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
        add(f"{prefix}.{key}", value, "a finite number" + (f" >= {low:g}" if low > -math.inf else ""))
        return None
    return float(value)


def _parse_one(unit: str, tag: str, table: Any, prefix: str,
               add: Callable[[str, object, str], None]) -> LimitAlarmSpec | None:
    if not isinstance(table, Mapping):
        add(prefix, table, "a table with high_high/high/low/low_low limits")
        return None
    n_before = [0]

    def counting_add(key: str, got: object, expected: str) -> None:
        n_before[0] += 1
        add(key, got, expected)

    for key in table:
        if key not in KEYS:
            counting_add(f"{prefix}.{key}", "an unknown key", "one of " + ", ".join(sorted(KEYS)))
    limits = {level: _number(table, level, prefix, counting_add) for level in LEVELS}
    deadband = _number(table, "deadband", prefix, counting_add, low=0.0) or 0.0
    on_delay = _number(table, "on_delay_s", prefix, counting_add, low=0.0) or 0.0
    severity = table.get("severity", 700)
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 1000:
        counting_add(f"{prefix}.severity", severity, "an integer in [1, 1000]")
        severity = 700
    present = [(level, v) for level, v in limits.items() if v is not None]
    if not present and not n_before[0]:
        counting_add(prefix, "no limit", "at least one of " + ", ".join(LEVELS))
    ordered = [limits[k] for k in ("low_low", "low", "high", "high_high") if limits[k] is not None]
    if ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
        counting_add(prefix, {k: v for k, v in present}, "low_low < low < high < high_high")
    if n_before[0]:
        return None
    return LimitAlarmSpec(unit, tag, limits["high_high"], limits["high"], limits["low"], limits["low_low"],
                          deadband, on_delay, severity)


class LimitMonitor:
    """The state of one limit alarm: which limit is exceeded now, with deadband and on-delay."""

    def __init__(self, spec: LimitAlarmSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._clock = clock
        self.state: str | None = None
        """The active level (``high_high`` … ``low_low``) or None."""
        self._pending: tuple[str, float] | None = None

    def _exceeded(self, value: float) -> str | None:
        s = self.spec
        for level, above in (("high_high", True), ("high", True), ("low_low", False), ("low", False)):
            limit = s.limit(level)
            if limit is None:
                continue
            margin = s.deadband if self.state == level or (self.state is not None and _same_side(self.state, level)
                                                           and _more_severe(self.state, level)) else 0.0
            if (above and value >= limit - margin) or (not above and value <= limit + margin):
                return level
        return None

    def update(self, value: float | None) -> bool:
        """Feed one Good value (None: no usable value, nothing changes); True when the state changed."""
        if value is None or not math.isfinite(value):
            return False
        level = self._exceeded(value)
        if level == self.state:
            self._pending = None
            return False
        if level is not None and self.spec.on_delay_s > 0 and (self.state is None or not _same_side(self.state,
                                                                                                   level)):
            now = self._clock()
            if self._pending is None or self._pending[0] != level:
                self._pending = (level, now)
                return False
            if now - self._pending[1] < self.spec.on_delay_s:
                return False
        self._pending = None
        self.state = level
        return True

    def severity(self) -> int:
        if self.state in ("high_high", "low_low"):
            return min(1000, self.spec.severity + 100)
        return self.spec.severity


def _same_side(a: str, b: str) -> bool:
    return a.startswith("high") == b.startswith("high")


def _more_severe(a: str, b: str) -> bool:
    """True when ``a`` is at least as severe as ``b`` on the same side (HH ⊇ H, LL ⊇ L)."""
    return a in ("high_high", "low_low") or a == b
