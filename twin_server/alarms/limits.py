"""Limit alarm logic for one tag, without I/O: which limit state (HighHigh, High, Low, LowLow or none) is active.

Semantics of an *exclusive* limit alarm (OPC 10000-9 §5.8.18, ExclusiveLimitAlarmType): at most one limit state
is active at a time, the most severe one the value has crossed.

- A value at or above ``high_high`` is HighHigh, else at or above ``high`` High; at or below ``low_low`` LowLow,
  else at or below ``low`` Low. Any of the four limits may be absent.
- **Deadband** (in the tag's engineering unit): once a limit state is active, it stays active until the value has
  come back past its limit by more than the deadband (High at 70 with deadband 0.5 clears below 69.5), so a value
  hovering at a limit does not chatter (ISA-18.2 §10.4 calls this the alarm deadband).
- **On-delay** (plant seconds): a value that crosses into a new or more severe limit state raises it only after staying
  there for ``on_delay_s`` (ISA-18.2 "on-delay" against fleeting alarms). Going back to a less severe state or to
  normal is immediate. A value that leaves the pending state before the delay resets the delay.

The clock is injected (``now`` in plant seconds, any origin: the twin passes its
:class:`~process_models.plant_clock.PlantClock`, so an on-delay is plant time on a bench running N× real time too),
so the behaviour is unit-testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LimitState(StrEnum):
    """The limit states of ExclusiveLimitStateMachineType (their browse names)."""

    HIGH_HIGH = "HighHigh"
    HIGH = "High"
    LOW = "Low"
    LOW_LOW = "LowLow"

    @property
    def is_high(self) -> bool:
        return self in (LimitState.HIGH_HIGH, LimitState.HIGH)

    @property
    def rank(self) -> int:
        """1 for High/Low, 2 for HighHigh/LowLow."""
        return 2 if self in (LimitState.HIGH_HIGH, LimitState.LOW_LOW) else 1


@dataclass(frozen=True, slots=True)
class LimitAlarmConfig:
    """``[units.<unit>.tags.<tag>.alarms]``: limits in the tag's engineering unit, deadband in the same unit,
    on-delay in seconds, OPC UA severity 1..1000 (ISA-18.2 priority mapped to 1..1000)."""

    high_high: float | None = None
    high: float | None = None
    low: float | None = None
    low_low: float | None = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    severity: int = 500

    def limit(self, state: LimitState) -> float | None:
        return {LimitState.HIGH_HIGH: self.high_high, LimitState.HIGH: self.high,
                LimitState.LOW: self.low, LimitState.LOW_LOW: self.low_low}[state]

    def crossed(self, value: float) -> LimitState | None:
        """The most severe limit state ``value`` is in (no deadband)."""
        if self.high_high is not None and value >= self.high_high:
            return LimitState.HIGH_HIGH
        if self.high is not None and value >= self.high:
            return LimitState.HIGH
        if self.low_low is not None and value <= self.low_low:
            return LimitState.LOW_LOW
        if self.low is not None and value <= self.low:
            return LimitState.LOW
        return None

    def still_in(self, state: LimitState, value: float) -> bool:
        """Whether ``value`` keeps ``state`` active: not yet back past its limit by more than the deadband."""
        limit = self.limit(state)
        if limit is None:
            return False
        return value >= limit - self.deadband if state.is_high else value <= limit + self.deadband


def _escalates(target: LimitState | None, active: LimitState | None) -> bool:
    """True when going from ``active`` to ``target`` raises a new or more severe alarm (on-delay applies)."""
    if target is None:
        return False
    if active is None or target.is_high != active.is_high:
        return True
    return target.rank > active.rank


class LimitEvaluator:
    """The active limit state of one tag, updated with each usable value."""

    def __init__(self, config: LimitAlarmConfig) -> None:
        self.config = config
        self.active: LimitState | None = None
        self._pending: LimitState | None = None
        self._pending_since: float = 0.0

    def target(self, value: float) -> LimitState | None:
        """The state ``value`` asks for, given the active one (deadband applied to the active state)."""
        crossed = self.config.crossed(value)
        active = self.active
        if active is None or crossed == active:
            return crossed
        if crossed is not None and crossed.is_high == active.is_high and crossed.rank > active.rank:
            return crossed  # escalation within the same direction
        if self.config.still_in(active, value):
            return active  # inside the deadband: hold
        if active.rank == 2:  # leaving HighHigh/LowLow: maybe into High/Low (with its own deadband)
            lower = LimitState.HIGH if active.is_high else LimitState.LOW
            if crossed != lower and self.config.still_in(lower, value) and crossed is None:
                return lower
        return crossed

    def update(self, value: float, now: float) -> LimitState | None:
        """Feed one value at time ``now`` (s); returns the active limit state afterwards (``None`` = normal)."""
        target = self.target(value)
        if target == self.active:
            self._pending = None
            return self.active
        if not _escalates(target, self.active) or self.config.on_delay_s <= 0.0:
            self.active, self._pending = target, None
            return self.active
        if self._pending is None or self._pending.is_high != target.is_high:  # type: ignore[union-attr]
            self._pending, self._pending_since = target, now
        else:
            self._pending = target
        if now - self._pending_since >= self.config.on_delay_s:
            self.active, self._pending = target, None
        return self.active

    @property
    def pending(self) -> LimitState | None:
        """The state waiting out its on-delay, if any."""
        return self._pending
