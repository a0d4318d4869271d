"""``linetwin`` command line: demo, serve, check, hil serve, simulate, history export, surrogate, user, pki, audit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from twin_server.config import ConfigError, LineConfig, load_line_config
from twin_server.listen_check import ListenError, listen_error_line, require_listenable
from twin_server.security.cli import COMMANDS as SECURITY_COMMANDS
from twin_server.security.cli import add_security_commands, run_security_command

if TYPE_CHECKING:
    from hil.scenario import Scenario

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linetwin")
    except PackageNotFoundError:
        return "unknown (not installed; run `pip install -e .`)"


def _port(text: str) -> int:
    """argparse type: a TCP port 1..65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a TCP port 1..65535")
    return port


def _positive(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, speed factor)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a finite number > 0")
    return value


def _endpoint_free(endpoint: str, hint: str) -> None:
    """One clear line (ListenError) if the OPC UA endpoint's port cannot be listened on."""
    parsed = urlparse(endpoint)
    require_listenable(parsed.hostname or "127.0.0.1", parsed.port or 4840, "the OPC UA endpoint", hint)


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
    from process_models.plant_clock import WallPacedClock
    from twin_server.bench_launcher import build_bench, config_for_bench, plc_address, with_time_scale
    from twin_server.security.cli import demo_operator, demo_security_lines
    from twin_server.server import TwinServer, endpoint_with_port

    config = with_time_scale(_load(Path(args.config) if args.config else _demo_config_path()), args.speed)
    _endpoint_free(endpoint_with_port(config.server.endpoint, args.port), "choose another port with --port")
    _bench_ready(config, free_ports=True)
    bench = build_bench(config, speed=args.speed, free_ports=True)
    await bench.start()
    twin: TwinServer | None = None
    try:
        live_config = config_for_bench(config, bench)
        endpoint = endpoint_with_port(config.server.endpoint, args.port)
        operator = demo_operator(live_config)
        twin = TwinServer(live_config, endpoint=endpoint, data_dir=_data_dir(args, config),
                          plant_clock=WallPacedClock(args.speed))
        await twin.start()
        print(f"linetwin demo: line '{config.name}' served at {endpoint}", flush=True)
        print(demo_security_lines(twin.security, operator), flush=True)
        for unit in live_config.units:
            print(f"  virtual PLC {unit.name:<16} ({unit.kind}) {plc_address(unit.connection, unit.connection.port)}",
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
    twin = TwinServer(config, endpoint=endpoint, data_dir=_data_dir(args, config))
    _endpoint_free(twin.endpoint, "choose another port with --port or in [server] endpoint")
    await twin.start()
    print(f"linetwin: line '{config.name}' served at {twin.endpoint}", flush=True)
    try:
        await _wait_for_stop(args.duration, twin.status_line)
    finally:
        await twin.stop()
    return 0


async def _run_hil_serve(args: argparse.Namespace) -> int:
    from twin_server.bench_launcher import build_bench, plc_address

    config = _load(Path(args.config))
    _bench_ready(config, free_ports=False)
    bench = build_bench(config, speed=args.speed, free_ports=False)
    await bench.start()
    try:
        for unit in config.units:
            print(f"virtual PLC {unit.name} ({unit.kind}) on {plc_address(unit.connection, bench.plc(unit.name).port)}",
                  flush=True)
        await _wait_for_stop(args.duration)
    finally:
        await bench.stop()
    return 0


async def _run_hil_scenario(args: argparse.Namespace) -> int:
    from hil.scenario import ScenarioError, load_scenario
    from hil.scenario_runner import ScenarioRunError, run_scenario
    from process_models.plant_clock import WallPacedClock
    from twin_server.bench_launcher import build_bench, config_for_bench, scenario_line_config
    from twin_server.security.cli import scenario_operator
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
    if args.stepped:
        return await _run_stepped_scenario(scenario, report, plot)
    _endpoint_free(endpoint_with_port(config.server.endpoint, args.port), "choose another port with --port")
    report.parent.mkdir(parents=True, exist_ok=True)
    config, credentials = scenario_operator(config, report.parent / f"{scenario.name}.twin")
    bench = build_bench(config, speed=scenario.speed, free_ports=True, seed=scenario.seed, step_s=scenario.plant_step_s)
    await bench.start()
    twin: TwinServer | None = None
    try:
        endpoint = endpoint_with_port(config.server.endpoint, args.port)
        twin = TwinServer(config_for_bench(config, bench), endpoint=endpoint,
                          plant_clock=WallPacedClock(scenario.speed))
        await twin.start()
        print(f"scenario '{scenario.name}': {scenario.strategy}, {scenario.batch_duration_s:g} s batch at "
              f"{scenario.speed:g}x; twin at {twin.endpoint}", flush=True)
        result = await run_scenario(scenario, bench, twin.endpoint, config.server.namespace, config.name, report, plot,
                                    credentials=credentials)
    except ScenarioRunError as exc:
        print(f"scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    _print_scenario_result(result.kpis, scenario.target_d43_um, report, plot)
    return 0


async def _run_stepped_scenario(scenario: Scenario, report: Path, plot: Path) -> int:
    """``hil run --stepped``: the batch in the stepped lockstep loop (no twin server, no sockets)."""
    from hil.scenario_runner import ScenarioRunError
    from hil.stepped_batch import run_stepped_batch_async

    report.parent.mkdir(parents=True, exist_ok=True)
    print(f"scenario '{scenario.name}': {scenario.strategy}, {scenario.batch_duration_s:g} s batch on the stepped "
          "plant clock", flush=True)
    try:
        result = await run_stepped_batch_async(scenario, report_path=report, plot_path=plot)
    except ScenarioRunError as exc:
        print(f"scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    _print_scenario_result(result.kpis, scenario.target_d43_um, report, plot)
    return 0


def _print_scenario_result(k: Mapping[str, Any], target_d43_um: float, report: Path, plot: Path) -> None:
    median = (k.get("solve_time_ms") or {}).get("median")
    fines = k.get("fines_fraction")
    print(f"final d43 {k['final_d43_um']:.1f} µm (target {target_d43_um:g}, "
          f"error {k['d43_error_percent']:.2f} %), CV {k['final_cv']:.3f}, yield {k['yield']:.3f}, "
          f"fines {'n/a' if fines is None else f'{100 * fines:.2f} %'}, setpoints written {k['setpoints_written']}, "
          f"fallbacks {k['fallbacks_used']}, NMPC solve median {'n/a' if median is None else f'{median:.1f} ms'}",
          flush=True)
    print(f"report {report}, plot {plot}")


def _bench_ready(config: LineConfig, free_ports: bool) -> None:
    """Exit 2 with every reason (one line each) why the config's virtual PLCs cannot run."""
    from twin_server.bench_launcher import bench_issues

    issues = bench_issues(config, free_ports=free_ports)
    if issues:
        lines = "\n".join(f"  - {i}" for i in issues)
        print(f"{len(issues)} problem(s) for the HIL bench:\n{lines}", file=sys.stderr)
        raise SystemExit(2)


def _data_dir(args: argparse.Namespace, config: LineConfig) -> Path | None:
    """The historian's directory: ``--data-dir``, else ``[historian] data_dir``, else beside the config."""
    return Path(args.data_dir) if args.data_dir else config.historian.resolved_data_dir(config.source)


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_line_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    n_tags = sum(len(u.tags) for u in config.units)
    print(f"{args.config}: OK — line '{config.name}', {len(config.units)} units, {n_tags} tags, "
          f"scan {config.scan_period_s:g} s, endpoint {config.server.endpoint}")
    sec = config.security
    print(f"  security: {', '.join(sec.policies) or 'no encrypted endpoints'}"
          f"{', None (unencrypted)' if sec.allow_none else ''}; anonymous {sec.anonymous}; "
          f"data dir {sec.resolved_data_dir(config.name)}")
    from twin_server.bench_launcher import bench_issues

    for issue in bench_issues(config):
        print(f"note (hil serve only, the twin can serve this): {issue}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linetwin", description="OPC UA digital twin for process lines")
    parser.add_argument("--version", action="version", version=f"linetwin {_version()}",
                        help="print the installed linetwin version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="virtual PLCs + twin for the example pilot line, in one command")
    demo.add_argument("--port", type=_port, metavar="P", default=4840, help="OPC UA port of the twin (default 4840)")
    demo.add_argument("--duration", type=_positive, metavar="S", default=None,
                      help="stop after S wall-clock seconds (default: run until Ctrl-C)")
    demo.add_argument("--speed", type=_positive, metavar="N", default=1.0,
                      help="plant seconds per wall-clock second: 10 runs the plants 10x faster (default 1)")
    demo.add_argument("--config", default=None, metavar="FILE", help="line config (default examples/pilot_line.toml)")

    serve = sub.add_parser("serve", help="run the twin against the PLCs named in a config")
    serve.add_argument("config", help="line config (TOML), see docs/configuration.md")
    serve.add_argument("--port", type=_port, metavar="P", default=None,
                       help="OPC UA port (default: the port of [server] endpoint)")
    serve.add_argument("--duration", type=_positive, metavar="S", default=None,
                       help="stop after S wall-clock seconds (default: run until Ctrl-C)")
    demo.add_argument("--data-dir", default=None, metavar="DIR",
                      help="historian data directory (default: beside the config)")
    serve.add_argument("--data-dir", default=None, metavar="DIR",
                       help="historian data directory (default: beside the config)")

    history = sub.add_parser("history", help="the historian's data")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    export = history_sub.add_parser("export", help="export a node's history (values, setpoints or events)")
    export.add_argument("config", help="line config (TOML) whose historian to read")
    export.add_argument("--node", default=None, help="node id: unit.tag or line.unit.tag (events: a unit)")
    export.add_argument("--from", dest="start", default="1h",
                        help="ISO 8601, 'now' or an age: 15m, 2h, 1d (default 1h)")
    export.add_argument("--to", dest="end", default="now", help="ISO 8601, 'now' or relative (default now)")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="output format (default csv)")
    export.add_argument("--kind", choices=["values", "setpoints", "events"], default="values",
                        help="what to export: tag values, setpoints written, or a unit's events (default values)")
    export.add_argument("--output", default=None, help="file (default: standard output)")
    export.add_argument("--data-dir", default=None, help="historian data directory (default: beside the config)")

    check = sub.add_parser("check", help="validate a line config and print its errors")
    check.add_argument("config", help="line config (TOML) to validate; exit 2 when it has errors")

    hil = sub.add_parser("hil", help="hardware-in-the-loop bench")
    hil_sub = hil.add_subparsers(dest="hil_command", required=True)
    hil_serve = hil_sub.add_parser("serve", help="run the config's virtual PLCs alone")
    hil_serve.add_argument("config", help="line config (TOML); each unit's virtual PLC listens on its [plc] host:port")
    hil_serve.add_argument("--speed", type=_positive, metavar="N", default=1.0,
                           help="plant seconds per wall-clock second: 10 runs the plants 10x faster (default 1)")
    hil_serve.add_argument("--duration", type=_positive, metavar="S", default=None,
                           help="stop after S wall-clock seconds (default: run until Ctrl-C)")

    hil_run = hil_sub.add_parser("run", help="run one HIL scenario (batch) and write its KPI report and plot")
    hil_run.add_argument("scenario", help="scenario file (TOML), see docs/hil.md")
    hil_run.add_argument("--speed", type=_positive, metavar="N", default=None,
                         help="plant seconds per wall-clock second (default: the scenario's)")
    hil_run.add_argument("--report", default=None, metavar="FILE",
                         help="report JSON (default hil_reports/<name>.json; PNG beside it)")
    hil_run.add_argument("--stepped", action="store_true",
                         help="run the batch on the stepped plant clock: plant, estimator, NMPC and supervisor in "
                              "lockstep, no sockets, as fast as the CPU allows (deterministic for the seed)")
    hil_run.add_argument("--port", type=_port, metavar="P", default=4840, help="OPC UA port of the twin (default 4840)")

    add_security_commands(sub)

    simulate = sub.add_parser("simulate", help="simulate one unit model from a case file "
                              "(linetwin simulate --help for its options)", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER, help="CASE.toml [--until T] [--out results.csv] [--quiet]")
    surrogate = sub.add_parser("surrogate", help="train / evaluate neural surrogates "
                               "(linetwin surrogate --help for its options; docs/surrogates.md)", add_help=False)
    surrogate.add_argument("rest", nargs=argparse.REMAINDER, help="train CASE.toml --samples N … | evaluate DIR …")
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
    from plc_adapters.pymodbus_logging import quiet_pymodbus_logging

    # linetwin logs outages and recoveries itself; no pymodbus DEBUG or frame dumps, even with -v
    quiet_pymodbus_logging(logging.WARNING if args.verbose else logging.ERROR)
    if args.command == "check":
        return _check(args)
    if args.command in SECURITY_COMMANDS:
        return run_security_command(args)
    if args.command == "history":
        from twin_server.historian.export import cli_export

        config = _load(Path(args.config))
        return cli_export(config, _data_dir(args, config), args)
    runners = {"demo": _run_demo, "serve": _run_serve}
    hint = ("change the unit's [plc] port in the config" if args.command == "hil" and args.hil_command == "serve"
            else "choose another port with --port")
    try:
        if args.command == "hil":
            return asyncio.run(_run_hil_serve(args) if args.hil_command == "serve" else _run_hil_scenario(args))
        return asyncio.run(runners[args.command](args))
    except ListenError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        line = listen_error_line(exc, hint)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
