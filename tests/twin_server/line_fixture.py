"""The demo line, live: HIL virtual PLCs + twin server on free loopback ports, its control plans shared by the
process's twins (:mod:`tests.twin_server.shared_plans`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hil.bench import HilBench
from linetwin_cli.bench_launcher import build_bench, config_for_bench
from process_models.plant_clock import PlantClock
from tests.conftest import free_tcp_port
from tests.security_helpers import add_operator
from tests.twin_server.shared_plans import shared_plans
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
async def live_line(config: LineConfig, speed: float, step_s: float = 1.0, data_dir: Path | None = None,
                    plant_clock: PlantClock | None = None) -> AsyncIterator[LiveLine]:
    """``config``'s units behind HIL virtual PLCs (free ports, plant steps of ``step_s`` plant seconds at ``speed``×
    real time) and a twin serving them on a free port, its control plans shared by the process's twins
    (:func:`~tests.twin_server.shared_plans.shared_plans`: no NMPC built twice for the same options). ``data_dir``:
    the twin's line data dir (None: this test's); ``plant_clock``: the twin's (None: wall-paced at the bench speed).
    Users are the caller's to add before (``tests.security_helpers.add_user``)."""
    bench = build_bench(config, speed=speed, free_ports=True, step_s=step_s)
    await bench.start()
    try:
        served = config_for_bench(config, bench)
        twin = TwinServer(served, endpoint=f"opc.tcp://127.0.0.1:{free_tcp_port()}/linetwin/",
                          data_dir=data_dir,  # its history and twin.pid there too (None: this test's data dir)
                          plans=shared_plans(served), plant_clock=plant_clock)
        try:
            await twin.start()
            yield LiveLine(served, bench, twin)
        finally:
            await twin.stop()
    finally:
        await bench.stop()


def pilot_config(scan_period_s: float, without: tuple[str, ...] = (), **security: object) -> LineConfig:
    """The pilot line's config with the twin's scan period ``scan_period_s`` (s), the units named in ``without``
    left out, and ``security`` settings replaced."""
    base = load_line_config(PILOT)
    unknown = set(without) - {u.name for u in base.units}
    if unknown:
        raise ValueError(f"pilot_config: without names no unit of the pilot line: {sorted(unknown)}")
    return dataclasses.replace(base, scan_period_s=scan_period_s,
                               units=tuple(u for u in base.units if u.name not in without),
                               security=dataclasses.replace(base.security, **security))


@asynccontextmanager
async def live_pilot_line(scan_period_s: float = 0.1, speed: float = 20.0,
                          data_dir: Path | None = None,
                          metrics: MetricsSettings | None = None, step_s: float = 1.0,
                          without: tuple[str, ...] = ()) -> AsyncIterator[LiveLine]:
    """The pilot line (:func:`live_line`) with an ``operator`` user (tests.security_helpers.OPERATOR) in this test's
    data dir, or in ``data_dir`` (users file, PKI, audit store) — a module- or session-scoped line, which outlives the
    per-test ``LINETWIN_DATA_DIR`` of tests/conftest.py, must name its own — and ``metrics``: its ``[metrics]``
    endpoint. ``step_s``: the virtual PLCs' plant step (plant s; 1 s as the HIL scenarios: at 20× that is 20 steps
    per wall second and plant, a tenth of the CPU of 0.1 s steps, and still several new values per scan).
    ``without``: units left out, for a test of one unit at a high speed (the capture column's plant integrates every
    plant second, ~3 ms a step: a quarter of a core at 100x)."""
    add_operator(data_dir)
    config = pilot_config(scan_period_s, without)
    if data_dir is not None:
        config = dataclasses.replace(config, security=dataclasses.replace(config.security, data_dir=data_dir))
    if metrics is not None:
        config = dataclasses.replace(config, metrics=metrics)
    async with live_line(config, speed, step_s, data_dir) as line:
        yield line
