"""The demo line, live: HIL virtual PLCs + twin server on free loopback ports."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hil.bench import HilBench
from linetwin_cli.bench_launcher import build_bench, config_for_bench
from tests.conftest import free_tcp_port
from tests.security_helpers import add_operator
from twin_server.config import LineConfig, load_line_config
from twin_server.metrics.settings import MetricsSettings
from twin_server.server import TwinServer

PILOT = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"
NAMESPACE = "urn:linetwin:pilot_line"


@dataclass
class LiveLine:
    config: LineConfig
    bench: HilBench
    twin: TwinServer

    @property
    def url(self) -> str:
        return self.twin.endpoint


@asynccontextmanager
async def live_pilot_line(scan_period_s: float = 0.1, speed: float = 20.0,
                          data_dir: Path | None = None,
                          metrics: MetricsSettings | None = None) -> AsyncIterator[LiveLine]:
    """The pilot line with an ``operator`` user (tests.security_helpers.OPERATOR) in this test's data dir, or in
    ``data_dir`` (users file, PKI, audit store) — a module- or session-scoped line, which outlives the per-test
    ``LINETWIN_DATA_DIR`` of tests/conftest.py, must name its own — and ``metrics``: its ``[metrics]`` endpoint."""
    add_operator(data_dir)
    config = dataclasses.replace(load_line_config(PILOT), scan_period_s=scan_period_s)
    if data_dir is not None:
        config = dataclasses.replace(config, security=dataclasses.replace(config.security, data_dir=data_dir))
    if metrics is not None:
        config = dataclasses.replace(config, metrics=metrics)
    bench = build_bench(config, speed=speed, free_ports=True)
    await bench.start()
    twin = TwinServer(config_for_bench(config, bench), endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/",
                      data_dir=data_dir)  # its history and twin.pid there too (None: this test's data dir)
    try:
        await twin.start()
        yield LiveLine(config_for_bench(config, bench), bench, twin)
    finally:
        await twin.stop()
        await bench.stop()
