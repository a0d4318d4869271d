"""A Modbus TCP peer that misbehaves on purpose: a small asyncio TCP server on 127.0.0.1.

It accepts connections, reads Modbus TCP requests (MBAP header + PDU) and answers each with whatever
``answer`` returns for it — a good read response, garbage, a wrong byte count, or nothing (``None``
closes the connection). It counts connections, so a test can count reconnect attempts as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One request as received: MBAP transaction id and unit id, the PDU, and its index on the connection."""

    transaction_id: int
    unit_id: int
    pdu: bytes
    index_on_connection: int
    connection: int

    @property
    def function_code(self) -> int:
        return self.pdu[0]

    @property
    def count(self) -> int:
        """Quantity asked for by a read request (function codes 1-4)."""
        return int.from_bytes(self.pdu[3:5], "big")


Answer = Callable[[Request], bytes | None]


def frame(request: Request, pdu: bytes, transaction_id: int | None = None, protocol_id: int = 0) -> bytes:
    """A Modbus TCP frame carrying ``pdu`` in answer to ``request``."""
    tid = request.transaction_id if transaction_id is None else transaction_id
    return struct.pack(">HHHB", tid, protocol_id, len(pdu) + 1, request.unit_id) + pdu


def good_read_answer(request: Request) -> bytes:
    """A correct read response (all zeros) for a function code 1-4 request."""
    if request.function_code in (1, 2):
        data = bytes((request.count + 7) // 8)
    else:
        data = bytes(2 * request.count)
    return frame(request, bytes([request.function_code, len(data)]) + data)


def wrong_byte_count(request: Request) -> bytes:
    """A read response whose byte count says 9 while 4 data bytes follow."""
    return frame(request, bytes([request.function_code, 9, 0, 1, 0, 2]))


def garbage(_request: Request) -> bytes:
    """Bytes that are no Modbus TCP frame at all."""
    return b"\xde\xad\xbe\xef\x00\x11" * 3


def wrong_transaction_id(request: Request) -> bytes:
    good = good_read_answer(request)
    return frame(request, good[7:], transaction_id=(request.transaction_id + 1) & 0xFFFF)


def unknown_function_code(request: Request) -> bytes:
    return frame(request, bytes([0x55, 1]))


def silent(_request: Request) -> bytes:
    """Keep the connection open and never answer (a hung PLC)."""
    return b""


def long_garbage(_request: Request) -> bytes:
    """240 bytes that are no Modbus TCP frame (protocol id 0xBEEF)."""
    return b"\xde\xad\xbe\xef\x00\x11" * 40


def hang_up(_request: Request) -> None:
    """Close the connection instead of answering."""
    return None


class MisbehavingPeer:
    """An asyncio TCP server that answers Modbus TCP requests with ``answer(request)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[Request] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # EOF ends each handler (cancelling them logs an asyncio error)
                writer.close()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=10.0)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        connection = self.connections
        try:
            for index in range(1_000_000):
                header = await reader.readexactly(7)
                transaction_id, _protocol, length, unit_id = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                request = Request(transaction_id, unit_id, pdu, index, connection)
                self.requests.append(request)
                reply = self.answer(request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.discard(task)
            self._writers.discard(writer)
