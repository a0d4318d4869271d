"""Parameter sweeps of a simulation case (issue 18 item 7): a campaign whose base is a case file of ``linetwin
simulate`` (:mod:`process_models.case_file`) instead of a HIL scenario.

A sampled point sets, in the case file's tables, ``model.<option>`` (a ``[model]`` option or parameter),
``initial_state.<state>`` (a scalar state, SI), ``inputs.<input>`` (the input held constant at that value, SI) or
``case.until_s`` (the run's end time, s). Each point is one run (strategy ``simulate``): the case is validated with
the point applied (an invalid point is a failed run naming the key) and simulated; its KPIs are the final, minimum
and maximum value of every scalar output over the run (``final.<output>``, ``min.<output>``, ``max.<output>``, in
the output's declared unit; vector outputs, e.g. a column's axial profile, are left out of the table).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CASE_SECTIONS = ("model", "initial_state", "inputs", "case")
CASE_FIELDS = ("until_s",)
SWEEP_STRATEGY = "simulate"


def case_with_point(path: Path, point: Mapping[str, Any]) -> Any:
    """The case file at ``path`` with ``point``'s values set, validated (:class:`~process_models.case_file.CaseFile`;
    raises :class:`~process_models.case_file.CaseFileError` naming the file and key of what is refused)."""
    from process_models.case_file import CaseFileError, parse_case

    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CaseFileError(Path(path), [f"cannot read: {exc}"]) from None
    raw = copy.deepcopy(raw)
    for target, value in point.items():
        section, name = target.split(".", 1)
        if section == "inputs":
            raw.setdefault("inputs", {})[name] = {"value": value}
        else:
            raw.setdefault(section, {})[name] = value
    return parse_case(raw, Path(path))


def run_case_point(path: Path, point: Mapping[str, Any]) -> dict[str, float]:
    """Simulate the case at ``path`` with ``point`` applied; the KPIs of the module docstring."""
    case = case_with_point(path, point)
    result = case.simulate(case.times_s(), progress=False)
    kpis: dict[str, float] = {}
    for variable in case.declaration.outputs:
        if variable.size != 1:
            continue
        values = result.output(variable.name)
        kpis[f"final.{variable.name}"] = float(values[-1])
        kpis[f"min.{variable.name}"] = float(values.min())
        kpis[f"max.{variable.name}"] = float(values.max())
    return kpis


def case_target_problem(target: str) -> str | None:
    """None when ``target`` may be sampled in a case sweep, else what was expected."""
    section, _, name = target.partition(".")
    if section not in CASE_SECTIONS or not name or (section == "case" and name not in CASE_FIELDS):
        return "model.<option> | initial_state.<state> | inputs.<input> | case.until_s"
    return None
