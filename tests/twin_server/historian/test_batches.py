"""Recorded batches are found from the StartBatch/StopBatch events the historian keeps, named by their start, and
read back per tag; a bench batch is written into the store as the twin records it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from twin_server.historian.batch_recording import StoreBatchRecorder
from twin_server.historian.batches import (
    BatchSelectionError,
    batch_id,
    find_batches,
    read_batch_series,
    select_batches,
)
from twin_server.historian.sqlite_store import SqliteStore
from twin_server.historian.timebase import to_us

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "history")
    yield s
    s.close()


def record_batch(store, start: datetime, duration_s: float, stop: bool = True, unit: str = "crystallizer") -> None:
    rec = StoreBatchRecorder(store, "pilot_line", unit, start)
    rec.event(0.0, "batch started in mode auto, target 400 µm")
    for t in range(0, int(duration_s) + 1, 10):
        rec.scan(float(t), {"temperature": 40.0 - t / 1000.0, "solute_concentration": None if t == 20 else 300.0})
    rec.setpoint(0.0, "jacket_temperature_setpoint", 40.0, "recipe")
    if stop:
        rec.event(duration_s, f"batch stopped at t={duration_s:.0f} s (batch duration reached)")
    rec.close()


def test_batches_are_bounded_by_their_events_and_named_by_their_start(store):
    record_batch(store, T0, 600.0)
    record_batch(store, T0 + timedelta(hours=1), 300.0, stop=False)          # twin stopped mid-batch
    record_batch(store, T0 + timedelta(hours=2), 600.0)
    record_batch(store, T0 + timedelta(hours=1, minutes=30), 600.0, unit="feed_tank")  # another unit's
    found = find_batches(store, "crystallizer", 0, to_us(T0 + timedelta(days=1)))
    assert [b.id for b in found] == ["2026-12-01T08:00:00.000Z", "2026-12-01T09:00:00.000Z",
                                     "2026-12-01T10:00:00.000Z"]
    assert [b.complete for b in found] == [True, False, True]
    assert found[0].duration_s == 600.0
    assert found[1].end_us == found[2].start_us                    # an open batch ends at the next start
    assert batch_id(to_us(T0 + timedelta(milliseconds=1234))) == "2026-12-01T08:00:01.234Z"
    later = find_batches(store, "crystallizer", to_us(T0 + timedelta(minutes=30)), to_us(T0 + timedelta(hours=2)))
    assert [b.id for b in later][:1] == ["2026-12-01T09:00:00.000Z"]        # started in the range only


def test_selecting_batches_by_id_prefix(store):
    record_batch(store, T0, 600.0)
    record_batch(store, T0 + timedelta(hours=1), 600.0)
    found = find_batches(store, "crystallizer", 0, to_us(T0 + timedelta(days=1)))
    assert [b.id for b in select_batches(found, ["2026-12-01T09", "2026-12-01T08:00"])] == [
        "2026-12-01T09:00:00.000Z", "2026-12-01T08:00:00.000Z"]
    with pytest.raises(BatchSelectionError, match="--batch 2026-12-01: matches 2 batches"):
        select_batches(found, ["2026-12-01"])
    with pytest.raises(BatchSelectionError, match="no recorded batch with that id; batches: 2026-12-01T08"):
        select_batches(found, ["2025"])
    with pytest.raises(BatchSelectionError, match="named twice"):
        select_batches(found, ["2026-12-01T08", "2026-12-01T08:00:00"])


def test_a_batch_reads_back_per_tag_with_bad_samples_as_nan(store):
    record_batch(store, T0, 600.0)
    batch = find_batches(store, "crystallizer", 0, to_us(T0 + timedelta(days=1)))[0]
    series = read_batch_series(store, "pilot_line.crystallizer", ["temperature", "solute_concentration", "level"],
                               batch)
    assert set(series) == {"temperature", "solute_concentration"}          # no history of "level": absent
    t = series["temperature"]
    assert np.allclose(t.times_s, np.arange(0.0, 601.0, 10.0)) and t.values[0] == 40.0
    c = series["solute_concentration"].values
    assert np.isnan(c[2]) and np.all(np.isfinite(np.delete(c, 2)))
    assert store.read_setpoints(None, batch.start_us, batch.end_us)[0][2:4] == (40.0, "recipe")


def test_a_recorder_refuses_a_naive_start(store):
    with pytest.raises(ValueError, match="naive"):
        StoreBatchRecorder(store, "pilot_line", "crystallizer", datetime(2026, 12, 1))


def test_a_batch_recorded_on_a_bench_at_n_times_real_time_reads_back_in_plant_seconds(store):
    # the twin stamps with the wall clock: a 1200 s batch at 400x is recorded over 3 s; its stop event says t=1200 s
    rec = StoreBatchRecorder(store, "pilot_line", "crystallizer", T0)
    rec.event(0.0, "batch started in mode mpc, target 400 µm")
    for k in range(31):
        rec.scan(k * 0.1, {"temperature": 40.0 - k / 10.0})
    rec.event(3.0, "batch stopped at t=1200 s (batch duration reached); mode manual, holding the last setpoint")
    rec.close()
    record_batch(store, T0 + timedelta(hours=1), 600.0, stop=False)
    bench, open_batch = find_batches(store, "crystallizer", 0, to_us(T0 + timedelta(days=1)))
    assert bench.stop_time_s == 1200.0 and bench.duration_s == 3.0 and bench.time_scale == pytest.approx(400.0)
    assert bench.plant_duration_s == 1200.0
    series = read_batch_series(store, "pilot_line.crystallizer", ["temperature"], bench)["temperature"]
    assert np.allclose(series.times_s, np.arange(0.0, 1201.0, 40.0))
    assert open_batch.stop_time_s is None and open_batch.time_scale == 1.0       # no stop event: as recorded
    assert open_batch.plant_duration_s == open_batch.duration_s
