"""A HIL bench: the virtual PLCs of a line started and stopped together."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from hil.virtual_plc_base import VirtualPlcBase, VirtualPlcConfigError


class HilBench:
    """Several virtual PLCs (one per unit, any protocol), started and stopped as one bench.

    Usable as ``async with HilBench(plcs) as bench: ...``.
    """

    def __init__(self, plcs: Sequence[VirtualPlcBase]) -> None:
        by_unit: dict[str, VirtualPlcBase] = {}
        for plc in plcs:
            if plc.unit in by_unit:
                raise VirtualPlcConfigError(f"unit '{plc.unit}': two virtual PLCs for the same unit")
            by_unit[plc.unit] = plc
        self._plcs = by_unit

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(self._plcs)

    def plc(self, unit: str) -> VirtualPlcBase:
        """The virtual PLC of ``unit`` (KeyError naming the known units otherwise)."""
        try:
            return self._plcs[unit]
        except KeyError:
            raise KeyError(f"no virtual PLC for unit '{unit}'; units: {', '.join(self._plcs)}") from None

    async def start(self) -> None:
        """Start every PLC in order; if one fails, stop those already started and re-raise."""
        started: list[VirtualPlcBase] = []
        try:
            for plc in self._plcs.values():
                await plc.start()
                started.append(plc)
        except BaseException:
            for plc in reversed(started):
                await plc.stop()
            raise

    async def stop(self) -> None:
        """Stop every PLC (idempotent)."""
        for plc in self._plcs.values():
            await plc.stop()

    async def __aenter__(self) -> HilBench:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
