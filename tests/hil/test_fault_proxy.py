"""The loopback fault proxy in front of a virtual PLC's server: relays, hangs, drops — over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hil.fault_proxy import FaultProxy

SILENCE_S = 0.3
"""How long a hung proxy is watched for a byte that must not come (a bound on waiting, not a synchronisation)."""


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = FaultProxy("virtual PLC 'echo'", "127.0.0.1", 0)
    proxy.target = ("127.0.0.1", echo.sockets[0].getsockname()[1])
    await proxy.listen()
    yield proxy
    await proxy.drop()
    echo.close()


async def _round_trip(port: int, payload: bytes) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), 5.0), reader, writer


async def test_bytes_are_relayed_both_ways(proxy: FaultProxy) -> None:
    echoed, _, writer = await _round_trip(proxy.port, b"\x00\x01read holding registers")
    assert echoed == b"\x00\x01read holding registers"
    writer.close()


async def test_a_hung_proxy_keeps_connections_open_and_answers_nothing_then_cuts_them(proxy: FaultProxy) -> None:
    _, reader, writer = await _round_trip(proxy.port, b"before")
    proxy.hang()
    writer.write(b"during")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(100), SILENCE_S)
    assert not reader.at_eof()  # still connected: a hang, not a disconnect
    late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # accepted ...
    late_writer.write(b"hello")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late_reader.read(100), SILENCE_S)  # ... and never answered
    proxy.unhang()
    assert await asyncio.wait_for(reader.read(100), 5.0) == b""  # the hung connections are cut, bytes never sent
    echoed, _, again = await _round_trip(proxy.port, b"after")
    assert echoed == b"after"
    for w in (writer, late_writer, again):
        w.close()


async def test_a_dropped_proxy_refuses_connections_and_listens_on_the_same_port_again(proxy: FaultProxy) -> None:
    port = proxy.port
    _, reader, writer = await _round_trip(port, b"x")
    await proxy.drop()
    assert await asyncio.wait_for(reader.read(100), 5.0) == b""
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await proxy.listen()
    assert proxy.port == port
    echoed, _, again = await _round_trip(port, b"back")
    assert echoed == b"back"
    writer.close()
    again.close()


async def test_a_taken_port_fails_naming_the_plc() -> None:
    first = FaultProxy("virtual PLC 'a'", "127.0.0.1", 0)
    first.target = ("127.0.0.1", 9)  # never connected to: nobody connects in this test
    await first.listen()
    port = first.port
    try:
        with pytest.raises(OSError, match="virtual PLC 'b'.*cannot listen"):
            await FaultProxy("virtual PLC 'b'", "127.0.0.1", port).bind()
    finally:
        await first.drop()
