"""The twin's OPC UA server: asyncua server + address space + line runtime + checked writes."""

from __future__ import annotations

import logging
from urllib.parse import urlparse, urlunparse

from asyncua import Server, ua

from twin_server.address_space import LineAddressSpace, build_address_space
from twin_server.config import LineConfig
from twin_server.runtime import AdapterFactory, LineRuntime
from twin_server.write_guard import GuardedAttributeService

log = logging.getLogger("linetwin.server")

PRODUCT_URI = "urn:linetwin"


def endpoint_with_port(endpoint: str, port: int) -> str:
    """The endpoint URL with its port replaced (``port`` 0 is not allowed: OPC UA clients need a real port)."""
    parsed = urlparse(endpoint)
    host = parsed.hostname or "127.0.0.1"
    return urlunparse(parsed._replace(netloc=f"{host}:{port}"))


class TwinServer:
    """Serves one line over OPC UA and mirrors its PLCs.

    ``endpoint`` overrides ``[server] endpoint`` of the config (e.g. another port for tests).
    """

    def __init__(self, config: LineConfig, endpoint: str | None = None,
                 adapter_factory: AdapterFactory | None = None) -> None:
        self.config = config
        self.endpoint = endpoint or config.server.endpoint
        self._adapter_factory = adapter_factory
        self._server: Server | None = None
        self.space: LineAddressSpace | None = None
        self.runtime: LineRuntime | None = None

    @property
    def server(self) -> Server:
        if self._server is None:
            raise RuntimeError("twin server is not started")
        return self._server

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"linetwin — {self.config.name}")
        await server.set_application_uri(f"urn:linetwin:{self.config.name}")
        server.product_uri = PRODUCT_URI
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.space = await build_address_space(server, self.config)
        kwargs = {"adapter_factory": self._adapter_factory} if self._adapter_factory else {}
        self.runtime = LineRuntime(self.config, server, self.space, **kwargs)
        server.iserver.attribute_service = GuardedAttributeService(
            server.iserver.aspace, self.space.tag_by_node(), self.runtime.write_setpoint,
        )
        await server.start()
        self._server = server
        await self.runtime.start()
        log.info("serving line '%s' at %s (%d units, %d tags)", self.config.name, self.endpoint,
                 len(self.config.units), len(self.space.tag_nodes))

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        log.info("line '%s' stopped", self.config.name)
