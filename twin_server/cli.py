"""``linetwin`` command line: demo, serve, check, hil serve, simulate, surrogate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from twin_server.config import ConfigError, LineConfig, load_line_config

log = logging.getLogger("linetwin.cli")

DEFAULT_DEMO_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "pilot_line.toml"


def _demo_config_path() -> Path:
    """The shipped demo line (source checkout); a clear error if it is missing."""
    if DEFAULT_DEMO_CONFIG.is_file():
        return DEFAULT_DEMO_CONFIG
    raise SystemExit(f"demo line config not found at {DEFAULT_DEMO_CONFIG}; pass --config PATH")


def _load(path: Path) -> LineConfig:
    try:
        return load_line_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from exc


async def _wait_for_stop(duration_s: float | None, status: object | None = None) -> None:
    """Return after ``duration_s`` seconds, or on SIGINT/SIGTERM; print a live status line meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    deadline = None if duration_s is None else loop.time() + duration_s
    tty = sys.stdout.isatty()
    last_print = 0.0
    while not stop.is_set():
        timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - loop.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
        if deadline is not None and loop.time() >= deadline:
            break
        if status is not None and (tty or time.monotonic() - last_print >= 5.0):
            line = status()  # type: ignore[operator]
            print(("\r" + line + "   ") if tty else line, end="" if tty else "\n", flush=True)
            last_print = time.monotonic()
    if tty and status is not None:
        print()


async def _run_demo(args: argparse.Namespace) -> int:
    from twin_server.bench_launcher import build_bench, config_for_bench, with_time_scale
    from twin_server.server import TwinServer, endpoint_with_port

    config = with_time_scale(_load(Path(args.config) if args.config else _demo_config_path()), args.speed)
    bench = build_bench(config, speed=args.speed, free_ports=True)
    await bench.start()
    twin: TwinServer | None = None
    try:
        live_config = config_for_bench(config, bench)
        endpoint = endpoint_with_port(config.server.endpoint, args.port)
        twin = TwinServer(live_config, endpoint=endpoint)
        await twin.start()
        print(f"linetwin demo: line '{config.name}' served at {endpoint}", flush=True)
        for unit in live_config.units:
            print(f"  virtual PLC {unit.name:<16} ({unit.kind}) modbus://{unit.connection.host}:{unit.connection.port}",
                  flush=True)
        print(f"  plant speed {args.speed:g}x real time; browse Objects/{config.name} with any OPC UA client; "
              "Ctrl-C stops", flush=True)
        await _wait_for_stop(args.duration, twin.status_line)
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    print("linetwin demo: stopped", flush=True)
    return 0


async def _run_serve(args: argparse.Namespace) -> int:
    from twin_server.server import TwinServer, endpoint_with_port

    config = _load(Path(args.config))
    endpoint = endpoint_with_port(config.server.endpoint, args.port) if args.port else None
    twin = TwinServer(config, endpoint=endpoint)
    await twin.start()
    print(f"linetwin: line '{config.name}' served at {twin.endpoint}", flush=True)
    try:
        await _wait_for_stop(args.duration, twin.status_line)
    finally:
        await twin.stop()
    return 0


async def _run_hil_serve(args: argparse.Namespace) -> int:
    from twin_server.bench_launcher import build_bench

    config = _load(Path(args.config))
    bench = build_bench(config, speed=args.speed, free_ports=False)
    await bench.start()
    try:
        for unit in config.units:
            print(f"virtual PLC {unit.name} ({unit.kind}) on modbus://{unit.connection.host}:{bench.plc(unit.name).port}",
                  flush=True)
        await _wait_for_stop(args.duration)
    finally:
        await bench.stop()
    return 0


async def _run_hil_scenario(args: argparse.Namespace) -> int:
    from hil.scenario import ScenarioError, load_scenario
    from hil.scenario_runner import ScenarioRunError, run_scenario
    from twin_server.bench_launcher import build_bench, config_for_bench, scenario_line_config
    from twin_server.server import TwinServer, endpoint_with_port

    try:
        scenario = load_scenario(args.scenario)
        if args.speed is not None:
            scenario = scenario.with_speed(args.speed)
        config = scenario_line_config(scenario)
    except (ScenarioError, ConfigError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else Path("hil_reports") / f"{scenario.name}.json"
    plot = report.with_suffix(".png")
    report.parent.mkdir(parents=True, exist_ok=True)
    bench = build_bench(config, speed=scenario.speed, free_ports=True, seed=scenario.seed, step_s=scenario.plant_step_s)
    await bench.start()
    twin: TwinServer | None = None
    try:
        endpoint = endpoint_with_port(config.server.endpoint, args.port)
        twin = TwinServer(config_for_bench(config, bench), endpoint=endpoint)
        await twin.start()
        print(f"scenario '{scenario.name}': {scenario.strategy}, {scenario.batch_duration_s:g} s batch at "
              f"{scenario.speed:g}x; twin at {twin.endpoint}", flush=True)
        result = await run_scenario(scenario, bench, twin.endpoint, config.server.namespace, config.name, report, plot)
    except ScenarioRunError as exc:
        print(f"scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    k = result.kpis
    median = (k.get("solve_time_ms") or {}).get("median")
    fines = k.get("fines_fraction")
    print(f"final d43 {k['final_d43_um']:.1f} µm (target {scenario.target_d43_um:g}, "
          f"error {k['d43_error_percent']:.2f} %), CV {k['final_cv']:.3f}, yield {k['yield']:.3f}, "
          f"fines {'n/a' if fines is None else f'{100 * fines:.2f} %'}, setpoints written {k['setpoints_written']}, "
          f"fallbacks {k['fallbacks_used']}, NMPC solve median {'n/a' if median is None else f'{median:.1f} ms'}",
          flush=True)
    print(f"report {report}, plot {plot}")
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_line_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    n_tags = sum(len(u.tags) for u in config.units)
    print(f"{args.config}: OK — line '{config.name}', {len(config.units)} units, {n_tags} tags, "
          f"scan {config.scan_period_s:g} s, endpoint {config.server.endpoint}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linetwin", description="OPC UA digital twin for process lines")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="virtual PLCs + twin for the example pilot line, in one command")
    demo.add_argument("--port", type=int, default=4840, help="OPC UA port (default 4840)")
    demo.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)")
    demo.add_argument("--speed", type=float, default=1.0, help="plant time per wall time (default 1)")
    demo.add_argument("--config", default=None, help="line config (default examples/pilot_line.toml)")

    serve = sub.add_parser("serve", help="run the twin against the PLCs named in a config")
    serve.add_argument("config")
    serve.add_argument("--port", type=int, default=None, help="override the endpoint's port")
    serve.add_argument("--duration", type=float, default=None)

    check = sub.add_parser("check", help="validate a line config and print its errors")
    check.add_argument("config")

    hil = sub.add_parser("hil", help="hardware-in-the-loop bench")
    hil_sub = hil.add_subparsers(dest="hil_command", required=True)
    hil_serve = hil_sub.add_parser("serve", help="run the config's virtual PLCs alone")
    hil_serve.add_argument("config")
    hil_serve.add_argument("--speed", type=float, default=1.0)
    hil_serve.add_argument("--duration", type=float, default=None)

    hil_run = hil_sub.add_parser("run", help="run one HIL scenario (batch) and write its KPI report and plot")
    hil_run.add_argument("scenario")
    hil_run.add_argument("--speed", type=float, default=None, help="plant speed (default: the scenario's)")
    hil_run.add_argument("--report", default=None, help="report JSON (default hil_reports/<name>.json; PNG beside it)")
    hil_run.add_argument("--port", type=int, default=4840, help="OPC UA port of the twin (default 4840)")

    simulate = sub.add_parser("simulate", help="simulate one unit model from a case file", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    surrogate = sub.add_parser("surrogate", help="train / evaluate neural surrogates (docs/surrogates.md)",
                               add_help=False)
    surrogate.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "surrogate":
        from process_models.surrogates.cli import cli_surrogate

        return cli_surrogate(argv[1:])
    if argv and argv[0] == "simulate":
        from process_models.case_file import cli_simulate

        return cli_simulate(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("asyncua").setLevel(logging.WARNING)
        logging.getLogger("pymodbus").setLevel(logging.ERROR)  # linetwin logs outages and recoveries itself
    if args.command == "check":
        return _check(args)
    runners = {"demo": _run_demo, "serve": _run_serve}
    if args.command == "hil":
        return asyncio.run(_run_hil_serve(args) if args.hil_command == "serve" else _run_hil_scenario(args))
    return asyncio.run(runners[args.command](args))


if __name__ == "__main__":
    raise SystemExit(main())
