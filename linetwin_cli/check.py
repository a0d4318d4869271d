"""``linetwin check LINE.toml``: parse the config, build what it names (models, HIL plants, control plans) as
``serve`` and ``hil serve`` would, and print every problem (exit 2) or a summary (exit 0)."""

from __future__ import annotations

import argparse
import sys

from linetwin_cli.common import data_dir_arg
from linetwin_cli.failures import config_error_text
from twin_server.config import ConfigError, load_line_config
from twin_server.data_dir import line_data_dir


def add_check_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``check`` command."""
    check = sub.add_parser("check", help="validate a line config and print its errors")
    check.add_argument("config", help="line config (TOML) to validate; exit 2 when it has errors")
    data_dir_arg(check)


def run_check(args: argparse.Namespace) -> int:
    from hil.plant import make_plant
    from twin_server.line_build import build_line, build_units

    try:
        config = load_line_config(args.config)
    except ConfigError as exc:
        built = build_units(exc.buildable_units, str(args.config), make_plant, with_plans=False)
        print(config_error_text(ConfigError(exc.issues + built.issues)), file=sys.stderr)
        return 2
    issues = build_line(config, make_plant, with_plans=False).issues
    if issues:
        print(config_error_text(ConfigError(issues)), file=sys.stderr)
        return 2
    n_tags = sum(len(u.tags) for u in config.units)
    print(f"{args.config}: OK — line '{config.name}', {len(config.units)} units, {n_tags} tags, "
          f"scan {config.scan_period_s:g} s, endpoint {config.server.endpoint}")
    sec = config.security
    print(f"  security: {', '.join(sec.policies) or 'no encrypted endpoints'}"
          f"{', None (unencrypted)' if sec.allow_none else ''}; anonymous {sec.anonymous}; "
          f"data dir {line_data_dir(config, getattr(args, 'data_dir', None)).root}")
    from linetwin_cli.bench_launcher import bench_issues

    for issue in bench_issues(config):
        print(f"note (hil serve only, the twin can serve this): {issue}")
    return 0
