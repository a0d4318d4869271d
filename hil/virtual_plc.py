"""A virtual PLC for one unit: a Modbus TCP server whose registers are driven by a plant simulation.

The plant loop runs in paced real time (or ``speed`` × faster): every ``step_s / speed`` wall seconds
it decodes the commanded registers, advances the plant by ``step_s`` plant seconds and encodes the
measurements into their registers. Deadlines are absolute (step k is due at t0 + k·period), so plant time
does not drift against the wall clock; a late loop catches up, and a loop more than one wall second behind
drops the backlog rather than running in a burst: a warning if the plant's steps cost more CPU than the
pace allows (the plant is slower than ``speed`` × real time), an info line if they do not (the machine or
the event loop was busy elsewhere). A single stall of the event loop longer than that second (e.g. the twin
building its NMPC at start-up in the same process) is not plant lag: the plant clock pauses for it
(``paused_wall_s``, logged at debug level and in the stop line) instead of warning; shorter stalls are
caught up as before, so plant time stays in step with a twin clocked by the wall.

The server is pymodbus's TCP server with a ``SimDevice`` per request target; the register contents live in
a :class:`~hil.register_image.RegisterImage` that the device's access hook mirrors on every request, so
``read_tag`` and the plant loop never depend on pymodbus internals. Requests to another unit id than the
declared one are answered with Modbus exception 0x0B (gateway target device failed to respond).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from hil.plant import Plant
from hil.plant_pacing import PlantPacer
from hil.register_image import RegisterImage
from plc_adapters.modbus_codec import raw_to_registers
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, RegisterTable, TagSpec

logger = logging.getLogger(__name__)

_INPUT_FUNCTION_CODES = frozenset({4})
_HOLDING_FUNCTION_CODES = frozenset({3, 6, 16, 22, 23})


class VirtualPlcConfigError(ValueError):
    """The tag map cannot be served for this plant (names the unit and the tag)."""


def validate_tags(unit: str, tags: Sequence[TagSpec], plant: Plant) -> None:
    """Check a unit's tag map against its plant and the Modbus register layout.

    Raises:
        VirtualPlcConfigError: duplicate tag name; tag not produced/read by the plant; direction that
            contradicts the plant (a measured name declared commanded or vice versa); commanded tag in a
            read-only table; bit table (coil/discrete, not served by the virtual PLC); register beyond
            65535; two tags sharing a register.
    """
    seen: set[str] = set()
    for tag in tags:
        where = f"unit '{unit}', tag '{tag.name}'"
        if tag.name in seen:
            raise VirtualPlcConfigError(f"{where}: declared twice")
        seen.add(tag.name)
        if tag.name in plant.measured_names:
            expected = Direction.MEASURED
        elif tag.name in plant.commanded_names:
            expected = Direction.COMMANDED
        else:
            raise VirtualPlcConfigError(
                f"{where}: the '{plant.kind}' plant has no such signal; measured: "
                f"{', '.join(plant.measured_names)}; commanded: {', '.join(plant.commanded_names)}"
            )
        if tag.direction is not expected:
            raise VirtualPlcConfigError(
                f"{where}: declared {tag.direction.value} but the '{plant.kind}' plant has it {expected.value}"
            )
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


class VirtualPlc:
    """Modbus TCP virtual PLC for ONE unit, driven by ``plant`` in paced real time × ``speed``."""

    def __init__(
        self,
        unit: str,
        connection: ModbusConnection,
        tags: Sequence[TagSpec],
        plant: Plant,
        speed: float = 1.0,
        step_s: float = 0.1,
    ) -> None:
        if not speed > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': speed must be > 0, got {speed!r}")
        if not step_s > 0.0:
            raise VirtualPlcConfigError(f"unit '{unit}': step_s must be > 0 plant seconds, got {step_s!r}")
        if not 0 <= connection.port <= 65535:
            raise VirtualPlcConfigError(f"unit '{unit}': port must be 0..65535, got {connection.port}")
        if not 0 <= connection.unit_id <= 255:
            raise VirtualPlcConfigError(f"unit '{unit}': unit_id must be 0..255, got {connection.unit_id}")
        validate_tags(unit, tags, plant)
        self.unit = unit
        self.connection = connection
        self.plant = plant
        self.speed = float(speed)
        self.step_s = float(step_s)
        self._tags = tuple(tags)
        self._commanded = tuple(t for t in self._tags if t.direction is Direction.COMMANDED)
        self._measured = tuple(t for t in self._tags if t.direction is Direction.MEASURED)
        self._image = RegisterImage(self._tags)
        self._held: set[str] = set()
        self._commands = plant.initial_commands()
        for tag in self._commanded:
            self._image.set(tag.name, self._commands[tag.name])
        self._publish_measurements()
        self._port = connection.port
        self._pacer = PlantPacer(unit, self.step_s, self.speed, self._step_once, logger)
        self._warned_non_finite: set[str] = set()
        self._communicating = False
        self._server: ModbusTcpServer | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ public
    @property
    def port(self) -> int:
        """The TCP port served (the one picked by the OS after a start with port 0)."""
        return self._port

    @property
    def plant_time_s(self) -> float:
        """Plant time advanced by the loop since construction, s."""
        return self._pacer.plant_time_s

    @property
    def dropped_steps(self) -> int:
        """Steps skipped because the loop fell more than 1 s of wall time behind (0 on a healthy bench)."""
        return self._pacer.dropped_steps

    @property
    def paused_wall_s(self) -> float:
        """Wall seconds the plant clock paused because the event loop was blocked elsewhere (start-up, ...)."""
        return self._pacer.paused_wall_s

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    @property
    def tags(self) -> tuple[TagSpec, ...]:
        return self._tags

    def read_tag(self, name: str) -> float:
        """Current register content of tag ``name`` decoded to engineering units (KeyError if unknown)."""
        return self._image.get(name)

    def holding_registers(self, address: int, count: int) -> list[int]:
        """Raw holding registers ``address .. address+count-1`` (IndexError outside the served range)."""
        return self._image.read(RegisterTable.HOLDING, address, count)

    def input_registers(self, address: int, count: int) -> list[int]:
        """Raw input registers ``address .. address+count-1`` (IndexError outside the served range)."""
        return self._image.read(RegisterTable.INPUT, address, count)

    @property
    def communicating(self) -> bool:
        """True while the Modbus server answers (False after stop() and during suspend_communication())."""
        return self._communicating

    @property
    def held_measurements(self) -> frozenset[str]:
        """Measured tags currently held by :meth:`hold_measurement`."""
        return frozenset(self._held)

    def hold_measurement(self, name: str) -> None:
        """Fault: the instrument behind measured tag ``name`` reports no new value until :meth:`release_measurement`.

        A float tag's registers then hold NaN (what a PLC publishes for a failed analog input; the twin's
        Modbus adapter marks a non-finite value ``Bad_DeviceFailure`` keeping the last usable value); an integer
        tag cannot encode NaN, so its registers freeze at their last value. The plant keeps running.

        Raises:
            KeyError: ``name`` is not a measured tag of this PLC.
        """
        tag = self._measured_tag(name)
        self._held.add(name)
        if tag.data_type in (DataType.FLOAT32, DataType.FLOAT64):
            registers = raw_to_registers(math.nan, tag.data_type, tag.byte_order, tag.word_order)
            self._image.write(tag.table, tag.address, registers)
        logger.info("virtual PLC '%s': measurement '%s' held (no new values) at plant time %.1f s",
                    self.unit, name, self.plant_time_s)

    def release_measurement(self, name: str) -> None:
        """End :meth:`hold_measurement`: the tag gets the plant's current value again (KeyError if unknown)."""
        self._measured_tag(name)
        if name in self._held:
            self._held.discard(name)
            self._publish_measurements()
            logger.info("virtual PLC '%s': measurement '%s' released at plant time %.1f s",
                        self.unit, name, self.plant_time_s)

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one, kept for later restarts) and start the plant loop.

        Does nothing if already running. Raises OSError naming the unit if the address cannot be bound.
        """
        async with self._lock:
            if self._server is not None:
                return
            await self._listen()
            self._loop_task = asyncio.create_task(self._pacer.run(), name=f"hil-plant-{self.unit}")
            logger.info("virtual PLC '%s' (%s) listening on %s:%d, speed %g×",
                        self.unit, self.plant.kind, self.connection.host, self._port, self.speed)

    async def stop(self) -> None:
        """Stop the plant loop, close the listening socket and every client connection. Idempotent.

        Like a PLC with retentive memory, the registers keep their contents; the plant is frozen until the
        next start(), which listens on the same port again (pymodbus binds with SO_REUSEADDR, so the
        server side's TIME_WAIT connections do not block it).
        """
        async with self._lock:
            task, self._loop_task = self._loop_task, None
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:  # already logged by the loop; stopping must still close the server
                    pass
            if self._server is not None:
                await self._close_server()
                logger.info("virtual PLC '%s' stopped at plant time %.1f s (plant clock paused %.1f s while the "
                            "event loop was blocked elsewhere, %d steps dropped)", self.unit, self.plant_time_s,
                            self.paused_wall_s, self.dropped_steps)

    async def suspend_communication(self) -> None:
        """Fault: the PLC drops off the network (server closed, every connection dropped) while the plant loop
        keeps running on the last commanded values, as a real process does when its PLC's link fails.

        Does nothing unless running and communicating.
        """
        async with self._lock:
            if self._server is None or not self._communicating:
                return
            await self._close_server(keep_running=True)
            logger.info("virtual PLC '%s': communication suspended at plant time %.1f s", self.unit,
                        self.plant_time_s)

    async def resume_communication(self) -> None:
        """End :meth:`suspend_communication`: listen on the same port again. Does nothing unless suspended."""
        async with self._lock:
            if self._server is None or self._communicating:
                return
            await self._listen()
            logger.info("virtual PLC '%s': communication resumed at plant time %.1f s", self.unit, self.plant_time_s)

    async def _listen(self) -> None:
        server = ModbusTcpServer(self._devices(), address=(self.connection.host, self._port))
        if not await server.listen():
            await server.shutdown()
            raise self._bind_error()
        sockets = getattr(server.transport, "sockets", None) or ()
        if sockets:
            self._port = sockets[0].getsockname()[1]
        self._server = server
        self._communicating = True

    async def _close_server(self, keep_running: bool = False) -> None:
        server, was_communicating = self._server, self._communicating
        self._communicating = False
        if not keep_running:
            self._server = None
        if server is not None and was_communicating:
            await server.shutdown()
            await asyncio.sleep(0)  # let the transports run their close callbacks

    def _measured_tag(self, name: str) -> TagSpec:
        for tag in self._measured:
            if tag.name == name:
                return tag
        raise KeyError(f"virtual PLC '{self.unit}': no measured tag '{name}'; measured: "
                       f"{', '.join(t.name for t in self._measured)}")

    # ------------------------------------------------------------------ plant loop (paced by PlantPacer)
    def _step_once(self) -> None:
        for tag in self._commanded:
            value = self._image.get(tag.name)
            self._commands[tag.name] = value
        self.plant.step(self.step_s, self._commands)
        self._publish_measurements()

    def _publish_measurements(self) -> None:
        values = self.plant.measurements()
        for tag in self._measured:
            if tag.name in self._held:
                continue
            if not self._image.set(tag.name, values[tag.name]) and tag.name not in self._warned_non_finite:
                self._warned_non_finite.add(tag.name)
                logger.warning("virtual PLC '%s': plant gave non-finite '%s'; register keeps its last value",
                               self.unit, tag.name)

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

    def _bind_error(self) -> OSError:
        """Reproduce the bind failure pymodbus swallowed, to report its reason."""
        host, port = self.connection.host, self._port
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, _, _, _, sockaddr = infos[0]
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(sockaddr)
        except OSError as exc:
            return OSError(exc.errno, f"virtual PLC '{self.unit}': cannot listen on {host}:{port}: {exc.strerror}")
        return OSError(errno.EADDRNOTAVAIL, f"virtual PLC '{self.unit}': cannot listen on {host}:{port}")


async def _refuse_other_unit_id(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE
