"""``linetwin params list | show | diff | export``: the versioned parameter sets in ``<data dir>/parameter_sets``.

* ``list CONFIG [--unit U]``: one line per set, oldest first: id, unit, created, parent, estimated parameters,
  batches; ``*`` marks a set that is not for the unit's current model declaration (the ``[model]`` table changed);
* ``show CONFIG ID``: the set's values with standard errors and intervals, its lineage and its data;
* ``diff CONFIG ID_A ID_B``: the parameters whose values differ, with the change relative to A and, where the
  sets carry them, in standard errors;
* ``export CONFIG ID [--output FILE]``: the stored JSON (verified) to a file or stdout.

Ids may be abbreviated to a unique prefix (4+ hex digits). Every read re-hashes the set: a file whose content does
not match its id is refused (exit 1). These commands only read; ``linetwin fit`` writes sets (audited there).
Anyone who may read the data dir may run them.

``apply CONFIG --unit U ID`` and ``rollback CONFIG --unit U`` act on the running twin over OPC UA with the user's
own login (engineer role): :mod:`linetwin_cli.params_deploy`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from linetwin_cli.common import data_dir_arg, line_data, load_or_exit
from linetwin_cli.failures import EXIT_FAILURE, CommandError
from linetwin_cli.params_deploy import add_deploy_commands, run_deploy

if TYPE_CHECKING:
    from process_models.parameter_sets import ParameterSet, ParameterSetStore

__all__ = ["add_params_command", "run_params"]


def add_params_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``params`` command group."""
    p = sub.add_parser("params", help="versioned model parameter sets (list, show, diff, export; apply, rollback "
                                      "on the running twin)")
    ps = p.add_subparsers(dest="params_command", required=True)
    lst = ps.add_parser("list", help="the stored parameter sets, oldest first")
    lst.add_argument("config", help="line config (TOML)")
    lst.add_argument("--unit", default=None, help="only the sets of this unit")
    data_dir_arg(lst)
    show = ps.add_parser("show", help="one set: values, uncertainty, lineage, data")
    show.add_argument("config", help="line config (TOML)")
    show.add_argument("id", help="set id (or a unique prefix)")
    data_dir_arg(show)
    diff = ps.add_parser("diff", help="the values that differ between two sets")
    diff.add_argument("config", help="line config (TOML)")
    diff.add_argument("old", help="set id A")
    diff.add_argument("new", help="set id B")
    data_dir_arg(diff)
    export = ps.add_parser("export", help="a set's verified JSON")
    export.add_argument("config", help="line config (TOML)")
    export.add_argument("id", help="set id (or a unique prefix)")
    export.add_argument("--output", default=None, help="file (default: standard output)")
    data_dir_arg(export)
    add_deploy_commands(ps)


def run_params(args: argparse.Namespace) -> int:
    """Run a ``params`` command: 0, 1 for a tampered set, 2 for bad input (unknown id, no store)."""
    from process_models.parameter_sets import (
        ParameterSetError,
        ParameterSetStore,
        declaration_hash,
        unit_model_declaration,
    )

    if args.params_command in ("apply", "rollback"):
        return run_deploy(args)
    config = load_or_exit(Path(args.config))
    store = ParameterSetStore(line_data(args, config).parameter_sets)
    current = {u.name: declaration_hash(unit_model_declaration(u.kind, u.model)) for u in config.units}
    try:
        if args.params_command == "list":
            if args.unit is not None and args.unit not in current:
                raise CommandError(f"--unit {args.unit}: the line '{config.name}' has no such unit; units: "
                                   f"{', '.join(current)}")
            sets = store.list(args.unit)
            if not sets:
                print(f"no parameter sets in {store.directory}", file=sys.stderr)
                return 0
            print(f"{'id':<18}{'unit':<16}{'created':<21}{'parent':<18}{'batches':>8}  estimated")
            for s in sets:
                stale = "" if current.get(s.unit) == s.declaration_hash else "*"
                print(f"{s.id + stale:<18}{s.unit:<16}{s.created[:19]:<21}{s.parent or '(nominal)':<18}"
                      f"{len(s.batch_ids):>8}  {', '.join(s.names) or '(nominal values)'}")
            if any(current.get(s.unit) != s.declaration_hash for s in sets):
                print("* not for the unit's current model declaration ([model] table changed since)")
            return 0
        if args.params_command == "show":
            s = store.get(_resolve(store, args.id))
            print(_show(s, current.get(s.unit) == s.declaration_hash))
            return 0
        if args.params_command == "diff":
            a, b = store.get(_resolve(store, args.old)), store.get(_resolve(store, args.new))
            print(_diff(a, b))
            return 0
        s = store.get(_resolve(store, args.id))
        text = json.dumps({"id": s.id, **s.content()}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"parameter set {s.id} written to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    except ParameterSetError as exc:
        raise CommandError(str(exc), EXIT_FAILURE if "altered" in str(exc) else 2) from None


def _resolve(store: ParameterSetStore, text: str) -> str:
    return store.resolve(text.lower())


def _show(s: ParameterSet, current: bool) -> str:
    se = s.standard_errors()
    report = s.report
    estimates = report.get("estimates", {})
    lines = [f"parameter set {s.id}", f"  unit {s.unit} ({s.model}), declaration {s.declaration_hash[:16]}…"
             + ("" if current else " (NOT the unit's current declaration)"),
             f"  created {s.created}, parent {s.parent or '(none: nominal values)'}",
             f"  batches {', '.join(s.batch_ids) or '(none)'}"
             + (f", data {s.data_window[0]} .. {s.data_window[1]}" if s.data_window else ""),
             f"  method {report.get('method', report.get('kind', '?'))}", "",
             f"  {'parameter':<40}{'value':>14}{'std. error':>12}{'95 % profile':>30}"]
    for name in sorted(s.values, key=lambda n: (n not in s.names, n)):
        mark = "*" if name in s.names else " "
        prof = estimates.get(name, {}).get("profile_95") if name in s.names else None
        lines.append(f" {mark}{name:<40}{s.values[name]:>14.6g}{(f'{se[name]:.3g}' if name in se else ''):>12}"
                     f"{(f'[{prof[0]:.6g}, {prof[1]:.6g}]' if prof else ''):>30}")
    lines.append("  * estimated (the others: held at the parent's / declared values)")
    return "\n".join(lines)


def _diff(a: ParameterSet, b: ParameterSet) -> str:
    from process_models.parameter_sets import diff_parameter_sets

    rows = diff_parameter_sets(a, b)
    se = b.standard_errors()
    lines = [f"{a.id} -> {b.id}" + ("" if a.declaration_hash == b.declaration_hash
                                    else " (different model declarations)")]
    if not rows:
        lines.append("  same values")
    for r in rows:
        rel = r["relative_change"]
        sig = (f"  ({(r['new'] - r['old']) / se[r['parameter']]:+.1f} std. errors of {b.id})"
               if r["parameter"] in se and r["old"] is not None and r["new"] is not None and se[r["parameter"]] > 0
               else "")
        lines.append(f"  {r['parameter']:<40}{_num(r['old']):>14} -> {_num(r['new']):<14}"
                     f"{'' if rel is None else f'{100 * rel:+.2f} %'}{sig}")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "(absent)" if x is None else f"{x:.6g}"
