"""A virtual PLC without a socket, for the stepped lockstep loop: plant + register image + the adapter's scan.

What :class:`~hil.virtual_plc.VirtualPlc` does per plant step — decode the commanded registers, advance the plant
by ``step_s`` holding them, encode the measurements (a held measurement keeps NaN / its frozen registers) — is the
same :class:`~hil.plant_image.PlantImage`; it runs here when its owner calls :meth:`SteppedPlc.step`, on a
:class:`~process_models.plant_clock.SteppedClock`. The twin's side of the wire is replaced by what its Modbus
adapter does with the same registers:

* :meth:`SteppedPlc.scan` decodes every tag with the adapter's rule
  (:func:`plc_adapters.modbus_sample.sample_from_registers`); a non-finite or undecodable value is Bad (the
  control core sees ``None``), a value outside the tag's EURange is Uncertain (still used).
  While the PLC is disconnected every tag is Bad.
* :meth:`SteppedPlc.write` is the guarded setpoint write: refused while disconnected, outside the tag's write
  limits, or against its ``max_rate`` (the shared step-bounded rule, :mod:`plc_adapters.rate_limit`, in plant
  seconds); else the value is encoded into the holding registers, where the next plant step reads it.

The fault hooks (``hold_measurement``, ``release_measurement``, ``suspend_communication``,
``resume_communication``) have the virtual PLC's meaning, so :class:`hil.faults.FaultInjector` drives both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from hil.plant import Plant
from hil.plant_image import PlantImage
from plc_adapters.modbus_sample import sample_from_registers
from plc_adapters.rate_limit import rate_limit_refusal
from plc_adapters.tag_map import Direction, TagSpec
from process_models.plant_clock import SteppedClock


class SteppedWriteRefused(RuntimeError):
    """A setpoint write the adapter would refuse (PLC down, outside write limits, rate limit)."""


class SteppedPlc:
    """The PLC image of one unit driven step by step on ``clock`` (plant time = ``clock.now()``)."""

    def __init__(self, unit: str, tags: Sequence[TagSpec], plant: Plant, step_s: float,
                 clock: SteppedClock | None = None) -> None:
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"unit '{unit}': step_s must be > 0 plant seconds, got {step_s!r}")
        self.unit = unit
        self.plant = plant
        self.step_s = float(step_s)
        self.clock = clock if clock is not None else SteppedClock()
        self._tags = tuple(tags)
        self._measured = [t for t in self._tags if t.direction is Direction.MEASURED]
        self._commanded = [t for t in self._tags if t.direction is Direction.COMMANDED]
        self._plant_image = PlantImage(self._tags, plant)
        self._image = self._plant_image.registers
        self._held: set[str] = set()
        self._rate_reference: dict[str, tuple[float, float]] = {}
        for tag in self._commanded:
            self._rate_reference[tag.name] = (self._image.get(tag.name), self.clock.now())
        self._communicating = True
        self.steps = 0
        self._publish_measurements()

    @property
    def tags(self) -> tuple[TagSpec, ...]:
        return self._tags

    @property
    def plant_time_s(self) -> float:
        return self.clock.now()

    @property
    def communicating(self) -> bool:
        return self._communicating

    @property
    def held_measurements(self) -> frozenset[str]:
        return frozenset(self._held)

    def read_tag(self, name: str) -> float:
        """The tag's current register contents, decoded (engineering units)."""
        return self._image.get(name)

    # -- the plant step ---------------------------------------------------------------------------------------
    def step(self) -> None:
        """One plant step of ``step_s`` on the commanded registers; plant time advances by ``step_s``."""
        self._plant_image.step(self.step_s, self._held)
        self.steps += 1
        self.clock.advance(self.step_s)

    def _publish_measurements(self) -> None:
        self._plant_image.publish(self._held)  # a non-finite value leaves the register as it was

    # -- the twin's adapter, without the wire ------------------------------------------------------------------
    def scan(self) -> dict[str, float | None]:
        """Each tag's usable engineering value as the adapter's scan would give it (None = Bad)."""
        if not self._communicating:
            return dict.fromkeys((t.name for t in self._tags), None)
        stamp = datetime.fromtimestamp(self.clock.now(), UTC)  # plant time: the stepped loop reads no wall clock
        out: dict[str, float | None] = {}
        for tag in self._tags:
            sample = sample_from_registers(tag, self._image.read(tag.table, tag.address, tag.register_count), stamp,
                                           last_value=None)
            out[tag.name] = None if sample.quality.is_bad else sample.value
        return out

    def write(self, name: str, value: float) -> None:
        """Guarded setpoint write (SteppedWriteRefused naming the reason, nothing written)."""
        tag = next((t for t in self._commanded if t.name == name), None)
        if tag is None:
            raise SteppedWriteRefused(f"unit '{self.unit}': no commanded tag '{name}'")
        if not self._communicating:
            raise SteppedWriteRefused(f"unit '{self.unit}': PLC not connected")
        limits = tag.effective_write_limits
        if not (math.isfinite(value) and limits.contains(value)):
            raise SteppedWriteRefused(f"{name} = {value!r} outside the write limits {limits.low:g}..{limits.high:g}")
        now = self.clock.now()
        if tag.max_rate is not None:
            why = rate_limit_refusal(tag.max_rate, tag.unit_code, self._rate_reference.get(name), value, now)
            if why is not None:
                raise SteppedWriteRefused(f"{name}: {why}")
        self._image.set(name, value)
        self._rate_reference[name] = (self._image.get(name), now)

    # -- faults (hil.faults.FaultInjector) ------------------------------------------------------------------
    def hold_measurement(self, name: str) -> None:
        tag = self._measured_tag(name)
        self._held.add(name)
        self._plant_image.show_held(tag)

    def release_measurement(self, name: str) -> None:
        self._measured_tag(name)
        if name in self._held:
            self._held.discard(name)
            self._publish_measurements()

    async def suspend_communication(self) -> None:
        self._communicating = False

    async def resume_communication(self) -> None:
        self._communicating = True

    def _measured_tag(self, name: str) -> TagSpec:
        for tag in self._measured:
            if tag.name == name:
                return tag
        raise KeyError(f"stepped PLC '{self.unit}': no measured tag '{name}'; measured: "
                       f"{', '.join(t.name for t in self._measured)}")
