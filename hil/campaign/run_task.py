"""One campaign run as a task a Dask worker executes: a sampled point of the base scenario under one strategy.

The task is plain data (picklable, no open files); the worker loads the base scenario from its path (workers share
the campaign's files and code: one checkout or a shared filesystem), applies the point and runs the stepped loop
(:func:`hil.stepped_batch.run_stepped_batch`) — or, in a case sweep (strategy ``simulate``), simulates the case with
the point applied (:func:`hil.campaign.case_runs.run_case_point`). Whatever the run raises is returned as the row's
``error``: a failing run is recorded and the campaign goes on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KPI_COLUMNS = ("final_d43_um", "d43_error_um", "d43_error_percent", "final_cv", "yield", "fines_fraction",
               "supersaturation_violation", "solves", "failed_solves", "fallbacks_used")
"""The KPIs (hil.scenario_kpis) a campaign keeps per run."""


@dataclass(frozen=True)
class RunTask:
    """One run: ``plant`` (the point's index), the sampled ``point`` (target → value), ``strategy``, content ``key``;
    ``base_path``: the base scenario file, or the case file of a sweep."""

    key: str
    plant: int
    strategy: str
    base_path: str
    point: dict[str, Any] = field(default_factory=dict)


def run_task(task: RunTask) -> dict[str, Any]:
    """Run ``task`` and return its result row: key, plant, strategy, status (ok | failed), error, wall_s, the
    point's values and the KPIs (:data:`KPI_COLUMNS`; a case sweep's: :mod:`hil.campaign.case_runs`)."""
    from hil.campaign.case_runs import SWEEP_STRATEGY, run_case_point
    from hil.campaign.points import apply_point
    from hil.scenario import load_scenario
    from hil.stepped_batch import run_stepped_batch

    start = time.perf_counter()
    row: dict[str, Any] = {"key": task.key, "plant": task.plant, "strategy": task.strategy, "status": "ok",
                           "error": None, **task.point}
    try:
        if task.strategy == SWEEP_STRATEGY:
            row.update(run_case_point(Path(task.base_path), task.point))
        else:
            scenario = apply_point(load_scenario(Path(task.base_path)), task.point)
            report = run_stepped_batch(scenario, strategy=task.strategy)
            row.update({k: report.kpis.get(k) for k in KPI_COLUMNS})
            row["plant_seed"] = scenario.seed
    except Exception as exc:  # the campaign records it and goes on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}".strip(),
                   traceback=traceback.format_exc(limit=4))
    row["wall_s"] = time.perf_counter() - start
    return row
