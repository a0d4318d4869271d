"""The InfluxDB backend against a real influxd (1.x, v1 API): writes, HistoryRead through the twin, and store
and forward across an outage (influxd stopped under load, restarted: every sample present exactly once)."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from tests.conftest import wait_until
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_line
from twin_server.config import load_line_config
from twin_server.historian.influx_store import InfluxStore
from twin_server.historian.recorder import HistoryRecorder
from twin_server.historian.settings import HistorianSettings, InfluxSettings

T_MAX = 2**62


def _store(influxd, tmp_path, buffer_samples: int = 10_000_000) -> InfluxStore:
    return InfluxStore(InfluxSettings(url=influxd.url, database="twin_test"), tmp_path / "data", buffer_samples)


def test_samples_setpoints_and_events_round_trip(influxd, tmp_path):
    store = _store(influxd, tmp_path)
    t0 = 1_700_000_000_000_000
    sid = store.series_id("line.tank.level")
    store.write([(sid, (t0 + i) / 1e6, float(i) / 3, 0 if i != 2 else 0x80050000, (t0 + i + 5) / 1e6)
                 for i in range(5)] + [(sid, (t0 + 10) / 1e6, None, 0x80320000, (t0 + 10) / 1e6)],
                [("line.tank.sp", t0, 21.5, "operator", "alice")],
                [(t0, "tank", "control", 'mode manual -> mpc, "quoted"')])
    raw = store.read_raw("line.tank.level", 0, T_MAX)
    assert raw.times_us == [t0 + i for i in range(5)] + [t0 + 10]
    assert raw.values == pytest.approx([i / 3 for i in range(5)] + [None])  # type: ignore[list-item]
    assert raw.statuses[2] == 0x80050000 and raw.statuses[5] == 0x80320000
    assert raw.server_times_us[1] == t0 + 6
    assert store.read_raw("line.tank.level", t0 + 1, t0 + 3, limit=1, reverse=True).times_us == [t0 + 3]
    assert store.read_setpoints(None, 0, T_MAX) == [("line.tank.sp", t0, 21.5, "operator", "alice")]
    assert store.read_events("tank", 0, T_MAX)[0][3] == 'mode manual -> mpc, "quoted"'
    assert store.keys() == ["line.tank.level"]
    store.close()


OUTAGE_S = 3.0
"""How long influxd stays down under load in the default outage test: store and forward is the same mechanism for
3 s as for 30 s (buffer while DOWN, replay in order once UP), so the suite proves it in 3 s."""
LONG_OUTAGE_S = 30.0
"""The outage of issue 9 (30 s), run under the ``long`` marker (``pytest -m long``)."""


@pytest.mark.parametrize("outage_s", [pytest.param(OUTAGE_S, id="3s"),
                                      pytest.param(LONG_OUTAGE_S, id="30s", marks=pytest.mark.long)])
def test_outage_under_load_loses_nothing_and_doubles_nothing(influxd, tmp_path, outage_s):
    store = _store(influxd, tmp_path)
    rec = HistoryRecorder(store, flush_interval_s=0.1)
    rec.historize_tag("tank", "level", "line.tank.level")
    rec.start()
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    sent: list[float] = []
    stop = threading.Event()

    def produce() -> None:  # 20 samples every 10 ms (2,000 samples/s) until told to stop
        i = 0
        while not stop.is_set():
            scan = [Sample("level", float(i + k), Quality.GOOD, t0 + timedelta(milliseconds=i + k)) for k in range(20)]
            rec.record_scan("tank", scan, datetime.now(UTC))
            sent.extend(float(i + k) for k in range(20))
            i += 20
            time.sleep(0.01)  # the producer's pace (load), not a synchronisation

    def wait(condition, what: str) -> None:
        deadline = time.monotonic() + 30 + outage_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait(lambda: store.stored_samples() >= 2_000, "2,000 samples stored before the outage")
        influxd.stop()  # the outage
        outage_start = time.monotonic()
        wait(lambda: store.buffer.samples >= 2_000, "2,000 samples buffered during the outage")
        assert store.state().startswith("DOWN") and "history: influxdb DOWN" in rec.status_text()
        # stay down outage_s in all under load (the length of the outage, not a synchronisation)
        time.sleep(max(0.0, outage_s - (time.monotonic() - outage_start)))
        buffered = store.buffer.samples
        influxd.start()
        wait(lambda: store.buffer.samples == 0, "the forward buffer replayed")
        after_replay = len(sent)
        wait(lambda: len(sent) >= after_replay + 1_000, "1,000 more samples sent after the replay")
    finally:
        stop.set()
        producer.join()
    rec.stop()
    raw = store.read_raw("line.tank.level", 0, T_MAX)
    assert buffered >= 2_000  # the outage went through the forward buffer (a count, not a time)
    assert raw.values == sent  # every sample, in order, exactly once
    assert raw.times_us == sorted(set(raw.times_us))
    assert rec.dropped == 0 and store.buffer.dropped == 0
    store.close()


def test_forward_buffer_full_drops_the_oldest_and_counts(influxd, tmp_path):
    influxd.stop()
    store = _store(influxd, tmp_path, buffer_samples=1_000)
    for b in range(5):  # 5 batches of 400 samples while influxd is down: room for 2
        store.write([(store.series_id("k"), (b * 1000 + i) / 1e6, float(b), 0, 0.0) for i in range(400)], [], [])
    assert store.buffer.dropped == 1_200 and store.buffer.samples == 800
    influxd.start()
    store._retry_at = 0.0
    store.idle()
    assert store.read_raw("k", 0, T_MAX).values == [3.0] * 400 + [4.0] * 400
    store.close()


async def test_history_read_through_the_twin_from_influxdb(influxd, tmp_path):
    config = load_line_config(PILOT)
    config = dataclasses.replace(config, scan_period_s=0.1, historian=HistorianSettings(
        backend="influxdb", flush_interval_s=0.1, influx=InfluxSettings(url=influxd.url, database="pilot")))
    async with live_line(config, 20.0, data_dir=tmp_path / "twin") as line:
        twin = line.twin
        t0 = datetime(2021, 3, 1, tzinfo=UTC)
        await twin.runtime.mirror_samples("feed_tank", [
            Sample("level", float(i), Quality.GOOD, t0 + timedelta(seconds=i)) for i in range(600)])
        backend = twin.historian.backend
        await wait_until(lambda: len(backend.read_raw("pilot_line.feed_tank.level", 0,
                                                      int((t0 + timedelta(hours=1)).timestamp() * 1e6))) == 600,
                         timeout_s=30.0, what="600 samples in InfluxDB")
        async with Client(twin.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            node = client.get_node(ua.NodeId("pilot_line.feed_tank.level", idx))
            raw = await node.read_raw_history(t0, t0 + timedelta(seconds=599), return_bounds=False)
            assert [dv.Value.Value for dv in raw] == [float(i) for i in range(600)]
            d = ua.ReadProcessedDetails(StartTime=t0, EndTime=t0 + timedelta(minutes=10), ProcessingInterval=60_000.0,
                                        AggregateType=[ua.NodeId(ua.ObjectIds.AggregateFunction_Average)])
            params = ua.HistoryReadParameters(HistoryReadDetails=d, ReleaseContinuationPoints=False,
                                              NodesToRead=[ua.HistoryReadValueId(NodeId=node.nodeid)])
            res = (await client.uaclient.history_read(params))[0]
            assert [dv.Value.Value for dv in res.HistoryData.DataValues] == [60 * m + 29.5 for m in range(10)]
        assert "history: influxdb ok" in twin.status_line()
