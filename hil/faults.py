"""Fault injection on a virtual PLC, scheduled in plant time.

Kinds (plant seconds counted from an origin, usually the batch start):

* ``measurement_dropout`` (needs ``tag``): the instrument behind a measured tag reports no new value for the
  interval — :meth:`hil.virtual_plc_base.VirtualPlcBase.hold_measurement`: on the Modbus PLC a float tag's
  registers hold NaN (the twin's adapter then marks the tag ``Bad_DeviceFailure`` with its last usable value), an
  integer tag's registers freeze; the OPC UA PLC keeps the last value with ``Bad_SensorFailure``. This is how an
  ATR-FTIR (or any analyser) dropout looks at the PLC: the channel has no valid value.
* ``plc_disconnect``: the PLC drops off the network for the interval —
  :meth:`hil.virtual_plc_base.VirtualPlcBase.suspend_communication`: the PLC's listening socket closes and every
  connection is cut while the plant keeps running on the last commanded setpoints, then it listens on the same
  port again.

:class:`FaultInjector` is driven by its caller (the scenario runner) polling :meth:`FaultInjector.update` with
the PLC's plant time; a fault starts at the first poll at or after its ``start_s`` and ends at the first poll at
or after its ``end_s``. The actual plant times are recorded (:attr:`FaultInjector.log`), so the poll
granularity is visible in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from plc_adapters.tag_map import Direction


class FaultKind(StrEnum):
    MEASUREMENT_DROPOUT = "measurement_dropout"
    PLC_DISCONNECT = "plc_disconnect"


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: ``kind`` from ``start_s`` to ``end_s`` plant seconds (after the origin)."""

    kind: FaultKind
    start_s: float
    end_s: float
    tag: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_s < self.end_s:
            raise ValueError(f"fault {self.kind.value}: need 0 <= start_s < end_s, got {self.start_s}, {self.end_s}")
        if (self.kind is FaultKind.MEASUREMENT_DROPOUT) != (self.tag is not None):
            raise ValueError(f"fault {self.kind.value}: 'tag' is required for measurement_dropout and only for it")

    def describe(self) -> str:
        where = f" of '{self.tag}'" if self.tag else ""
        return f"{self.kind.value}{where} {self.start_s:g}..{self.end_s:g} s"


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault action taken: ``action`` is "start" or "end"; ``plant_time_s`` since the origin."""

    fault: Fault
    action: str
    plant_time_s: float


class FaultTarget(Protocol):
    """What a fault acts on: a virtual PLC on the wire (:class:`hil.virtual_plc_base.VirtualPlcBase`) or the
    stepped loop's PLC image (:class:`hil.stepped_plc.SteppedPlc`)."""

    unit: str

    @property
    def tags(self) -> Sequence[Any]: ...  # tags with ``name`` and ``direction`` (Modbus or OPC UA)

    @property
    def plant_time_s(self) -> float: ...

    def hold_measurement(self, name: str) -> None: ...

    def release_measurement(self, name: str) -> None: ...

    async def suspend_communication(self) -> None: ...

    async def resume_communication(self) -> None: ...


class FaultInjector:
    """Executes ``faults`` on ``plc`` as plant time passes ``origin_s + start_s`` / ``origin_s + end_s``."""

    def __init__(self, plc: FaultTarget, faults: tuple[Fault, ...] | list[Fault], origin_s: float = 0.0) -> None:
        for fault in faults:
            if fault.tag is not None:
                measured = {t.name for t in plc.tags if t.direction is Direction.MEASURED}
                if fault.tag not in measured:
                    raise ValueError(f"fault {fault.describe()}: unit '{plc.unit}' has no measured tag "
                                     f"'{fault.tag}'; measured: {', '.join(sorted(measured))}")
        self.plc = plc
        self.faults = tuple(faults)
        self.origin_s = origin_s
        self._active: set[int] = set()
        self._done: set[int] = set()
        self.log: list[FaultEvent] = []

    @property
    def active(self) -> tuple[Fault, ...]:
        return tuple(self.faults[i] for i in sorted(self._active))

    async def update(self) -> list[FaultEvent]:
        """Start and end the faults due at the PLC's current plant time; returns the events taken now."""
        elapsed = self.plc.plant_time_s - self.origin_s
        events: list[FaultEvent] = []
        for i, fault in enumerate(self.faults):
            if i in self._done:
                continue
            if i not in self._active and elapsed >= fault.start_s:
                await self._start(fault)
                self._active.add(i)
                events.append(FaultEvent(fault, "start", elapsed))
            if i in self._active and elapsed >= fault.end_s:
                await self._end(fault)
                self._active.discard(i)
                self._done.add(i)
                events.append(FaultEvent(fault, "end", elapsed))
        self.log.extend(events)
        return events

    async def clear(self) -> list[FaultEvent]:
        """End every active fault now (call in a ``finally``: the bench must not stay faulted)."""
        elapsed = self.plc.plant_time_s - self.origin_s
        events = []
        for i in sorted(self._active):
            await self._end(self.faults[i])
            self._done.add(i)
            events.append(FaultEvent(self.faults[i], "end", elapsed))
        self._active.clear()
        self.log.extend(events)
        return events

    async def _start(self, fault: Fault) -> None:
        if fault.kind is FaultKind.MEASUREMENT_DROPOUT:
            assert fault.tag is not None
            self.plc.hold_measurement(fault.tag)
        else:
            await self.plc.suspend_communication()

    async def _end(self, fault: Fault) -> None:
        if fault.kind is FaultKind.MEASUREMENT_DROPOUT:
            assert fault.tag is not None
            self.plc.release_measurement(fault.tag)
        else:
            await self.plc.resume_communication()
