"""``linetwin simulate CASE.toml``: simulate one unit model from a case file (:mod:`process_models.case_file`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from process_models.case_file import CaseFileError, load_case, summary
from process_models.simulator import SimulationError, simulate

__all__ = ["cli_simulate"]


def cli_simulate(argv: Sequence[str]) -> int:
    """``linetwin simulate CASE.toml [--until T] [--out results.csv] [--quiet]``.

    Returns 0 on success, 2 for an invalid case file, 1 when the simulation fails.
    """
    parser = argparse.ArgumentParser(prog="linetwin simulate", description="Simulate one unit model from a case file.")
    parser.add_argument("case", type=Path, help="case file (TOML)")
    parser.add_argument("--until", type=float, default=None, help="end time in s (overrides [case] until_s)")
    parser.add_argument("--out", type=Path, default=None, help="write the trajectory to this CSV file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(list(argv))
    try:
        case = load_case(args.case)
        if args.until is not None and not args.until > case.start_s:
            raise CaseFileError(case.path, [f"--until: expected a time in s > {case.start_s}, got {args.until}"])
        result = simulate(case.model, case.initial_state, case.times_s(args.until), case.inputs,
                          progress=not args.quiet)
    except CaseFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
