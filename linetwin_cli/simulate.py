"""``linetwin simulate CASE.toml``: simulate one unit model from a case file (:mod:`process_models.case_file`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from linetwin_cli.failures import OneLineParser
from process_models.case_file import CaseFileError, load_case, summary
from process_models.simulator import SimulationError

__all__ = ["case_file_error_text", "cli_simulate"]


def case_file_error_text(exc: CaseFileError) -> str:
    """A case file's problems as one line each (one problem: one line), each naming the file."""
    return f"error: {exc.path}: {exc.errors[0]}" if len(exc.errors) == 1 else f"error: {exc}"


def simulate_parser() -> argparse.ArgumentParser:
    """The options of ``linetwin simulate``."""
    parser = OneLineParser(prog="linetwin simulate", description="Simulate one unit model from a case file.")
    parser.add_argument("case", type=Path, help="case file (TOML)")
    parser.add_argument("--until", type=float, default=None, help="end time in s (overrides [case] until_s)")
    parser.add_argument("--out", type=Path, default=None, help="write the trajectory to this CSV file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def cli_simulate(argv: Sequence[str]) -> int:
    """``linetwin simulate CASE.toml [--until T] [--out results.csv] [--quiet]``.

    Returns 0 on success, 2 for an invalid case file, 1 when the simulation fails.
    """
    args = simulate_parser().parse_args(list(argv))
    try:
        case = load_case(args.case)
        if args.until is not None and not args.until > case.start_s:
            raise CaseFileError(case.path, [f"--until: expected a time in s > {case.start_s}, got {args.until}"])
        result = case.simulate(case.times_s(args.until), progress=not args.quiet)
    except CaseFileError as exc:
        print(case_file_error_text(exc), file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"error: simulation failed: {exc}", file=sys.stderr)
        return 1
    if args.out is not None:
        result.to_csv(args.out)
    print(summary(case, result))
    if args.out is not None:
        print(f"trajectory written to {args.out}")
    return 0
