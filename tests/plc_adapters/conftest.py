"""Fixtures for plc_adapters tests: a real pymodbus TCP server on loopback and a samples recorder.

The condition poller and free-port helper come from tests/conftest.py and are offered here as fixtures too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from plc_adapters import RegisterTable, Sample
from tests.conftest import free_tcp_port, wait_until

REGISTERS_PER_TABLE = 1000
BITS_PER_TABLE = 2048

# Modbus function codes that read (and write) each table, as used by the datastore API.
_READ_CODE = {RegisterTable.COIL: 1, RegisterTable.DISCRETE: 2, RegisterTable.HOLDING: 3, RegisterTable.INPUT: 4}
WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16})


@dataclass
class SampleRecorder:
    """``on_samples`` callback that keeps every batch with the loop time it arrived at."""

    batches: list[tuple[float, list[Sample]]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, samples: list[Sample]) -> None:
        async with self._changed:
            self.batches.append((asyncio.get_running_loop().time(), samples))
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[dict[str, Sample]], bool], timeout_s: float = 5.0, after: int = 0,
        what: str = "samples",
    ) -> tuple[int, float, dict[str, Sample]]:
        """First batch with index >= ``after`` satisfying ``predicate``: (index, loop time, samples by tag)."""
        index = after

        def found() -> bool:
            nonlocal index
            while index < len(self.batches):
                if predicate({s.tag: s for s in self.batches[index][1]}):
                    return True
                index += 1
            return False

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(found), timeout_s)
            except TimeoutError:
                raise AssertionError(f"no batch of {what} within {timeout_s} s") from None
        arrived, samples = self.batches[index]
        return index, arrived, {s.tag: s for s in samples}


class ModbusTestServer:
    """A real pymodbus TCP server on 127.0.0.1 answering any device id.

    Tables: holding and input registers 0..999, coils and discrete inputs 0..2047. Every request PDU
    received is kept in ``requests``. ``refuse_reads`` / ``refuse_writes`` make the server answer with a
    Modbus exception; ``response_delay_s`` makes it answer late (a hung PLC). ``restart()`` brings it back
    on the same port with the register contents it had, like a PLC with retentive memory.
    """

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[ModbusPDU] = []
        self.refuse_reads: ExcCodes | None = None
        self.refuse_writes: ExcCodes | None = None
        self.response_delay_s = 0.0
        self._direct_access = False  # datastore access by the test itself: no fault injection
        self._server: ModbusTcpServer | None = None
        self._memory: dict[RegisterTable, list[int]] = {
            RegisterTable.HOLDING: [0] * REGISTERS_PER_TABLE,
            RegisterTable.INPUT: [0] * REGISTERS_PER_TABLE,
            RegisterTable.COIL: [0] * BITS_PER_TABLE,
            RegisterTable.DISCRETE: [0] * BITS_PER_TABLE,
        }

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        bits = [SimDataType.BITS] * 2
        regs = [SimDataType.REGISTERS] * 2
        tables = (RegisterTable.COIL, RegisterTable.DISCRETE, RegisterTable.HOLDING, RegisterTable.INPUT)
        simdata = tuple(
            [SimData(0, values=[bool(v) for v in self._memory[t]] if kind is SimDataType.BITS else self._memory[t],
                     datatype=kind)]
            for t, kind in zip(tables, bits + regs, strict=True)
        )
        device = SimDevice(id=0, simdata=simdata, action=self._action)
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port), trace_pdu=self._trace)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Shut the server down (closes client connections); registers are kept for ``restart``."""
        if self._server is None:
            return
        for table in self._memory:
            self._memory[table] = await self.get(table, 0, len(self._memory[table]))
        await self._server.shutdown()
        self._server = None

    async def restart(self) -> None:
        await self.start()

    async def get(self, table: RegisterTable, address: int, count: int) -> list[int]:
        """Current register (or bit, as 0/1) values, read from the server's datastore directly."""
        if self._server is None:
            return self._memory[table][address : address + count]
        self._direct_access = True
        try:
            values = await self._server.context.async_getValues(1, _READ_CODE[table], address, count)
        finally:
            self._direct_access = False
        assert isinstance(values, list), values
        return [int(v) for v in values]

    async def set(self, table: RegisterTable, address: int, values: list[int]) -> None:
        """Set registers (or bits) in the datastore directly, as the PLC program would."""
        assert self._server is not None
        payload: list[int] | list[bool] = [bool(v) for v in values] if table.is_bit_table else list(values)
        self._direct_access = True
        try:
            result = await self._server.context.async_setValues(1, _READ_CODE[table], address, payload)
        finally:
            self._direct_access = False
        assert result is None, result

    def write_requests(self) -> list[ModbusPDU]:
        return [pdu for pdu in self.requests if pdu.function_code in WRITE_FUNCTION_CODES]

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append(pdu)
        return pdu

    async def _action(
        self, function_code: int, _start: int, _address: int, _count: int, _registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self._direct_access:
            return None
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)  # fault injection: a PLC that answers late
        if function_code in WRITE_FUNCTION_CODES:
            return self.refuse_writes
        return self.refuse_reads


@pytest.fixture
async def modbus_server() -> AsyncIterator[ModbusTestServer]:
    """A running ModbusTestServer on a free loopback port, shut down after the test."""
    server = ModbusTestServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def modbus_server_factory() -> AsyncIterator[Callable[[int], ModbusTestServer]]:
    """Makes (not starts) ModbusTestServers on a given port (0 = any free port); all are stopped after the test."""
    servers: list[ModbusTestServer] = []

    def make(port: int = 0) -> ModbusTestServer:
        server = ModbusTestServer()
        server.port = port
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
def recorder() -> SampleRecorder:
    """An ``on_samples`` callback that records every batch."""
    return SampleRecorder()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Awaitable[None]]:
    """tests.conftest.wait_until (condition, timeout_s, poll_s, what)."""
    return wait_until


@pytest.fixture(name="free_tcp_port")
def free_tcp_port_fixture() -> int:
    """A loopback port nothing listens on."""
    return free_tcp_port()
