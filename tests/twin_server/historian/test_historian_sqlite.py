"""The SQLite store and the recorder: batches, deadband, retention, reopening appends, bounded queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from twin_server.historian.recorder import HistoryRecorder
from twin_server.historian.sqlite_store import SqliteStore
from twin_server.historian.timebase import to_us

T_MAX = 2**62


def _scan(i: int, ts: datetime, level: float) -> list[Sample]:
    return [Sample("level", level, Quality.GOOD, ts), Sample("temperature", 20.0 + i, Quality.GOOD, ts),
            Sample("not_historized", 1.0, Quality.GOOD, ts)]


def test_recorder_batches_applies_deadband_and_reopening_appends(tmp_path):
    store = SqliteStore(tmp_path)
    rec = HistoryRecorder(store, flush_interval_s=0.05)
    rec.historize_tag("tank", "level", "line.tank.level", deadband=0.5)
    rec.historize_tag("tank", "temperature", "line.tank.temperature")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    levels = [1.0, 1.2, 1.4, 1.6, 1.7, 3.0, 2.9]  # deadband 0.5 keeps 1.0, 1.6, 3.0
    for i, lv in enumerate(levels):
        rec.record_scan("tank", _scan(i, t0 + timedelta(seconds=i), lv), datetime.now(UTC))
    rec.record_setpoint("line.tank.jacket_temperature_setpoint", 25.0, "mpc")
    rec.record_event("tank", "mode manual -> mpc (operator)")
    rec.start()
    rec.stop()
    assert store.read_raw("line.tank.level", 0, T_MAX).values == [1.0, 1.6, 3.0]
    assert len(store.read_raw("line.tank.temperature", 0, T_MAX)) == len(levels)
    assert store.read_raw("line.tank.not_historized", 0, T_MAX).values == []
    (sp,) = store.read_setpoints(None, 0, T_MAX)
    assert sp[0] == "line.tank.jacket_temperature_setpoint" and sp[2:4] == (25.0, "mpc")
    assert store.read_events("tank", 0, T_MAX)[0][3] == "mode manual -> mpc (operator)"
    assert store.stored_samples() == 3 + len(levels)
    store.close()
    again = SqliteStore(tmp_path)  # a restart appends to the same file
    assert again.stored_samples() == 3 + len(levels)
    again.write([(again.series_id("line.tank.level"), (t0 + timedelta(seconds=100)).timestamp(), 5.0, 0, 0.0)],
                [], [])
    assert again.read_raw("line.tank.level", 0, T_MAX).values == [1.0, 1.6, 3.0, 5.0]
    again.close()


def test_retention_deletes_only_what_is_older_than_the_age(tmp_path):
    store = SqliteStore(tmp_path)
    now = datetime.now(UTC)
    rows = [(store.series_id("k"), (now - timedelta(days=d)).timestamp(), float(d), 0, 0.0) for d in (40, 31, 29, 1, 0)]
    store.write(rows, [("k", to_us(now - timedelta(days=40)), 1.0, "operator", "admin")],
                [(to_us(now - timedelta(days=40)), "tank", "control", "old"), (to_us(now), "tank", "control", "new")])
    rec = HistoryRecorder(store, retention_s=30 * 86400.0)
    assert rec.apply_retention() == 2 + 1 + 1
    assert store.read_raw("k", 0, T_MAX).values == [29.0, 1.0, 0.0]
    assert [e[3] for e in store.read_events(None, 0, T_MAX)] == ["new"]
    assert store.stored_samples() == 3
    store.close()


def test_bounded_queue_drops_the_oldest_and_counts_them(tmp_path):
    store = SqliteStore(tmp_path)
    rec = HistoryRecorder(store, batch_size=1_000, queue_size=1_000)
    rec.historize_tag("tank", "level", "k")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(1_500):  # writer thread not started: the queue fills up
        rec.record_scan("tank", [Sample("level", float(i), Quality.GOOD, t0 + timedelta(seconds=i))], t0)
    assert rec.dropped == 500 and rec.queue_depth() == 1_000
    rec.flush()
    assert store.read_raw("k", 0, T_MAX).values == [float(i) for i in range(500, 1_500)]
    assert "500 dropped" in rec.status_text()
    store.close()
