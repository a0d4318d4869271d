"""``linetwin hil serve`` (the config's virtual PLCs alone), ``linetwin hil run`` (one HIL scenario) and
``linetwin hil commission`` (batch, fit, apply, batch: :mod:`linetwin_cli.hil_commission`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linetwin_cli.common import built_or_exit, endpoint_free, load_or_exit, port_arg, positive_arg, wait_for_stop
from linetwin_cli.failures import bench_file_error_text
from twin_server.config import ConfigError, LineConfig
from twin_server.data_dir import line_data_dir

if TYPE_CHECKING:
    from hil.scenario import Scenario
    from twin_server.data_dir import LineDataDir


def add_hil_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``hil`` command group."""
    hil = sub.add_parser("hil", help="hardware-in-the-loop bench")
    hil_sub = hil.add_subparsers(dest="hil_command", required=True)
    hil_serve = hil_sub.add_parser("serve", help="run the config's virtual PLCs alone")
    hil_serve.add_argument("config", help="line config (TOML); each unit's virtual PLC listens on its [plc] host:port")
    hil_serve.add_argument("--speed", type=positive_arg, metavar="N", default=1.0,
                           help="plant seconds per wall-clock second: 10 runs the plants 10x faster (default 1)")
    hil_serve.add_argument("--duration", type=positive_arg, metavar="S", default=None,
                           help="stop after S wall-clock seconds (default: run until Ctrl-C)")

    hil_run = hil_sub.add_parser("run", help="run one HIL scenario (batch) and write its KPI report and plot")
    hil_run.add_argument("scenario", help="scenario file (TOML), see docs/hil.md")
    hil_run.add_argument("--speed", type=positive_arg, metavar="N", default=None,
                         help="plant seconds per wall-clock second (default: the scenario's)")
    hil_run.add_argument("--report", default=None, metavar="FILE",
                         help="report JSON (default hil_reports/<name>.json; PNG beside it)")
    hil_run.add_argument("--data-dir", default=None, metavar="DIR",
                         help="the run's twin data directory (default: <report folder>/<scenario>.twin)")
    hil_run.add_argument("--stepped", action="store_true",
                         help="run the batch on the stepped plant clock: plant, estimator, NMPC and supervisor in "
                              "lockstep, no sockets, as fast as the CPU allows (deterministic for the seed)")
    hil_run.add_argument("--port", type=port_arg, metavar="P", default=4840,
                         help="OPC UA port of the twin (default 4840)")
    hil_run.add_argument("--parameter-set", default=None, metavar="SET",
                         help="apply this parameter set before StartBatch (an engineer calls ApplyParameterSet): "
                              "nominal, latest (the newest set fitted for the unit in the data dir) or a set id; "
                              "default: the scenario's parameter_set, else the set the twin has deployed")

    from linetwin_cli.hil_commission import add_commission_command

    add_commission_command(hil_sub)


def bench_ready(config: LineConfig, free_ports: bool) -> None:
    """Exit 2 with every reason (one line each) why the config's virtual PLCs cannot run."""
    from linetwin_cli.bench_launcher import bench_issues

    issues = bench_issues(config, free_ports=free_ports)
    if issues:
        lines = "\n".join(f"  - {i}" for i in issues)
        print(f"{len(issues)} problem(s) for the HIL bench:\n{lines}", file=sys.stderr)
        raise SystemExit(2)


async def run_hil_serve(args: argparse.Namespace) -> int:
    config = load_or_exit(Path(args.config))  # a bad file fails before the bench's imports
    from linetwin_cli.bench_launcher import build_bench, plc_address

    built_or_exit(config, with_plants=True, with_plans=False)
    bench_ready(config, free_ports=False)
    bench = build_bench(config, speed=args.speed, free_ports=False)
    await bench.start()
    try:
        for unit in config.units:
            print(f"virtual PLC {unit.name} ({unit.kind}) on {plc_address(unit.connection, bench.plc(unit.name).port)}",
                  flush=True)
        await wait_for_stop(args.duration)
    finally:
        await bench.stop()
    return 0


async def run_hil_scenario(args: argparse.Namespace) -> int:
    from hil.pooling_scenario import is_pooling_scenario
    from hil.scenario import ScenarioError, load_scenario

    if is_pooling_scenario(Path(args.scenario)):
        return await run_pooling_scenario_cli(args)
    try:
        scenario = load_scenario(args.scenario)
        # a bad scenario file fails before the imports of the runner, the bench and the server (a second of CPU)
        from hil.scenario_runner import ScenarioRunError
        from linetwin_cli.bench_launcher import scenario_line_config
        from linetwin_cli.hil_batch import recorded_batches, resolve_parameter_set, run_socket_batch
        from twin_server.line_build import build_line_or_raise
        from twin_server.server import endpoint_with_port

        if args.speed is not None:
            scenario = scenario.with_speed(args.speed)
        if args.parameter_set is not None:
            scenario = scenario.with_parameter_set(args.parameter_set)
        config = scenario_line_config(scenario)
        # the NMPC, once (the stepped loop builds its own unless it needs the set's nominal id); a failure is a
        # config error like any other
        plans = None if args.stepped and scenario.parameter_set is None else build_line_or_raise(config)
    except (ScenarioError, ConfigError) as exc:
        print(bench_file_error_text(exc), file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else Path("hil_reports") / f"{scenario.name}.json"
    plot = report.with_suffix(".png")
    data = line_data_dir(config, args.data_dir or report.parent / f"{scenario.name}.twin")
    if scenario.parameter_set is not None:
        assert plans is not None
        scenario = scenario.with_parameter_set(resolve_parameter_set(scenario, config.unit(scenario.unit),
                                                                     plans[scenario.unit], data))
    if args.stepped:
        return await run_stepped_scenario(scenario, report, plot, data)
    endpoint_free(endpoint_with_port(config.server.endpoint, args.port), "choose another port with --port")
    report.parent.mkdir(parents=True, exist_ok=True)
    assert plans is not None
    try:
        batch = await run_socket_batch(scenario, config, plans, data, args.port, report, plot)
    except ScenarioRunError as exc:
        print(f"scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    print_scenario_result(batch.report.kpis, scenario.target_d43_um, report, plot)
    for recorded in recorded_batches(config, data, batch, scenario.unit):
        print(f"recorded batch {recorded.id} in {data.history} (linetwin fit … --batch {recorded.id} "
              f"--data-dir {data.root})")
    return 0


async def run_stepped_scenario(scenario: Scenario, report: Path, plot: Path, data: LineDataDir) -> int:
    """``hil run --stepped``: the batch in the stepped lockstep loop (no twin server, no sockets); a scenario's
    parameter set (resolved to an id by now) read from ``data``'s store."""
    from hil.scenario_runner import ScenarioRunError
    from hil.stepped_batch import run_stepped_batch_async
    from process_models.parameter_sets import ParameterSetError, ParameterSetStore

    parameter_set = None
    if scenario.parameter_set is not None:
        try:
            found = ParameterSetStore(data.parameter_sets).get(scenario.parameter_set)
        except ParameterSetError as exc:
            print(f"scenario '{scenario.name}': parameter set {scenario.parameter_set}: {exc}", file=sys.stderr)
            return 1
        parameter_set = (found.id, dict(found.values))

    report.parent.mkdir(parents=True, exist_ok=True)
    print(f"scenario '{scenario.name}': {scenario.strategy}, {scenario.batch_duration_s:g} s batch on the stepped "
          "plant clock", flush=True)
    try:
        result = await run_stepped_batch_async(scenario, report_path=report, plot_path=plot,
                                               parameter_set=parameter_set)
    except ScenarioRunError as exc:
        print(f"scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # the control plan refused the scenario's options (every problem listed)
        print(str(exc), file=sys.stderr)
        return 2
    print_scenario_result(result.kpis, scenario.target_d43_um, report, plot)
    return 0


async def run_pooling_scenario_cli(args: argparse.Namespace) -> int:
    """``hil run POOLING.toml``: the skid's run over Modbus and OPC UA, pooled by the twin (``--stepped``: the
    skid's PLC in lockstep with the twin, still over the sockets); the report JSON, the KPIs on stdout."""
    import dataclasses
    import json

    from hil.pooling_runner import PoolingRunError, run_pooling_scenario
    from hil.pooling_scenario import PoolingScenarioError, load_pooling_scenario
    from linetwin_cli.bench_launcher import build_bench, config_for_bench, pooling_line_config
    from linetwin_cli.operators import scenario_operator
    from twin_server.line_build import build_line_or_raise
    from twin_server.server import TwinServer, endpoint_with_port

    try:
        scenario = load_pooling_scenario(args.scenario)
        if args.speed is not None:
            scenario = dataclasses.replace(scenario, speed=float(args.speed))
        config = pooling_line_config(scenario)
        plans = build_line_or_raise(config)
    except (PoolingScenarioError, ConfigError) as exc:
        print(bench_file_error_text(exc), file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else Path("hil_reports") / f"{scenario.name}.json"
    endpoint = endpoint_with_port(config.server.endpoint, args.port)
    endpoint_free(endpoint, "choose another port with --port")
    report.parent.mkdir(parents=True, exist_ok=True)
    data = line_data_dir(config, args.data_dir or report.parent / f"{scenario.name}.twin")
    credentials = scenario_operator(data)
    bench = build_bench(config, speed=scenario.speed, free_ports=True, seed=scenario.seed, step_s=scenario.plant_step_s)
    bench.plc(scenario.unit).lockstep = bool(args.stepped)
    await bench.start()
    twin: TwinServer | None = None
    try:
        twin = TwinServer(config_for_bench(config, bench), endpoint=endpoint, data_dir=data.root, plans=plans)
        await twin.start()
        clock = "in lockstep with the twin" if args.stepped else f"at {scenario.speed:g}x"
        print(f"pooling scenario '{scenario.name}': {scenario.strategy}, skid {clock}; twin at {twin.endpoint}",
              flush=True)
        result = await run_pooling_scenario(scenario, bench, twin.endpoint, config.server.namespace, config.name,
                                            credentials=credentials, lockstep_s=5.0 if args.stepped else None)
    except PoolingRunError as exc:
        print(f"pooling scenario '{scenario.name}' failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if twin is not None:
            await twin.stop()
        await bench.stop()
    report.write_text(json.dumps(result, indent=1, default=str))
    k, nodes = result["kpis"], result["twin"]
    print(f"pool yield {k['pool_yield']:.3f}, purity {k['pool_purity']:.4f} (spec "
          f"{'met' if k['spec_met'] else 'NOT met'}), valve {k['valve_opened_s']}-{k['valve_closed_s']} s, "
          f"decided by {nodes['strategy_in_use']}, {nodes['setpoints_written']} cut setpoints written", flush=True)
    print(f"report {report}")
    return 0


def print_scenario_result(k: Mapping[str, Any], target_d43_um: float, report: Path, plot: Path) -> None:
    """The batch KPIs in one line, and where the report and plot are."""
    median = (k.get("solve_time_ms") or {}).get("median")
    fines = k.get("fines_fraction")
    print(f"final d43 {k['final_d43_um']:.1f} µm (target {target_d43_um:g}, "
          f"error {k['d43_error_percent']:.2f} %), CV {k['final_cv']:.3f}, yield {k['yield']:.3f}, "
          f"fines {'n/a' if fines is None else f'{100 * fines:.2f} %'}, setpoints written {k['setpoints_written']}, "
          f"fallbacks {k['fallbacks_used']}, NMPC solve median {'n/a' if median is None else f'{median:.1f} ms'}",
          flush=True)
    print(f"report {report}, plot {plot}")
