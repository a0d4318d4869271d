"""HistoryRead (raw, processed, at-time) from an asyncua client against the live twin with its SQLite historian.

Samples are mirrored through the runtime's real mirror path (``LineRuntime.mirror_samples``) with source
timestamps in a past window (so live scans do not mix in), then read back over OPC UA and checked against
values computed here, independently, from what was mirrored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from asyncua import Client, ua

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from tests.conftest import wait_until
from tests.security_helpers import OPERATOR, add_user, client_as
from tests.twin_server.line_fixture import NAMESPACE, live_pilot_line
from twin_server.security.roles import Role

# the tests share the module's live line (and its loop), on one xdist worker
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.shares_module_fixture]

T0 = datetime(2020, 1, 1, tzinfo=UTC)
N = 12_000
BAD = range(3000, 3030)  # samples 3000..3029 are Bad (a PLC outage)
KEY = "pilot_line.feed_tank.level"


def _value(i: int) -> float:
    return 1.0 + 0.5 * math.sin(i / 50.0) + 0.001 * i


def _samples() -> list[Sample]:
    out = []
    for i in range(N):
        q = Quality.BAD_COMMUNICATION_ERROR if i in BAD else Quality.GOOD
        out.append(Sample("level", _value(i), q, T0 + timedelta(seconds=i)))
    return out


async def _mirror_history(line) -> None:
    samples = _samples()
    for a in range(0, N, 1000):
        await line.twin.runtime.mirror_samples("feed_tank", samples[a:a + 1000])
    backend = line.twin.historian.backend

    def stored() -> bool:
        return len(backend.read_raw(KEY, 0, int((T0 + timedelta(seconds=N)).timestamp() * 1e6))) == N

    await wait_until(stored, timeout_s=30.0, what="the mirrored samples in the historian")


def _params(details, node_id: ua.NodeId, cp: bytes | None = None) -> ua.HistoryReadParameters:
    params = ua.HistoryReadParameters()
    params.HistoryReadDetails = details
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    params.ReleaseContinuationPoints = False
    params.NodesToRead = [ua.HistoryReadValueId(NodeId=node_id, ContinuationPoint=cp)]
    return params


async def _history_read(client: Client, details, node_id: ua.NodeId, cp: bytes | None = None) -> ua.HistoryReadResult:
    return (await client.uaclient.history_read(_params(details, node_id, cp)))[0]


def _processed(start: datetime, end: datetime, interval_s: float, aggregate: int) -> ua.ReadProcessedDetails:
    d = ua.ReadProcessedDetails()
    d.StartTime, d.EndTime = start, end
    d.ProcessingInterval = interval_s * 1000.0
    d.AggregateType = [ua.NodeId(aggregate)]
    d.AggregateConfiguration = ua.AggregateConfiguration(UseServerCapabilitiesDefaults=True, PercentDataBad=100,
                                                         PercentDataGood=100)
    return d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def line_with_history(tmp_path_factory):
    """One live line for the module's read-only HistoryRead checks (they read a past window that live scans do not
    touch)."""
    async with live_pilot_line(data_dir=tmp_path_factory.mktemp("linetwin_data")) as line:
        await _mirror_history(line)
        yield line


async def test_nodes_are_historizing_with_history_read_access(line_with_history):
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        node = client.get_node(ua.NodeId(KEY, idx))
        assert await node.read_attribute(ua.AttributeIds.Historizing) is not None
        assert (await node.read_attribute(ua.AttributeIds.Historizing)).Value.Value is True
        access = (await node.read_attribute(ua.AttributeIds.AccessLevel)).Value.Value
        assert access & ua.AccessLevel.HistoryRead.mask
        assert access & ua.AccessLevel.CurrentRead.mask


async def test_raw_read_with_continuation_points_returns_every_value_once(line_with_history):
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        nid = ua.NodeId(KEY, idx)
        d = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=T0, EndTime=T0 + timedelta(seconds=N),
                                      NumValuesPerNode=2500, ReturnBounds=False)
        got: list[ua.DataValue] = []
        cp = None
        responses = 0
        while True:
            res = await _history_read(client, d, nid, cp)
            assert res.StatusCode.is_good()
            got += res.HistoryData.DataValues
            responses += 1
            cp = res.ContinuationPoint
            if not cp:
                break
        assert responses == math.ceil(N / 2500)
        assert [dv.SourceTimestamp.replace(tzinfo=UTC) for dv in got] == [T0 + timedelta(seconds=i) for i in range(N)]
        for i, dv in enumerate(got):
            if i in BAD:
                assert dv.StatusCode.value == Quality.BAD_COMMUNICATION_ERROR
            else:
                assert dv.StatusCode.is_good()
                assert dv.Value.Value == pytest.approx(_value(i), abs=1e-12)
        # backwards (end < start) gives the same values, newest first
        back = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=T0 + timedelta(seconds=99),
                                         EndTime=T0, NumValuesPerNode=0, ReturnBounds=False)
        res = await _history_read(client, back, nid)
        assert [dv.Value.Value for dv in res.HistoryData.DataValues] == pytest.approx(
            [_value(i) for i in range(99, -1, -1)])
        # releasing a continuation point answers Good with nothing
        first = await _history_read(client, d, nid)
        params = _params(d, nid, first.ContinuationPoint)
        params.ReleaseContinuationPoints = True
        released = (await client.uaclient.history_read(params))[0]
        assert released.StatusCode.is_good() and not released.ContinuationPoint


async def test_raw_read_bounds(line_with_history):
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        nid = ua.NodeId(KEY, idx)
        d = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=T0 + timedelta(seconds=10.5),
                                      EndTime=T0 + timedelta(seconds=20.5), NumValuesPerNode=0, ReturnBounds=True)
        values = (await _history_read(client, d, nid)).HistoryData.DataValues
        secs = [(dv.SourceTimestamp.replace(tzinfo=UTC) - T0).total_seconds() for dv in values]
        assert secs == [float(s) for s in range(10, 22)]  # 10 and 21 are the bounding values
        before = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=T0 - timedelta(days=1),
                                           EndTime=T0 + timedelta(seconds=1.5), NumValuesPerNode=0, ReturnBounds=True)
        values = (await _history_read(client, before, nid)).HistoryData.DataValues
        assert values[0].StatusCode.value == ua.StatusCodes.BadBoundNotFound
        assert [dv.Value.Value for dv in values[1:]] == pytest.approx([_value(0), _value(1), _value(2)])


def _expected_time_average(a: int, b: int) -> tuple[float | None, float]:
    """Trapezoids between Good neighbours, held value before a Bad one; returns (average, good seconds)."""
    area = good = 0.0
    for i in range(a, b):
        if i in BAD:
            continue
        nxt = i + 1
        area += (_value(i) + _value(nxt)) / 2 if nxt not in BAD else _value(i)
        good += 1.0
    return (area / good if good else None), good


async def test_processed_reads_match_values_computed_from_the_mirror(line_with_history):
    start, minutes = T0 + timedelta(seconds=2940), 4  # 2940..3180: the Bad stretch lies in minute 2
    end = start + timedelta(minutes=minutes)
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        nid = ua.NodeId(KEY, idx)
        results = {}
        for name in ("Average", "TimeAverage", "Minimum", "Maximum", "Count", "Interpolative"):
            res = await _history_read(client, _processed(start, end, 60.0, getattr(ua.ObjectIds,
                                                                               f"AggregateFunction_{name}")), nid)
            assert res.StatusCode.is_good(), name
            results[name] = res.HistoryData.DataValues
            assert len(results[name]) == minutes, name
    for m in range(minutes):
        a = 2940 + 60 * m
        idxs = range(a, a + 60)
        good = [_value(i) for i in idxs if i not in BAD]
        has_bad = any(i in BAD for i in idxs)
        avg, mn, mx, cnt = (results[n][m] for n in ("Average", "Minimum", "Maximum", "Count"))
        for dv in (avg, mn, mx, cnt):
            assert dv.SourceTimestamp.replace(tzinfo=UTC) == start + timedelta(minutes=m)
            # Bad data in the interval: less than PercentDataGood (100 %) Good -> UncertainDataSubNormal
            severity = ua.StatusCodes.UncertainDataSubNormal if has_bad else ua.StatusCodes.Good
            assert dv.StatusCode.value & 0xFFFF0000 == severity
            assert dv.StatusCode.value & 0x400 and dv.StatusCode.value & 0x1  # DataValue info, Calculated
        assert avg.Value.Value == pytest.approx(sum(good) / len(good), rel=1e-12)
        assert mn.Value.Value == pytest.approx(min(good))
        assert mx.Value.Value == pytest.approx(max(good))
        assert cnt.Value.Value == len(good) and cnt.Value.VariantType == ua.VariantType.Int32
        ta = results["TimeAverage"][m]
        expected, good_s = _expected_time_average(a, a + 60)
        assert ta.Value.Value == pytest.approx(expected, rel=1e-9)
        assert (ta.StatusCode.value & 0xFFFF0000) == (ua.StatusCodes.Good if good_s == 60 else
                                                      ua.StatusCodes.UncertainDataSubNormal)
        ip = results["Interpolative"][m]
        assert ip.Value.Value == pytest.approx(_value(a))  # a raw value exists at each interval start
    # an interval that is all Bad: Bad, no value
    d = _processed(T0 + timedelta(seconds=3001), T0 + timedelta(seconds=3021), 20.0,
                   ua.ObjectIds.AggregateFunction_Average)
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        res = await _history_read(client, d, ua.NodeId(KEY, idx))
    (dv,) = res.HistoryData.DataValues
    assert dv.StatusCode.is_bad() and dv.Value.Value is None


async def test_read_at_time_interpolates_between_mirrored_values(line_with_history):
    async with Client(line_with_history.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        d = ua.ReadAtTimeDetails()
        d.ReqTimes = [T0 + timedelta(seconds=100), T0 + timedelta(seconds=100.25), T0 + timedelta(seconds=3029.5),
                      T0 - timedelta(seconds=5)]
        d.UseSimpleBounds = True
        values = (await _history_read(client, d, ua.NodeId(KEY, idx))).HistoryData.DataValues
        assert values[0].Value.Value == pytest.approx(_value(100)) and values[0].StatusCode.is_good()
        assert values[1].Value.Value == pytest.approx(0.75 * _value(100) + 0.25 * _value(101))
        assert values[1].StatusCode.value & 0x2  # Interpolated
        assert values[2].StatusCode.is_bad()  # a Bad bound with simple bounds
        assert values[3].StatusCode.value & 0xFFFF0000 == ua.StatusCodes.BadNoData
        d.UseSimpleBounds = False  # bounds are the nearest Good values: 2999 and 3030, not adjacent -> Uncertain
        values = (await _history_read(client, d, ua.NodeId(KEY, idx))).HistoryData.DataValues
        frac = (3029.5 - 2999) / (3030 - 2999)
        assert values[2].Value.Value == pytest.approx(_value(2999) + frac * (_value(3030) - _value(2999)))
        assert values[2].StatusCode.value & 0xFFFF0000 == ua.StatusCodes.UncertainDataSubNormal


@pytest.mark.slow
async def test_live_values_are_recorded_and_readable():
    async with live_pilot_line() as line, Client(line.url) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        node = client.get_node(ua.NodeId("pilot_line.crystallizer.temperature", idx))
        since = datetime.now(UTC) - timedelta(seconds=1)

        async def some_history() -> bool:
            return len(await node.read_raw_history(since, datetime.now(UTC), return_bounds=False)) >= 5

        await wait_until(some_history, timeout_s=30.0, what="live history of crystallizer.temperature")
        values = await node.read_raw_history(since, datetime.now(UTC), return_bounds=False)
        times = [dv.SourceTimestamp for dv in values]
        assert times == sorted(times)
        assert all(dv.StatusCode.is_good() for dv in values)
        assert "history: sqlite ok" in line.twin.status_line()
        # a node that is not historized: the matching Bad status
        res = await _history_read(client, ua.ReadRawModifiedDetails(
            StartTime=since, EndTime=datetime.now(UTC), NumValuesPerNode=0),
            ua.NodeId("pilot_line.crystallizer.plc_connected", idx))
        assert res.StatusCode.value == ua.StatusCodes.BadHistoryOperationUnsupported


@pytest.mark.slow
async def test_operator_setpoints_and_control_events_are_kept_and_events_are_history_readable():
    async with live_pilot_line() as line, client_as(line.url, OPERATOR) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        since = datetime.now(UTC) - timedelta(seconds=1)
        sp = client.get_node(ua.NodeId("pilot_line.feed_tank.jacket_temperature_setpoint", idx))
        await wait_until(lambda: line.twin.runtime.health["feed_tank"].connected, timeout_s=30.0, what="PLC link")
        await wait_until(lambda: line.twin.runtime.adapters["feed_tank"].last_samples.get(
            "jacket_temperature_setpoint") is not None, timeout_s=30.0, what="the setpoint's read-back")
        current = line.twin.runtime.adapters["feed_tank"].last_samples["jacket_temperature_setpoint"].value
        await sp.write_value(ua.DataValue(ua.Variant(current, ua.VariantType.Double)))  # within the rate limit
        mode = client.get_node(ua.NodeId("pilot_line.crystallizer.control.mode", idx))
        await mode.write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
        backend = line.twin.historian.backend
        end_us = int((datetime.now(UTC) + timedelta(hours=1)).timestamp() * 1e6)
        await wait_until(lambda: backend.read_setpoints(None, 0, end_us)
                         and any("mode manual -> auto" in e[3] for e in backend.read_events(None, 0, end_us)),
                         timeout_s=10.0, what="the setpoint and the mode change event in the historian")
        (key, _, value, source, user) = backend.read_setpoints(None, 0, end_us)[0]
        assert (key, value, source) == ("pilot_line.feed_tank.jacket_temperature_setpoint", current, "operator")
        unit = client.get_node(ua.NodeId("pilot_line.crystallizer", idx))
        assert (await unit.read_event_notifier()) & {ua.EventNotifier.HistoryRead}
        events = await unit.read_event_history(since, datetime.now(UTC) + timedelta(seconds=5))
        messages = [e.Message.Text for e in events]
        assert any("mode manual -> auto (operator)" in m for m in messages), messages
        assert all(e.SourceNode == unit.nodeid for e in events)
        assert not any(m.startswith("mode_change ") for m in messages), messages  # audit rows: audit role only
        # the audit trail is in the history too, for the audit role (engineer): the operator's mode change as an
        # audit event of the unit, the setpoint write on the tank
        async with client_as(line.url, add_user("engineer", Role.ENGINEER, "engineer-password")) as engineer:
            unit = engineer.get_node(ua.NodeId("pilot_line.crystallizer", idx))
            messages = [e.Message.Text for e in await unit.read_event_history(since, datetime.now(UTC)
                                                                               + timedelta(seconds=5))]
            assert any(m.startswith("mode_change pilot_line.crystallizer.control.mode by operator [operator]: "
                                    "'manual' -> 'auto': accepted") for m in messages), messages
            feed_tank = engineer.get_node(ua.NodeId("pilot_line.feed_tank", idx))
            tank_messages = [e.Message.Text for e in await feed_tank.read_event_history(
                since, datetime.now(UTC) + timedelta(seconds=5))]
        assert any(m.startswith("write pilot_line.feed_tank.jacket_temperature_setpoint by operator") and
                   "accepted" in m for m in tank_messages), tank_messages
