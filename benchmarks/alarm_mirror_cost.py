"""Cost of alarms on the mirror path: ``LineRuntime.mirror_samples`` scans per second with and without alarms.

One unit of N float tags (default 1,000), in one process, no network: the twin's address space, runtime and alarm
manager are built as ``TwinServer.start`` builds them (adapters created, not started), and one scan's samples
(Good values inside every limit, so no events) are mirrored repeatedly. Variants:

- ``no hook``: the runtime without its alarm hook (the reference);
- ``comms only``: the hook with only the unit's comms-loss condition (every unit has one);
- ``10% limits``: limit alarms on one tag in ten;
- ``all limits``: limit alarms on every tag;
- ``no hook 2``: the reference built again, last: its distance from ``no hook`` is the run's noise.

Printed as a table of scans per second and the ratio to ``no hook``, and written to
``benchmarks/results/alarm_mirror_cost.json``. Figures are ratios within one run, not absolute capacities.

Usage: ``python benchmarks/alarm_mirror_cost.py [--tags 1000] [--scans 100] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_cli import add_run_options, parse_args, write_results  # noqa: E402

from plc_adapters.asyncua_seam import init_server  # noqa: E402
from plc_adapters.quality import Quality  # noqa: E402
from plc_adapters.sample import Sample  # noqa: E402
from plc_adapters.tag_map import DataType, Direction, ModbusConnection, Range, RegisterTable, TagSpec  # noqa: E402
from twin_server.address_space import build_address_space  # noqa: E402
from twin_server.alarms.alarm_config import UnitAlarmConfig  # noqa: E402
from twin_server.alarms.limits import LimitAlarmConfig  # noqa: E402
from twin_server.alarms.manager import AlarmManager  # noqa: E402
from twin_server.audit import AuditTrail  # noqa: E402
from twin_server.config import LineConfig, ServerConfig, UnitConfig  # noqa: E402
from twin_server.runtime import LineRuntime  # noqa: E402

LIMITS = LimitAlarmConfig(high_high=900.0, high=800.0, low=-800.0, low_low=-900.0, deadband=1.0, on_delay_s=1.0)


def _config(n: int, alarm_every: int) -> LineConfig:
    tags = tuple(TagSpec(name=f"tag_{i:05d}", direction=Direction.MEASURED, unit_code="CEL",
                         eu_range=Range(-1000.0, 1000.0), table=RegisterTable.INPUT, address=2 * i,
                         data_type=DataType.FLOAT32) for i in range(n))
    limits = {t.name: LIMITS for i, t in enumerate(tags) if alarm_every and i % alarm_every == 0}
    unit = UnitConfig(name="unit", kind="mixing_tank", description="", model={}, plant={},
                      connection=ModbusConnection("127.0.0.1", 1502), tags=tags,
                      alarms=UnitAlarmConfig(limits=limits))
    return LineConfig(name="bench", description="", scan_period_s=1.0,
                      server=ServerConfig(endpoint="opc.tcp://127.0.0.1:4840/bench/", namespace="urn:bench"),
                      units=(unit,))


async def _runtime(n: int, alarm_every: int, hook: bool) -> tuple[LineRuntime, list[Sample]]:
    config = _config(n, alarm_every)
    server = Server()
    await init_server(server)
    space = await build_address_space(server, config)
    runtime = LineRuntime(config, server, space)
    if hook:
        alarms = AlarmManager(server, config, space, AuditTrail())
        await alarms.build()
        runtime.alarm_hook = alarms.on_scan
    now = datetime.now(UTC)
    samples = [Sample(t.name, float(i % 500), Quality.GOOD, now) for i, t in enumerate(config.units[0].tags)]
    await runtime.mirror_samples("unit", samples)  # warm-up (connection node, first values)
    return runtime, samples


async def _scans_per_s(runtime: LineRuntime, samples: list[Sample], scans: int) -> float:
    t0 = time.perf_counter()
    for _ in range(scans):
        await runtime.mirror_samples("unit", samples)
    return scans / (time.perf_counter() - t0)


VARIANTS = [("no hook", 0, False), ("comms only", 0, True), ("10% limits", 10, True), ("all limits", 1, True),
            ("no hook 2", 0, False)]  # the reference again: the spread between the two is the noise
"""(name, one tag in N alarmed (0: none), alarm hook installed)"""
SMOKE_VARIANTS = [VARIANTS[0], VARIANTS[3]]
"""A smoke run builds two runtimes (each an asyncua server), not five."""


async def main_async(n: int, scans: int, rounds: int, variants: list[tuple[str, int, bool]] = VARIANTS) -> list[dict]:
    """Each variant measured ``rounds`` times, interleaved (a busy machine slows every variant alike); best kept."""
    built = [await _runtime(n, every, hook) for _, every, hook in variants]
    best = [0.0] * len(variants)
    for r in range(rounds):
        print(f"round {r + 1}/{rounds} ...", file=sys.stderr, flush=True)
        for i, (runtime, samples) in enumerate(built):
            best[i] = max(best[i], await _scans_per_s(runtime, samples, scans))
    rows = [{"variant": name, "tags": n, "alarmed_tags": (n + every - 1) // every if every else 0,
             "scans_per_s": rate} for (name, every, _), rate in zip(variants, best, strict=True)]
    for row in rows:
        row["ratio_to_no_hook"] = row["scans_per_s"] / rows[0]["scans_per_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--scans", type=int, default=100, help="scans per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each variant is kept")
    add_run_options(parser)
    args = parse_args(parser)
    if args.smoke:
        args.tags, args.scans, args.rounds = 20, 5, 1
    logging.basicConfig(level=logging.ERROR)
    rows = asyncio.run(main_async(args.tags, args.scans, args.rounds, SMOKE_VARIANTS if args.smoke else VARIANTS))
    print(f"{'variant':<12} {'tags':>6} {'alarmed':>8} {'scans/s':>10} {'ratio':>7}")
    for r in rows:
        print(f"{r['variant']:<12} {r['tags']:>6} {r['alarmed_tags']:>8} {r['scans_per_s']:>10.1f} "
              f"{r['ratio_to_no_hook']:>7.3f}")
    write_results(args, "alarm_mirror_cost", {"machine": platform.platform(), "python": platform.python_version(),
                                              "time": datetime.now(UTC).isoformat(), "rows": rows})


if __name__ == "__main__":
    main()
