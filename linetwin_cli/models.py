"""``linetwin models list | describe KIND``: the unit kinds and the keys of their ``[model]`` tables, with units
and defaults (:mod:`process_models.model_keys`; docs/plant/model-keys.md holds the same for every kind)."""

from __future__ import annotations

import argparse
import sys


def add_models_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="unit kinds and the keys of their [model] tables (units, defaults)")
    ms = models.add_subparsers(dest="models_command", required=True)
    ms.add_parser("list", help="the unit kinds, one a line")
    describe = ms.add_parser("describe", help="the [model] keys of one unit kind, with units and defaults (Markdown)")
    describe.add_argument("kind", help="a unit kind (linetwin models list)")


def run_models(args: argparse.Namespace) -> int:
    from process_models.model_keys import describe_kind
    from process_models.registry import UnknownModelKindError, known_kinds, unit_kinds

    if args.models_command == "list":
        line_kinds = unit_kinds()
        for kind, description in known_kinds().items():
            print(f"{kind:<24} {description}{'' if kind in line_kinds else ' (case files only)'}")
        return 0
    try:
        print(describe_kind(args.kind), end="")
    except UnknownModelKindError as exc:
        print(f"linetwin models describe: {exc}", file=sys.stderr)
        return 2
    return 0
