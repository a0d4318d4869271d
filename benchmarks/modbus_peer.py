"""A changing Modbus peer for the benchmarks that run a twin in-process (``historian.py``, ``security.py``): a real
pymodbus server whose input registers hold one FLOAT32 per tag and change every 50 ms.

``mirror_throughput.py`` runs its own peer in a second process; this one shares the benchmark's event loop, which is
what the history and security overhead ratios are measured against.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from plc_adapters.modbus_codec import encode  # noqa: E402
from plc_adapters.tag_map import DataType, Direction, Range, RegisterTable, TagSpec  # noqa: E402

__all__ = ["float_tags", "modbus_peer"]


def float_tags(n: int) -> tuple[TagSpec, ...]:
    """``n`` measured FLOAT32 input-register tags ``tag_00000`` …, in °C."""
    return tuple(
        TagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-1e9, 1e9),
                table=RegisterTable.INPUT, address=2 * i, data_type=DataType.FLOAT32)
        for i in range(n)
    )


async def modbus_peer(tags: tuple[TagSpec, ...]) -> tuple[ModbusTcpServer, asyncio.Task, int]:
    """Start the peer on a free loopback port; returns the server, the task changing its values, and the port."""
    n_regs = 2 * len(tags) + 2
    bits = [SimData(0, values=[False] * 16, datatype=SimDataType.BITS)]
    simdata = (bits, bits, [SimData(0, values=[0] * 16, datatype=SimDataType.REGISTERS)],
               [SimData(0, values=[0] * n_regs, datatype=SimDataType.REGISTERS)])
    server = ModbusTcpServer(SimDevice(id=0, simdata=simdata), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]

    async def change_values() -> None:
        k = 0
        while True:
            k += 1
            regs: list[int] = []
            for i, t in enumerate(tags):
                regs += encode(t, float(k + i))
            await server.context.async_setValues(1, 4, 0, regs)  # function code 4: input registers
            await asyncio.sleep(0.05)

    return server, asyncio.create_task(change_values()), port
