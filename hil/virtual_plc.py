"""A virtual PLC for one unit that speaks Modbus TCP: a pymodbus server whose registers are driven by a plant.

The plant loop, start/stop and the network faults are every virtual PLC's (:mod:`hil.virtual_plc_base`: paced
real time × ``speed`` by :class:`~hil.plant_pacing.PlantPacer`; suspend and hang on a loopback fault proxy in
front of the server). Each plant step is :class:`~hil.plant_image.PlantImage`'s (shared with the stepped PLC):
decode the commanded registers, advance the plant by ``step_s`` plant seconds, encode the measurements.

The server is pymodbus's TCP server with a ``SimDevice`` per request target; the register contents live in
a :class:`~hil.register_image.RegisterImage` that the device's access hook mirrors on every request, so
``read_tag`` and the plant loop never depend on pymodbus internals. Requests to another unit id than the
declared one are answered with Modbus exception 0x0B (gateway target device failed to respond). A held
measurement (:meth:`~hil.virtual_plc_base.VirtualPlcBase.hold_measurement`) puts NaN in a float tag's registers
(what a PLC publishes for a failed analog input); an integer tag's registers freeze at their last value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from hil.plant import Plant
from hil.plant_image import PlantImage
from hil.virtual_plc_base import (
    INTERNAL_HOST,
    VirtualPlcBase,
    VirtualPlcConfigError,
    check_plant_signals,
    register_virtual_plc,
)
from plc_adapters.tag_map import Direction, ModbusConnection, RegisterTable, TagSpec

logger = logging.getLogger(__name__)

_INPUT_FUNCTION_CODES = frozenset({4})
_HOLDING_FUNCTION_CODES = frozenset({3, 6, 16, 22, 23})


__all__ = ["VirtualPlc", "VirtualPlcConfigError", "validate_tags"]


def validate_tags(unit: str, tags: Sequence[TagSpec], plant: Plant) -> None:
    """Check a unit's tag map against its plant and the Modbus register layout.

    Raises:
        VirtualPlcConfigError: duplicate tag name; tag not produced/read by the plant; direction that
            contradicts the plant (a measured name declared commanded or vice versa); commanded tag in a
            read-only table; bit table (coil/discrete, not served by the virtual PLC); register beyond
            65535; two tags sharing a register.
    """
    check_plant_signals(unit, tags, plant)
    for tag in tags:
        where = f"unit '{unit}', tag '{tag.name}'"
        if tag.table.is_bit_table:
            raise VirtualPlcConfigError(
                f"{where}: table '{tag.table.value}' is not served by the virtual PLC (use 'holding' or 'input')"
            )
        if tag.direction is Direction.COMMANDED and not tag.table.writable:
            raise VirtualPlcConfigError(f"{where}: commanded tag must be in a writable table, not '{tag.table.value}'")
        if tag.address < 0 or tag.end_address > 65536:
            raise VirtualPlcConfigError(
                f"{where}: registers {tag.address}..{tag.end_address - 1} outside the Modbus range 0..65535"
            )
    for table in (RegisterTable.HOLDING, RegisterTable.INPUT):
        in_table = sorted((t for t in tags if t.table is table), key=lambda t: t.address)
        for first, second in zip(in_table, in_table[1:], strict=False):
            if second.address < first.end_address:
                raise VirtualPlcConfigError(
                    f"unit '{unit}': tags '{first.name}' ({table.value} {first.address}..{first.end_address - 1}) "
                    f"and '{second.name}' ({table.value} {second.address}..{second.end_address - 1}) overlap"
                )


@register_virtual_plc
class VirtualPlc(VirtualPlcBase):
    """Modbus TCP virtual PLC for ONE unit, driven by ``plant`` in paced real time × ``speed``."""

    protocol = ModbusConnection.protocol
    kind_text = "virtual PLC"

    def __init__(self, unit: str, connection: ModbusConnection, tags: Sequence[TagSpec], plant: Plant,
                 speed: float = 1.0, step_s: float = 0.1) -> None:
        if not 0 <= connection.unit_id <= 255:
            raise VirtualPlcConfigError(f"unit '{unit}': unit_id must be 0..255, got {connection.unit_id}")
        super().__init__(unit, connection, tags, plant, speed=speed, step_s=step_s)
        self._plant_image = PlantImage(self._tags, plant)
        self._image = self._plant_image.registers
        self._warned_non_finite: set[str] = set()
        self._publish_measurements()
        self._server: ModbusTcpServer | None = None

    @classmethod
    def check_tags(cls, unit: str, tags: Sequence[TagSpec], plant: Plant) -> None:
        validate_tags(unit, tags, plant)

    # ------------------------------------------------------------------ public
    def read_tag(self, name: str) -> float:
        """Current register content of tag ``name`` decoded to engineering units (KeyError if unknown)."""
        return self._image.get(name)

    def holding_registers(self, address: int, count: int) -> list[int]:
        """Raw holding registers ``address .. address+count-1`` (IndexError outside the served range)."""
        return self._image.read(RegisterTable.HOLDING, address, count)

    def input_registers(self, address: int, count: int) -> list[int]:
        """Raw input registers ``address .. address+count-1`` (IndexError outside the served range)."""
        return self._image.read(RegisterTable.INPUT, address, count)

    # ------------------------------------------------------------------ VirtualPlcBase's protocol part
    async def _serve(self, advertised_port: int) -> int:
        server = ModbusTcpServer(self._devices(), address=(INTERNAL_HOST, 0))
        if not await server.listen():
            await server.shutdown()
            raise OSError(f"virtual PLC '{self.unit}': the Modbus server cannot listen on {INTERNAL_HOST}")
        self._server = server
        sockets = getattr(server.transport, "sockets", None) or ()
        return int(sockets[0].getsockname()[1])

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
            await asyncio.sleep(0)  # let the transports run their close callbacks

    def _show_held(self, tag: TagSpec) -> None:
        self._plant_image.show_held(tag)

    def _step_once(self) -> None:
        self._warn_non_finite(self._plant_image.step(self.step_s, self._held))

    def _publish_measurements(self) -> None:
        self._warn_non_finite(self._plant_image.publish(self._held))

    def _warn_non_finite(self, names: list[str]) -> None:
        for name in names:
            if name not in self._warned_non_finite:
                self._warned_non_finite.add(name)
                logger.warning("virtual PLC '%s': plant gave non-finite '%s'; register keeps its last value",
                               self.unit, name)

    # ------------------------------------------------------------------ Modbus server plumbing
    def _devices(self) -> list[SimDevice]:
        def block(table: RegisterTable) -> list[SimData]:
            return [SimData(0, count=self._image.size(table), values=0, datatype=SimDataType.REGISTERS)]

        def bits() -> list[SimData]:
            return [SimData(0, count=1, values=[False] * 16, datatype=SimDataType.BITS)]

        def layout() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
            return (bits(), bits(), block(RegisterTable.HOLDING), block(RegisterTable.INPUT))

        devices = [SimDevice(self.connection.unit_id, simdata=layout(), action=self._on_request)]
        if self.connection.unit_id != 0:
            devices.append(SimDevice(0, simdata=layout(), action=_refuse_other_unit_id))
        return devices

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus access hook: mirror the register image into the served block, and writes into the image."""
        if function_code in _INPUT_FUNCTION_CODES:
            table = RegisterTable.INPUT
        elif function_code in _HOLDING_FUNCTION_CODES:
            table = RegisterTable.HOLDING
        else:
            return None  # coils / discrete inputs: served as the zero filler block
        if set_values:
            self._image.write(table, address, [int(v) for v in set_values])
        image = self._image.table(table)
        # the served block starts at address 0 (see _devices), so block index == register address
        current_registers[: len(image)] = image
        return None


async def _refuse_other_unit_id(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE
