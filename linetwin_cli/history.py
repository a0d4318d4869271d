"""``linetwin history export``: a node's history as CSV or JSON lines (:mod:`twin_server.historian.export`)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from linetwin_cli.common import data_dir_arg
from twin_server.config import LineConfig

__all__ = ["add_history_commands", "cli_export"]


def add_history_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``history`` command group."""
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
    data_dir_arg(export)


def cli_export(config: LineConfig, data_dir: Path | None, args: argparse.Namespace) -> int:
    """``linetwin history export``: exit status 0, or 2 with the argument and what was expected on stderr."""
    from twin_server.historian.export import ExportError, export_history, parse_time  # asyncua: only when it runs

    if data_dir is None or (config.historian.backend == "sqlite" and not data_dir.is_dir()):
        print(f"--data-dir: no history at {data_dir}; expected the line's data directory (its history/ folder)",
              file=sys.stderr)
        return 2
    try:
        start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
        if start > end:
            raise ExportError(f"--from and --to: got --from {args.start} after --to {args.end}; expected --from at "
                              "or before --to")
        if args.output:
            with open(args.output, "w", newline="", encoding="utf-8") as out:
                n = export_history(config, data_dir, args.node, start, end, out, args.format, args.kind)
        else:
            n = export_history(config, data_dir, args.node, start, end, sys.stdout, args.format, args.kind)
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"{data_dir}: cannot read the history: {exc}; expected the historian's SQLite files", file=sys.stderr)
        return 2
    sys.stdout.flush()  # a closed standard output ends the export quietly, before the count is reported
    print(f"{n} rows exported", file=sys.stderr)
    return 0
