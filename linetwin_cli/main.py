"""``linetwin``: the command line. One module per command group; this one builds the parser and dispatches.

demo, serve (:mod:`linetwin_cli.serve`), check (:mod:`linetwin_cli.check`), health
(:mod:`linetwin_cli.health`), models (:mod:`linetwin_cli.models`), hil serve | run | commission
(:mod:`linetwin_cli.hil`, :mod:`linetwin_cli.hil_commission`), history export (:mod:`linetwin_cli.history`),
user | pki | audit (:mod:`linetwin_cli.security`), backup | restore (:mod:`linetwin_cli.backup`),
init (:mod:`linetwin_cli.init`), simulate (:mod:`linetwin_cli.simulate`), surrogate (:mod:`linetwin_cli.surrogate`),
campaign (:mod:`linetwin_cli.campaign`), forecast (:mod:`linetwin_cli.forecast`), fit (:mod:`linetwin_cli.fit`),
params (:mod:`linetwin_cli.params`).
A command group's modules are imported only when it runs, so ``linetwin --version`` and ``linetwin check`` import
neither torch nor the NMPC. Every command fails in one line (:mod:`linetwin_cli.failures`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from linetwin_cli.backup import COMMANDS as BACKUP_COMMANDS
from linetwin_cli.backup import add_backup_commands
from linetwin_cli.campaign import add_campaign_command
from linetwin_cli.check import add_check_command
from linetwin_cli.failures import OneLineParser, run_reporting_failures
from linetwin_cli.fit import add_fit_command
from linetwin_cli.forecast import add_forecast_command
from linetwin_cli.health import add_health_command
from linetwin_cli.hil import add_hil_commands
from linetwin_cli.history import add_history_commands
from linetwin_cli.init import add_init_command
from linetwin_cli.models import add_models_commands
from linetwin_cli.params import add_params_command
from linetwin_cli.security import COMMANDS as SECURITY_COMMANDS
from linetwin_cli.security import add_security_commands
from linetwin_cli.serve import add_serve_commands
from twin_server.listen_check import ListenError, listen_error_line
from twin_server.pid_file import DataDirInUse

log = logging.getLogger("linetwin.cli")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linetwin")
    except PackageNotFoundError:
        return "unknown (not installed; run `pip install -e .`)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="linetwin", description="OPC UA digital twin for process lines")
    parser.add_argument("--version", action="version", version=f"linetwin {_version()}",
                        help="print the installed linetwin version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_commands(sub)
    add_history_commands(sub)
    add_check_command(sub)
    add_health_command(sub)
    add_models_commands(sub)
    add_hil_commands(sub)
    add_security_commands(sub)
    add_backup_commands(sub)
    add_init_command(sub)
    add_campaign_command(sub)
    add_forecast_command(sub)
    add_fit_command(sub)
    add_params_command(sub)

    simulate = sub.add_parser("simulate", help="simulate one unit model from a case file "
                              "(linetwin simulate --help for its options)", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER, help="CASE.toml [--until T] [--out results.csv] [--quiet]")
    surrogate = sub.add_parser("surrogate", help="train / evaluate neural surrogates "
                               "(linetwin surrogate --help for its options; docs/surrogates.md)", add_help=False)
    surrogate.add_argument("rest", nargs=argparse.REMAINDER, help="train CASE.toml --samples N … | evaluate DIR …")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``linetwin`` command ``argv`` (default: the process's arguments); the exit status
    (:mod:`linetwin_cli.failures`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_failures(lambda: _run(args))


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "surrogate":
        from linetwin_cli.surrogate import cli_surrogate

        return cli_surrogate(argv[1:])
    if argv and argv[0] == "simulate":
        from linetwin_cli.simulate import cli_simulate

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
        from linetwin_cli.check import run_check

        return run_check(args)
    if args.command == "campaign":
        from linetwin_cli.campaign import run_campaign_command

        return run_campaign_command(args)
    if args.command == "fit":
        from linetwin_cli.fit import run_fit

        return run_fit(args)
    if args.command == "params":
        from linetwin_cli.params import run_params

        return run_params(args)
    if args.command == "models":
        from linetwin_cli.models import run_models

        return run_models(args)
    if args.command == "health":
        from linetwin_cli.health import run_health

        return run_health(args)
    if args.command in SECURITY_COMMANDS:
        from linetwin_cli.security import run_security_command

        return run_security_command(args)
    if args.command == "init":
        from linetwin_cli.init import run_init

        return run_init(args)
    if args.command in BACKUP_COMMANDS:
        from linetwin_cli.backup import run_backup_command

        return run_backup_command(args)
    if args.command == "forecast":
        from linetwin_cli.forecast import run_forecast

        return run_forecast(args)
    if args.command == "history":
        from linetwin_cli.common import line_data, load_or_exit
        from linetwin_cli.history import cli_export

        config = load_or_exit(Path(args.config))
        return cli_export(config, line_data(args, config).history, args)
    from linetwin_cli.hil import run_hil_scenario, run_hil_serve
    from linetwin_cli.hil_commission import run_hil_commission
    from linetwin_cli.serve import run_demo, run_serve

    runners = {"demo": run_demo, "serve": run_serve}
    hint = ("change the unit's [plc] port in the config" if args.command == "hil" and args.hil_command == "serve"
            else "choose another port with --port")
    try:
        if args.command == "hil":
            hil_commands = {"serve": run_hil_serve, "run": run_hil_scenario, "commission": run_hil_commission}
            return asyncio.run(hil_commands[args.hil_command](args))
        return asyncio.run(runners[args.command](args))
    except (ListenError, DataDirInUse) as exc:
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
