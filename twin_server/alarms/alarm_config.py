"""The alarm keys of a line config, validated (``FILE: KEY: got …; expected …`` issues, all at once).

Per tag, ``[units.<unit>.tags.<tag>.alarms]`` (a limit alarm, in the tag's engineering unit)::

    high_high = 80.0     # any of the four limits may be left out, at least one is needed
    high = 70.0
    low = 5.0
    low_low = 2.0
    deadband = 0.5       # >= 0, default 0
    on_delay_s = 2.0     # >= 0 s, default 0
    severity = 700       # 1..1000, default 500

Per unit, ``[units.<unit>.alarms]`` (all optional)::

    comms_loss = true              # the communication-loss condition (default true)
    comms_loss_severity = 800
    fallback_severity = 600        # control loop: NMPC fallback in use
    divergence_severity = 600      # control loop: estimator divergence
    surrogate_drift_severity = 500 # [units.<unit>.surrogate]: surrogate disagrees with physics
    innovation_bounds = { concentration = 20.0 }   # |measured - predicted| per measured tag, tag units
    innovation_probability = 0.95  # control loop: the NIS χ² band's probability (0 < p < 1)
    innovation_on_delay_s = 180.0  # plant seconds the NIS must stay out of its band before the alarm
    innovation_sides = "upper"     # upper | both: which side of the band raises parameter_set_mismatch
    innovation_severity = 600      # control loop: the deployed parameter set no longer fits the plant
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plc_adapters.config_issues import IssueCollector, is_finite_number
from plc_adapters.tag_map import TagSpec
from twin_server.alarms.limits import LimitAlarmConfig

_LIMIT_KEYS = ("low_low", "low", "high", "high_high")
_TAG_ALARM_KEYS = {*_LIMIT_KEYS, "deadband", "on_delay_s", "severity"}
_UNIT_ALARM_KEYS = {"comms_loss", "comms_loss_severity", "fallback_severity", "divergence_severity",
                    "innovation_bounds", "surrogate_drift_severity", "innovation_probability",
                    "innovation_on_delay_s", "innovation_sides", "innovation_severity"}
INNOVATION_SIDES = ("upper", "both")


@dataclass(frozen=True, slots=True)
class UnitAlarmConfig:
    """A unit's alarms: limit alarms by tag name, and the unit/loop conditions' options."""

    limits: Mapping[str, LimitAlarmConfig] = field(default_factory=dict)
    comms_loss: bool = True
    comms_loss_severity: int = 800
    fallback_severity: int = 600
    divergence_severity: int = 600
    surrogate_drift_severity: int = 500
    """Severity of the surrogate-drift condition (units with ``[units.<unit>.surrogate]``)."""
    innovation_bounds: Mapping[str, float] = field(default_factory=dict)
    """Largest acceptable |innovation| per measured tag, in the tag's engineering unit."""
    innovation_probability: float = 0.95
    """Probability of the NIS χ² band (two-sided) of the ``parameter_set_mismatch`` condition."""
    innovation_on_delay_s: float = 180.0
    """Plant seconds the NIS must stay out of its band before ``parameter_set_mismatch`` is raised."""
    innovation_sides: str = "upper"
    """``upper``: only a NIS above its band raises the alarm; ``both``: below it too (see docs/alarms.md)."""
    innovation_severity: int = 600


def _severity(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        c.add(f"{prefix}.{key}", value, "an integer severity in [1, 1000]")
        return default
    return value


def _non_negative(c: IssueCollector, raw: Mapping[str, Any], key: str, prefix: str) -> float:
    value = raw.get(key, 0.0)
    if not is_finite_number(value) or value < 0:
        c.add(f"{prefix}.{key}", value, "a finite number >= 0")
        return 0.0
    return float(value)


def parse_tag_alarms(c: IssueCollector, raw: Any, prefix: str, tag: TagSpec) -> LimitAlarmConfig | None:
    """Validate one tag's ``alarms`` table (``prefix`` = ``units.<unit>.tags.<tag>.alarms``); ``None`` after
    reporting problems."""
    n_before = len(c.issues)
    if not isinstance(raw, Mapping):
        c.add(prefix, raw, "a table of limit alarm settings (high_high, high, low, low_low, ...)")
        return None
    c.unknown_keys(raw, prefix, _TAG_ALARM_KEYS)
    limits: dict[str, float] = {}
    for key in _LIMIT_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if not is_finite_number(value):
            c.add(f"{prefix}.{key}", value, "a finite number in the tag's unit")
        elif not tag.eu_range.low <= value <= tag.eu_range.high:
            c.add(f"{prefix}.{key}", value,
                  f"a limit inside eu_range [{tag.eu_range.low}, {tag.eu_range.high}]")
        else:
            limits[key] = float(value)
    if not any(k in raw for k in _LIMIT_KEYS):
        c.add(prefix, "no limit", "at least one of high_high, high, low, low_low")
    ordered = [(k, limits[k]) for k in _LIMIT_KEYS if k in limits]
    for (k1, v1), (k2, v2) in zip(ordered, ordered[1:], strict=False):
        if not v1 < v2:
            c.add(f"{prefix}.{k2}", v2, f"a limit above {k1} ({v1}): low_low < low < high < high_high")
    deadband = _non_negative(c, raw, "deadband", prefix)
    on_delay = _non_negative(c, raw, "on_delay_s", prefix)
    severity = _severity(c, raw, "severity", prefix, 500)
    if len(c.issues) > n_before:
        return None
    return LimitAlarmConfig(high_high=limits.get("high_high"), high=limits.get("high"), low=limits.get("low"),
                            low_low=limits.get("low_low"), deadband=deadband, on_delay_s=on_delay,
                            severity=severity)


def parse_unit_alarms(c: IssueCollector, unit_raw: Mapping[str, Any], prefix: str,
                      tags: list[TagSpec]) -> UnitAlarmConfig:
    """Every alarm key of one unit (``prefix`` = ``units.<unit>``): the tags' ``alarms`` tables and
    ``[units.X.alarms]``; problems go to ``c``."""
    by_name = {t.name: t for t in tags}
    limits: dict[str, LimitAlarmConfig] = {}
    raw_tags = unit_raw.get("tags")
    for name, raw_tag in (raw_tags.items() if isinstance(raw_tags, Mapping) else ()):
        if not isinstance(raw_tag, Mapping) or "alarms" not in raw_tag or name not in by_name:
            continue
        config = parse_tag_alarms(c, raw_tag["alarms"], f"{prefix}.tags.{name}.alarms", by_name[name])
        if config is not None:
            limits[name] = config
    raw = unit_raw.get("alarms", {})
    p = f"{prefix}.alarms"
    if not isinstance(raw, Mapping):
        c.add(p, raw, "a table of unit alarm settings")
        return UnitAlarmConfig(limits=limits)
    c.unknown_keys(raw, p, _UNIT_ALARM_KEYS)
    comms_loss = raw.get("comms_loss", True)
    if not isinstance(comms_loss, bool):
        c.add(f"{p}.comms_loss", comms_loss, "true or false")
        comms_loss = True
    bounds: dict[str, float] = {}
    raw_bounds = raw.get("innovation_bounds", {})
    if not isinstance(raw_bounds, Mapping):
        c.add(f"{p}.innovation_bounds", raw_bounds, "a table of measured tag = bound (tag units)")
    else:
        for name, bound in raw_bounds.items():
            if name not in by_name:
                c.add(f"{p}.innovation_bounds.{name}", name, "a tag of this unit: " + ", ".join(by_name))
            elif not is_finite_number(bound) or not bound > 0 or math.isinf(bound):
                c.add(f"{p}.innovation_bounds.{name}", bound, "a finite number > 0 (tag units)")
            else:
                bounds[name] = float(bound)
    probability = raw.get("innovation_probability", 0.95)
    if not is_finite_number(probability) or not 0.0 < probability < 1.0:
        c.add(f"{p}.innovation_probability", probability, "a probability in (0, 1), e.g. 0.95")
        probability = 0.95
    sides = raw.get("innovation_sides", "upper")
    if sides not in INNOVATION_SIDES:
        c.add(f"{p}.innovation_sides", sides, " | ".join(INNOVATION_SIDES))
        sides = "upper"
    return UnitAlarmConfig(
        limits=limits, comms_loss=comms_loss,
        comms_loss_severity=_severity(c, raw, "comms_loss_severity", p, 800),
        fallback_severity=_severity(c, raw, "fallback_severity", p, 600),
        divergence_severity=_severity(c, raw, "divergence_severity", p, 600),
        surrogate_drift_severity=_severity(c, raw, "surrogate_drift_severity", p, 500),
        innovation_bounds=bounds, innovation_probability=float(probability),
        innovation_on_delay_s=_non_negative(c, {"innovation_on_delay_s": 180.0, **raw}, "innovation_on_delay_s", p),
        innovation_sides=str(sides), innovation_severity=_severity(c, raw, "innovation_severity", p, 600))
