"""One campaign run as a task a Dask worker executes: a sampled point of the base scenario under one strategy.

The task is plain data (picklable, no open files); the worker loads the base scenario from its path (workers share
the campaign's files and code: one checkout or a shared filesystem), applies the point and runs the task's strategy
(:mod:`hil.campaign.strategies`: a stepped-loop batch, or a workflow of batches such as ``mpc_fitted``) — or, in a
case sweep (strategy ``simulate``), simulates the case with the point applied
(:func:`hil.campaign.case_runs.run_case_point`). Whatever the run raises is returned as the row's ``error``: a
failing run is recorded and the campaign goes on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.campaign.strategies import KPI_COLUMNS, CampaignStrategy

__all__ = ["KPI_COLUMNS", "RunTask", "run_task"]


@dataclass(frozen=True)
class RunTask:
    """One run: ``plant`` (the point's index), the sampled ``point`` (target → value), ``strategy`` (its name) and
    ``runner`` (the strategy itself; None in a case sweep), content ``key``; ``base_path``: the base scenario file,
    or the case file of a sweep."""

    key: str
    plant: int
    strategy: str
    base_path: str
    point: dict[str, Any] = field(default_factory=dict)
    runner: CampaignStrategy | None = None


def run_task(task: RunTask) -> dict[str, Any]:
    """Run ``task`` and return its result row: key, plant, strategy, status (ok | failed), error, wall_s, the
    point's values and the strategy's columns (the KPIs, :data:`KPI_COLUMNS`, and its own; a case sweep's:
    :mod:`hil.campaign.case_runs`)."""
    from hil.campaign.case_runs import SWEEP_STRATEGY, run_case_point
    from hil.campaign.points import apply_point
    from hil.campaign.strategies import BUILTIN_STRATEGIES
    from hil.scenario import load_scenario

    start = time.perf_counter()
    row: dict[str, Any] = {"key": task.key, "plant": task.plant, "strategy": task.strategy, "status": "ok",
                           "error": None, **task.point}
    try:
        if task.strategy == SWEEP_STRATEGY:
            row.update(run_case_point(Path(task.base_path), task.point))
        else:
            runner = task.runner or BUILTIN_STRATEGIES[task.strategy]
            scenario = apply_point(load_scenario(Path(task.base_path)), task.point)
            row.update(runner.run(scenario))
    except Exception as exc:  # the campaign records it and goes on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}".strip(),
                   traceback=traceback.format_exc(limit=4))
    row["wall_s"] = time.perf_counter() - start
    return row
