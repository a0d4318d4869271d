"""``linetwin demo`` and ``linetwin serve``: the twin (with, for ``demo``, the example line's virtual PLCs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from linetwin_cli.common import (
    built_or_exit,
    data_dir_arg,
    demo_config_path,
    endpoint_free,
    line_data,
    load_or_exit,
    port_arg,
    positive_arg,
    wait_for_stop,
)
from linetwin_cli.hil import bench_ready


def add_serve_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``demo`` and ``serve`` commands."""
    demo = sub.add_parser("demo", help="virtual PLCs + twin for the example pilot line, in one command")
    demo.add_argument("--port", type=port_arg, metavar="P", default=4840,
                      help="OPC UA port of the twin (default 4840)")
    demo.add_argument("--duration", type=positive_arg, metavar="S", default=None,
                      help="stop after S wall-clock seconds (default: run until Ctrl-C)")
    demo.add_argument("--speed", type=positive_arg, metavar="N", default=1.0,
                      help="plant seconds per wall-clock second: 10 runs the plants 10x faster (default 1)")
    demo.add_argument("--config", default=None, metavar="FILE",
                      help="line config (default: the shipped examples/pilot_line.toml)")

    serve = sub.add_parser("serve", help="run the twin against the PLCs named in a config")
    serve.add_argument("config", help="line config (TOML), see docs/configuration.md")
    serve.add_argument("--port", type=port_arg, metavar="P", default=None,
                       help="OPC UA port (default: the port of [server] endpoint)")
    serve.add_argument("--duration", type=positive_arg, metavar="S", default=None,
                       help="stop after S wall-clock seconds (default: run until Ctrl-C)")
    data_dir_arg(demo)
    data_dir_arg(serve)


async def run_demo(args: argparse.Namespace) -> int:
    loaded = load_or_exit(Path(args.config) if args.config else demo_config_path())  # a bad file fails before the
    # imports of the bench and the server (a second of CPU)
    from linetwin_cli.bench_launcher import build_bench, config_for_bench, plc_address, with_time_scale
    from linetwin_cli.operators import demo_operator, demo_security_lines
    from process_models.plant_clock import WallPacedClock
    from twin_server.server import TwinServer, endpoint_with_port

    config = with_time_scale(loaded, args.speed)
    plans = built_or_exit(config, with_plants=True)
    endpoint_free(endpoint_with_port(config.server.endpoint, args.port), "choose another port with --port")
    bench_ready(config, free_ports=True)
    bench = build_bench(config, speed=args.speed, free_ports=True)
    await bench.start()
    twin: TwinServer | None = None
    try:
        live_config = config_for_bench(config, bench)
        endpoint = endpoint_with_port(config.server.endpoint, args.port)
        data = line_data(args, config)
        operator = demo_operator(data)
        twin = TwinServer(live_config, endpoint=endpoint, data_dir=data.root, plans=plans,
                          plant_clock=WallPacedClock(args.speed))
        await twin.start()
        print(f"linetwin demo: line '{config.name}' served at {endpoint}", flush=True)
        print(demo_security_lines(twin.security, operator), flush=True)
        for unit in live_config.units:
            print(f"  virtual PLC {unit.name:<16} ({unit.kind}) {plc_address(unit.connection, unit.connection.port)}",
                  flush=True)
        print(f"  plant speed {args.speed:g}x real time; browse Objects/{config.name} with any OPC UA client; "
              "Ctrl-C stops", flush=True)
        await wait_for_stop(args.duration, twin.status_line)
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    print("linetwin demo: stopped", flush=True)
    return 0


async def run_serve(args: argparse.Namespace) -> int:
    config = load_or_exit(Path(args.config))  # a bad file fails before the server's imports (a second of CPU)
    from twin_server.server import TwinServer, endpoint_with_port

    plans = built_or_exit(config, with_plants=False)
    endpoint = endpoint_with_port(config.server.endpoint, args.port) if args.port else None
    twin = TwinServer(config, endpoint=endpoint, data_dir=line_data(args, config).root, plans=plans)
    endpoint_free(twin.endpoint, "choose another port with --port or in [server] endpoint")
    await twin.start()
    print(f"linetwin: line '{config.name}' served at {twin.endpoint}", flush=True)
    try:
        await wait_for_stop(args.duration, twin.status_line)
    finally:
        await twin.stop()
    return 0
