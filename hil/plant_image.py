"""A plant wired to a PLC register image: the per-step logic every register-based virtual PLC shares.

One plant step reads the commanded tags' registers (engineering values, decoded with the tag's codec), advances the
plant by ``step_s`` plant seconds holding them, and encodes the plant's measurements into their registers. A held
measurement (a failed instrument) is not published: a float tag's registers hold NaN (what a PLC publishes for a
failed analog input), an integer tag's registers freeze at their last value. A non-finite measurement from the plant
leaves its registers as they were.

Used by the socket PLC (:class:`hil.virtual_plc.VirtualPlc`, paced by :class:`~hil.plant_pacing.PlantPacer`) and the
stepped lockstep PLC (:class:`hil.stepped_plc.SteppedPlc`), so both move the same registers the same way.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from hil.plant import Plant
from hil.register_image import RegisterImage
from plc_adapters.modbus_codec import raw_to_registers
from plc_adapters.tag_map import DataType, Direction, TagSpec


class PlantImage:
    """``plant`` and the register image of ``tags``; commanded registers start at the plant's initial commands and
    measured ones at its initial measurements."""

    def __init__(self, tags: Sequence[TagSpec], plant: Plant) -> None:
        self.plant = plant
        self.registers = RegisterImage(tags)
        self._commanded = tuple(t for t in tags if t.direction is Direction.COMMANDED)
        self._measured = tuple(t for t in tags if t.direction is Direction.MEASURED)
        self._commands = plant.initial_commands()
        for tag in self._commanded:
            self.registers.set(tag.name, self._commands[tag.name])

    def step(self, step_s: float, held: Collection[str]) -> list[str]:
        """One plant step of ``step_s`` plant seconds on the commanded registers, then :meth:`publish`."""
        for tag in self._commanded:
            self._commands[tag.name] = self.registers.get(tag.name)
        self.plant.step(step_s, self._commands)
        return self.publish(held)

    def publish(self, held: Collection[str]) -> list[str]:
        """Encode the plant's measurements (except those in ``held``) into their registers.

        Returns:
            The measured tags whose plant value was non-finite (their registers kept their last contents).
        """
        values = self.plant.measurements()
        return [tag.name for tag in self._measured
                if tag.name not in held and not self.registers.set(tag.name, values[tag.name])]

    def show_held(self, tag: TagSpec) -> None:
        """Show measured ``tag`` as a failed instrument: NaN in a float tag's registers (an integer tag's freeze)."""
        if tag.data_type in (DataType.FLOAT32, DataType.FLOAT64):
            self.registers.write(tag.table, tag.address,
                                 raw_to_registers(math.nan, tag.data_type, tag.byte_order, tag.word_order))
