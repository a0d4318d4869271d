"""``linetwin fit``'s first step: the unit's recorded batches from the line's historian, as fitting data."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from linetwin_cli.failures import CommandError

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan
    from process_models.fitting import FitData
    from twin_server.config import LineConfig, UnitConfig
    from twin_server.historian.batches import RecordedBatch

__all__ = ["read_recorded_batches"]


def read_recorded_batches(config: LineConfig, unit: UnitConfig, plan: ControlPlan, history: Path,
                          wanted: Sequence[str] | None, start: datetime, end: datetime,
                          delays: Mapping[str, float], sample_interval_s: float,
                          progress: Callable[[str], None]) -> tuple[list[RecordedBatch], list[FitData]]:
    """The batches of ``unit`` named in ``wanted`` (ids or prefixes), else those started in ``[start, end]``, and
    each as :class:`~process_models.fitting.FitData`. No history, no batch or a batch without the data the fit
    needs: :class:`~linetwin_cli.failures.CommandError` naming it."""
    from controllers.batch_fit_data import BatchDataError, batch_fit_data
    from twin_server.historian.batches import BatchSelectionError, find_batches, read_batch_series, select_batches
    from twin_server.historian.service import open_backend
    from twin_server.historian.sqlite_store import FILE_NAME
    from twin_server.historian.timebase import to_us

    if config.historian.backend == "sqlite" and not (history / FILE_NAME).is_file():
        raise CommandError(f"--data-dir: no history at {history / FILE_NAME}; expected the line's data directory "
                           "(its history/ folder) with recorded batches")
    backend = open_backend(config.historian, history)
    try:
        try:
            found = find_batches(backend, unit.name, to_us(start), to_us(end))
            if wanted is not None:
                batches = select_batches(found, wanted)
            else:
                batches = found
                if not batches:
                    raise CommandError(f"--from {start.isoformat()} --to {end.isoformat()}: no batch of unit "
                                       f"'{unit.name}' started in that range (StartBatch events in "
                                       f"{config.historian.backend} history)")
        except BatchSelectionError as exc:
            raise CommandError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise CommandError(f"{history}: cannot read the history: {exc}") from None
        experiments = []
        key_prefix = f"{config.name}.{unit.name}"
        tags = [t.name for t in unit.tags]
        for batch in batches:
            series = read_batch_series(backend, key_prefix, tags, batch)
            n = sum(len(s.times_s) for s in series.values())
            scale = "" if abs(batch.time_scale - 1.0) < 1e-3 else \
                f" (recorded at {batch.time_scale:.0f}x real time: a HIL bench)"
            progress(f"batch {batch.id}: {batch.plant_duration_s:.0f} s{scale}, {n} recorded samples"
                     + ("" if batch.complete else " (no StopBatch recorded: up to the next start / --to)"))
            try:
                experiments.append(batch_fit_data(plan, {k: (s.times_s, s.values) for k, s in series.items()},
                                                  batch.plant_duration_s, batch.id, sample_interval_s=sample_interval_s,
                                                  delays_s=delays))
            except BatchDataError as exc:
                raise CommandError(str(exc)) from None
    finally:
        backend.close()
    return batches, experiments
