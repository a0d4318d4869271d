"""Running a campaign on Dask distributed: every (plant, strategy) run as a task, results stored by content key.

``run_campaign(campaign, out_dir, scheduler=None, workers=N)``: with ``scheduler`` (``tcp://HOST:PORT``) the
client connects to an existing cluster; without, an embedded :class:`distributed.LocalCluster` of ``workers``
processes is started and closed (:func:`hil.campaign.cluster.dask_client`). Dask is imported only when a campaign
runs.

Resumable: each finished run is written at once to ``out_dir/runs/<key>.json`` (key:
:mod:`hil.campaign.run_key`); a run whose file exists is not submitted again — a failed run too (its error is a
result; delete its file to retry). Progress goes to ``progress`` (stderr from the CLI), one line per finished run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hil.campaign.case_runs import SWEEP_STRATEGY
from hil.campaign.points import sample_points
from hil.campaign.run_key import case_run_key, run_key
from hil.campaign.run_task import RunTask, run_task
from hil.campaign.spec import Campaign


@dataclass(frozen=True)
class CampaignOutcome:
    """What a campaign run did: runs in the campaign, ``submitted`` this time, ``skipped`` (stored before),
    ``failed`` (all stored failures), the rows of every run (stored and new), wall time s."""

    total: int
    submitted: int
    skipped: int
    failed: int
    rows: list[dict[str, Any]]
    wall_s: float


def campaign_tasks(campaign: Campaign) -> list[RunTask]:
    """Every run of ``campaign``: each sampled point under each strategy (a case sweep: each point once), keyed by
    content."""
    tasks = []
    for plant, point in enumerate(sample_points(campaign)):
        if campaign.case is not None:
            tasks.append(RunTask(key=case_run_key(campaign.case, point), plant=plant, strategy=SWEEP_STRATEGY,
                                 base_path=str(campaign.base_path), point=point))
            continue
        assert campaign.scenario is not None
        seed = max(0, int(round(point["scenario.seed"]))) if "scenario.seed" in point else campaign.scenario.seed
        for strategy in campaign.strategies:
            runner = campaign.runners.get(strategy)
            content = runner.key_content() if runner is not None else None
            tasks.append(RunTask(key=run_key(campaign.scenario, point, strategy, seed, content), plant=plant,
                                 strategy=strategy, base_path=str(campaign.base_path), point=point, runner=runner))
    return tasks


def run_campaign(campaign: Campaign, out_dir: Path, *, scheduler: str | None = None, workers: int = 2,
                 progress: TextIO | None = sys.stderr,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> CampaignOutcome:
    """Run ``campaign``'s missing runs on Dask and return every run's row (see the module docstring).

    ``on_row`` is called with each new row after it is stored (tests interrupt a campaign from it).
    """
    from distributed import as_completed

    from hil.campaign.cluster import dask_client

    start = time.perf_counter()
    runs_dir = Path(out_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    tasks = campaign_tasks(campaign)
    stored = {t.key: row for t in tasks if (row := _stored(runs_dir, t.key)) is not None}
    todo = [t for t in tasks if t.key not in stored]
    rows = dict(stored)
    shape = (f"{campaign.plants} points of {campaign.case.name}" if campaign.case is not None
             else f"{campaign.plants} plants x {len(campaign.strategies)} strategies")
    _say(progress, f"campaign '{campaign.name}': {len(tasks)} runs ({shape}), {len(stored)} stored, "
                   f"{len(todo)} to run")
    if todo:
        with dask_client(scheduler, workers) as client:
            futures = {client.submit(run_task, t, key=f"run-{t.key}", pure=False): t for t in todo}
            done = 0
            for future in as_completed(futures):
                task = futures[future]
                try:
                    row = future.result()
                except Exception as exc:  # the worker died or the task could not run
                    row = {"key": task.key, "plant": task.plant, "strategy": task.strategy, "status": "failed",
                           "error": f"{type(exc).__name__}: {exc}", **task.point}
                _store(runs_dir, row)
                rows[task.key] = row
                done += 1
                _say(progress, _progress_line(done, len(todo), row, time.perf_counter() - start))
                if on_row is not None:
                    on_row(row)
    ordered = [rows[t.key] for t in tasks if t.key in rows]
    failed = sum(1 for r in ordered if r.get("status") != "ok")
    return CampaignOutcome(total=len(tasks), submitted=len(todo), skipped=len(stored), failed=failed, rows=ordered,
                           wall_s=time.perf_counter() - start)


def _stored(runs_dir: Path, key: str) -> dict[str, Any] | None:
    path = runs_dir / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # absent, or cut short by an interruption: run it again


def _store(runs_dir: Path, row: dict[str, Any]) -> None:
    """Write the row atomically (a temporary file renamed), so an interruption never leaves half a result."""
    path = runs_dir / f"{row['key']}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(row, sort_keys=True, default=str))
    tmp.replace(path)


def _progress_line(done: int, total: int, row: dict[str, Any], elapsed_s: float) -> str:
    eta = elapsed_s / done * (total - done)
    if row.get("status") != "ok":
        what = f"FAILED: {str(row.get('error'))[:120]}"
    elif row.get("final_d43_um") is not None:
        what = f"d43 {row['final_d43_um']:.0f} um"
    else:
        what = "ok"
    unit = "point" if row["strategy"] == SWEEP_STRATEGY else "plant"
    return (f"[{done}/{total}] {unit} {row['plant']} {row['strategy']}: {what} "
            f"({elapsed_s:.0f} s elapsed, ~{eta:.0f} s left)")


def _say(stream: TextIO | None, line: str) -> None:
    if stream is not None:
        print(line, file=stream, flush=True)
