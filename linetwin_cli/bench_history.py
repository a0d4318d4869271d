"""Bench batches recorded into a line's historian: stepped HIL batches (:mod:`hil.stepped_batch`) written through
:class:`twin_server.historian.batch_recording.StoreBatchRecorder`, as the twin's historian would have kept them.

What ``linetwin fit`` is tested and benchmarked on (a plant with known true parameters), and the recording half of
the commissioning workflow (record a batch on the bench, fit it, apply the set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from hil.scenario import Scenario
from hil.scenario_report import ScenarioReport
from hil.stepped_batch import run_stepped_batch
from twin_server.historian.batches import batch_id
from twin_server.historian.records import HistoryBackend
from twin_server.historian.timebase import to_us

__all__ = ["record_stepped_batches"]

BATCH_GAP_S = 3600.0
"""Plant seconds between one recorded batch's end and the next one's StartBatch."""


def record_stepped_batches(scenario: Scenario, backend: HistoryBackend, line: str, first_start: datetime,
                           seeds: Sequence[int], record_period_s: float = 1.0,
                           parameter_set: tuple[str, Mapping[str, float]] | None = None
                           ) -> list[tuple[str, ScenarioReport]]:
    """Run one stepped batch of ``scenario`` per seed (plant noise), recorded into ``backend`` under ``line``'s keys,
    the first starting at ``first_start`` (aware UTC), the next :data:`BATCH_GAP_S` after the previous one's end,
    each on ``parameter_set`` (id, values; None: the nominal values; see :func:`hil.stepped_batch.run_stepped_batch`).
    Returns (batch id, report) per batch."""
    from twin_server.historian.batch_recording import StoreBatchRecorder

    out = []
    start = first_start
    for seed in seeds:
        recorder = StoreBatchRecorder(backend, line, scenario.unit, start)
        report = run_stepped_batch(scenario, seed=seed, recorder=recorder, record_period_s=record_period_s,
                                   parameter_set=parameter_set)
        recorder.close()
        out.append((batch_id(to_us(start)), report))
        start = start + timedelta(seconds=scenario.batch_duration_s + BATCH_GAP_S)
    return out
