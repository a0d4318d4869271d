"""The twin's health verdict: ready, degraded (serving, but something a plant must look at) or not ready.

Reasons for *degraded*: a unit's PLC link down, a tag whose engineering unit disagrees with its PLC's, the
historian losing samples (queue or store-and-forward buffer full, refused by InfluxDB) since the last verdict or
its loss alarm active, a unit's NMPC in fallback. *Not ready*: the twin is not serving (starting or stopping).
Exit codes of ``linetwin health``: 0 ready, 1 degraded, 2 not ready or unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin_server.server import TwinServer


class HealthState(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"
    NOT_READY = "not_ready"

    @property
    def exit_code(self) -> int:
        """``linetwin health``'s exit status for this state."""
        return {HealthState.READY: 0, HealthState.DEGRADED: 1, HealthState.NOT_READY: 2}[self]


@dataclass(frozen=True, slots=True)
class Health:
    """A verdict and why (one line per reason, naming the unit)."""

    state: HealthState
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        return {"status": self.state.value, "reasons": list(self.reasons)}


class HealthCheck:
    """Judges a :class:`~twin_server.server.TwinServer` (on its event loop, at request time)."""

    def __init__(self, twin: TwinServer) -> None:
        self._twin = twin
        self._lost_seen = 0

    def verdict(self) -> Health:
        twin = self._twin
        if not twin.serving or twin.runtime is None:
            return Health(HealthState.NOT_READY, ("the twin is not serving (starting or stopping)",))
        reasons: list[str] = []
        for unit, health in twin.runtime.health.items():
            adapter = twin.runtime.adapters[unit]
            if not health.connected:
                reasons.append(f"{unit}: PLC link down ({twin.config.unit(unit).connection.endpoint})")
            if adapter.eu_mismatches:
                reasons.append(f"{unit}: engineering units differ from the PLC's for "
                               + ", ".join(sorted(adapter.eu_mismatches)))
        if twin.historian is not None:
            lost = twin.historian.lost_samples()
            alarm = twin.historian.loss_alarm
            losing = lost > self._lost_seen or (alarm is not None and alarm.condition.state.active)
            if losing:
                reasons.append(f"historian: losing samples ({lost} lost since start)")
            self._lost_seen = lost
        for unit, loop in twin.control_loops.items():
            if loop.alarms is not None and loop.alarms.fallback_condition.state.active:
                reasons.append(f"{unit}: NMPC in fallback")
        return Health(HealthState.DEGRADED if reasons else HealthState.READY, tuple(reasons))
