"""The metrics/health HTTP endpoint: ``GET /metrics`` (Prometheus text exposition, ``prometheus_client``) and
``GET /health`` (JSON ``{"status": "ready" | "degraded" | "not_ready", "reasons": [...]}``; HTTP 200 when serving,
503 when not ready).

It runs on the twin's event loop (an ``asyncio`` server), so the collector reads the twin's counters between two
of its steps, never while they change. Read-only: no method changes anything, so it needs no role; it listens on
loopback by default (``[metrics] host``) and is off unless ``[metrics] enabled = true``. Each server has its own
:class:`~prometheus_client.CollectorRegistry` (no process-global state). Requests are small: a request line and
headers of at most 8 KiB, read within 5 s; anything else is answered 400/404/405 and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from twin_server.metrics.collector import RefusalCounter, TwinCollector
from twin_server.metrics.health import HealthCheck, HealthState
from twin_server.metrics.settings import MetricsSettings

if TYPE_CHECKING:
    from twin_server.server import TwinServer

log = logging.getLogger("linetwin.metrics")

MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0


class MetricsEndpoint:
    """Serves one twin's metrics and health at ``settings.host:settings.port``."""

    def __init__(self, twin: TwinServer, settings: MetricsSettings) -> None:
        self.settings = settings
        self.health = HealthCheck(twin)
        self.refusals = RefusalCounter()
        twin.audit.counters.append(self.refusals)  # every refusal, also those the audit store summarises
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TwinCollector(twin, self.health, self.refusals))
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the configured one; the one the OS chose for port 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self.settings.port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.settings.host, self.settings.port,
                                                  limit=MAX_REQUEST_BYTES)
        log.info("metrics: http://%s:%d/metrics and /health", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            status, content_type, body = self._answer(head.split(b"\r\n", 1)[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            status, content_type, body = "400 Bad Request", "text/plain", b"bad request\n"
        try:
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, request_line: bytes) -> tuple[str, str, bytes]:
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3:
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target not in ("/metrics", "/health"):
            return "404 Not Found", "text/plain", b"not found: GET /metrics or /health\n"
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        if target == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        verdict = self.health.verdict()
        code = "503 Service Unavailable" if verdict.state is HealthState.NOT_READY else "200 OK"
        return code, "application/json", json.dumps(verdict.as_json()).encode() + b"\n"
