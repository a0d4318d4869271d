"""A loopback TCP proxy in front of a virtual PLC's server: the network faults of a PLC, whatever its protocol.

The PLC's server listens on an internal port (picked by the OS on the loopback side); the proxy listens on the
PLC's advertised host:port and relays bytes both ways, one upstream connection per client connection. Faults act
on the relay, never on the server's internals:

* :meth:`FaultProxy.drop` — the PLC drops off the network: the listening socket closes and every client
  connection is cut (the server behind keeps running); :meth:`FaultProxy.listen` serves the same port again.
* :meth:`FaultProxy.hang` — the PLC's communication task hangs: connections stay open, nothing more is read from
  or sent to any client (new connections are accepted and never answered); :meth:`FaultProxy.unhang` ends it and
  cuts the hung connections (as a PLC's watchdog restart would).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

logger = logging.getLogger(__name__)

CHUNK_BYTES = 65536
"""Bytes relayed per read."""


class _Relay:
    """One client connection and its upstream connection to the PLC's server."""

    def __init__(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.client_reader, self.client_writer = client
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def cut(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """Relays ``host:port`` (0 picks a free port, kept for :meth:`listen` again) to the PLC's internal server.

    Args:
        name: who the proxy stands for, in log lines and errors (``virtual PLC 'crystallizer'``).
        host / port: the advertised address.
    """

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.target: tuple[str, int] | None = None
        """Where the PLC's server listens; set before clients are served."""
        self._server: asyncio.Server | None = None
        self._relays: set[_Relay] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def hung(self) -> bool:
        return not self._flowing.is_set()

    async def bind(self) -> int:
        """Bind the advertised address (clients are served from :meth:`listen` on); returns the port, so a server can
        advertise it before it starts. OSError names the PLC and the address."""
        if self._server is None:
            try:
                self._server = await asyncio.start_server(self._accept, self.host, self.port, start_serving=False)
            except OSError as exc:
                raise OSError(exc.errno, f"{self.name}: cannot listen on {self.host}:{self.port}: "
                                         f"{exc.strerror or exc}") from exc
            self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def listen(self) -> None:
        """Serve the advertised address, relaying to :attr:`target`."""
        if self.target is None:
            raise RuntimeError(f"{self.name}: the proxy has no target server")
        await self.bind()
        assert self._server is not None
        await self._server.start_serving()

    async def drop(self) -> None:
        """Close the listening socket and cut every connection (the PLC is off the network)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._cut_all()
        self._flowing.set()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        await asyncio.sleep(0)  # let the transports run their close callbacks

    def hang(self) -> None:
        """Stop relaying in both directions; connections stay open."""
        self._flowing.clear()

    def unhang(self) -> None:
        """End :meth:`hang`: the hung connections are cut, new ones are relayed."""
        if self.hung:
            self._cut_all()
            self._flowing.set()

    def _cut_all(self) -> None:
        relays, self._relays = self._relays, set()
        for relay in relays:
            relay.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay = _Relay((reader, writer))
        self._relays.add(relay)
        try:
            await self._flowing.wait()  # a hung PLC accepts and never answers
            assert self.target is not None
            upstream_reader, relay.upstream_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            self._relays.discard(relay)
            writer.transport.abort()
            return
        relay.tasks = [asyncio.create_task(self._pump(reader, relay.upstream_writer, relay)),
                       asyncio.create_task(self._pump(upstream_reader, writer, relay))]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, relay: _Relay) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await self._flowing.wait()  # bytes read just before a hang are held, never delivered
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        if relay in self._relays:  # one side closed: close the other (a clean close of the PLC's server included)
            self._relays.discard(relay)
            relay.cut()
