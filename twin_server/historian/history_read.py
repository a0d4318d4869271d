"""The OPC UA HistoryRead service of the twin, answered from the historian's backend.

Installed through the asyncua seam's history hook (:func:`plc_adapters.asyncua_seam.install_history_reader`):
every HistoryRead request reaches :meth:`HistoryReadService.read_history`. Supported details (OPC 10000-11):

- ``ReadRawModifiedDetails`` (raw only; ``IsReadModified`` is answered ``BadHistoryOperationUnsupported``:
  history is never modified): start/end in either order (end < start reads backwards), one of them open
  with ``NumValuesPerNode`` > 0, ``ReturnBounds`` (bounding values, ``BadBoundNotFound`` where none exists),
  continuation points when more than ``NumValuesPerNode`` (or the server's ``max_values_per_read``) values
  match. Continuation points are stateless (the position is encoded in them), so they survive restarts.
- ``ReadProcessedDetails``: Average, TimeAverage, Minimum, Maximum, Count, Interpolative
  (:mod:`.aggregates`, Part 13), with the request's AggregateConfiguration.
- ``ReadAtTimeDetails``: values at the requested instants (raw if one exists, else interpolated),
  ``UseSimpleBounds`` honoured.
- ``ReadEventDetails`` on a unit object (``EventNotifier`` has the HistoryRead bit): the unit's control
  events as BaseEventType events (EventId, EventType, SourceNode, SourceName, Time, ReceiveTime, Message,
  Severity; other select clauses answer null), oldest first, at most ``NumValuesPerNode`` (or
  ``max_values_per_read``) of them; the ``WhereClause`` is not applied. Alarm events (every condition state
  change, :mod:`.alarm_history`) come back as condition events: EventType the condition's type, ConditionId (the
  NodeId clause), ConditionName, Message, Severity, Retain, ActiveState/AckedState/ConfirmedState (and ``/Id``),
  Comment and ClientUserId; on the line object, the line's own conditions (historian data loss).

A String node kept as event rows (:attr:`HistoryReadService.text_series`, e.g. a unit's ``model/parameter_set``)
answers ``ReadRawModifiedDetails`` with those rows as its values (no continuation points, no bounds).

``ReleaseContinuationPoints`` releases (answers Good, no data) the nodes that carry a continuation point;
a node without one is read as usual (asyncua's client sends the flag set by default).

Reads run on worker threads (the backend's own read connections), so a large read does not stall the
server. Access: HistoryRead is allowed to every role (viewer and up); values are those already readable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from asyncua import ua

from plc_adapters.log_text import shorten
from twin_server.historian.aggregates import AGGREGATES, AggregateSettings, Series, compute, interpolate, interval_edges
from twin_server.historian.alarm_history import decode_alarm
from twin_server.historian.audit_history import AUDIT_EVENTS_VISIBLE, AUDIT_SOURCE
from twin_server.historian.records import HistoryBackend, RawSeries
from twin_server.historian.timebase import EPOCH, from_us, is_unspecified, now_us, to_us

log = logging.getLogger("linetwin.historian")

T_MIN = -(2**62)
T_MAX = 2**62
LOOKAROUND = 16
"""Raw values fetched beyond a processed/at-time range to find bounding usable values."""

_CP = struct.Struct("<4sqqB")
_CP_MAGIC = b"LTH1"
_STATUS_CACHE: dict[int, ua.StatusCode] = {}


def _status(code: int) -> ua.StatusCode:
    sc = _STATUS_CACHE.get(code)
    if sc is None:
        sc = _STATUS_CACHE[code] = ua.StatusCode(code)
    return sc


def _bad(code: int) -> ua.HistoryReadResult:
    return ua.HistoryReadResult(StatusCode=ua.StatusCode(code))


class HistoryReadService:
    """Answers HistoryRead for historized nodes (``keys``: node id → history key) from ``backend``;
    ``node_exists`` tells a node without history (``BadHistoryOperationUnsupported``) from an unknown one
    (``BadNodeIdUnknown``)."""

    def __init__(self, node_exists: Callable[[ua.NodeId], bool], backend: HistoryBackend,
                 keys: dict[ua.NodeId, str], max_values_per_read: int = 100_000,
                 data_end_us: Callable[[], int] = now_us) -> None:
        self._node_exists = node_exists
        self.backend = backend
        self.keys = keys
        self.event_sources: dict[ua.NodeId, str] = {}
        """Unit object node → unit name, for event history."""
        self.text_series: dict[ua.NodeId, tuple[str, str]] = {}
        """String node → (unit, event origin): its raw history is the unit's event rows of that origin, each
        message one value (e.g. a unit's ``model/parameter_set``: one row per switch of the deployed set)."""
        self.max_values_per_read = max_values_per_read
        self._data_end_us = data_end_us

    async def read_history(self, params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
        details = params.HistoryReadDetails
        results = []
        with_audit = AUDIT_EVENTS_VISIBLE.get()
        for i, rv in enumerate(params.NodesToRead):
            if rv.ContinuationPoint and not _valid_continuation_point(rv.ContinuationPoint, details):
                results.append(_bad(ua.StatusCodes.BadContinuationPointInvalid))
                continue
            if params.ReleaseContinuationPoints and rv.ContinuationPoint:
                results.append(ua.HistoryReadResult())  # stateless continuation points: nothing to release
                continue
            if isinstance(details, ua.ReadEventDetails):
                unit = self.event_sources.get(rv.NodeId)
                results.append(_bad(ua.StatusCodes.BadHistoryOperationUnsupported) if unit is None else
                               await asyncio.to_thread(self.read_events, unit, rv.NodeId, details, with_audit))
                continue
            text = self.text_series.get(rv.NodeId)
            if text is not None:
                raw = isinstance(details, ua.ReadRawModifiedDetails) and not details.IsReadModified
                results.append(await asyncio.to_thread(self.read_text, *text, details) if raw
                               else _bad(ua.StatusCodes.BadHistoryOperationUnsupported))
                continue
            key = self.keys.get(rv.NodeId)
            if key is None:
                known = self._node_exists(rv.NodeId)
                results.append(_bad(ua.StatusCodes.BadHistoryOperationUnsupported if known
                                    else ua.StatusCodes.BadNodeIdUnknown))
                continue
            try:
                results.append(await self._read_one(details, rv, key, i))
            except Exception as exc:  # one node's failure must not fail the others
                log.error("HistoryRead of %s failed: %s", key, shorten(str(exc), 200), exc_info=True)
                results.append(_bad(ua.StatusCodes.BadHistoryOperationInvalid))
        return results

    async def _read_one(self, details: Any, rv: ua.HistoryReadValueId, key: str, i: int) -> ua.HistoryReadResult:
        if isinstance(details, ua.ReadRawModifiedDetails):
            if details.IsReadModified:
                return _bad(ua.StatusCodes.BadHistoryOperationUnsupported)
            return await asyncio.to_thread(self.read_raw, key, details, rv.ContinuationPoint)
        if isinstance(details, ua.ReadProcessedDetails):
            return await asyncio.to_thread(self.read_processed, key, details, i)
        if isinstance(details, ua.ReadAtTimeDetails):
            return await asyncio.to_thread(self.read_at_time, key, details)
        return _bad(ua.StatusCodes.BadHistoryOperationUnsupported)

    # -- raw ---------------------------------------------------------------------------------------
    def _raw_range(self, d: ua.ReadRawModifiedDetails) -> tuple[int, int, bool, int] | None:
        """A raw read's ``(lo, hi, reverse, cap)`` in µs: start/end in either order (end < start reads backwards),
        one of them open only with ``NumValuesPerNode`` > 0; ``None`` for an invalid request."""
        start = None if is_unspecified(d.StartTime) else to_us(d.StartTime)
        end = None if is_unspecified(d.EndTime) else to_us(d.EndTime)
        n = int(d.NumValuesPerNode or 0)
        if (start is None and end is None) or ((start is None or end is None) and n == 0):
            return None
        reverse = start is None or (end is not None and start > end)
        if start is None:
            lo, hi = T_MIN, end
        elif end is None:
            lo, hi = start, T_MAX
        else:
            lo, hi = min(start, end), max(start, end)
        assert lo is not None and hi is not None
        return lo, hi, reverse, min(n, self.max_values_per_read) if n > 0 else self.max_values_per_read

    def read_raw(self, key: str, d: ua.ReadRawModifiedDetails, cp: bytes | None) -> ua.HistoryReadResult:
        span = self._raw_range(d)
        if span is None:
            return _bad(ua.StatusCodes.BadHistoryOperationInvalid)
        lo, hi, reverse, cap = span
        first = not cp
        skip = 0
        if cp:
            try:
                magic, cursor, skip, _ = _CP.unpack(cp)
            except struct.error:
                return _bad(ua.StatusCodes.BadContinuationPointInvalid)
            if magic != _CP_MAGIC or not lo <= cursor <= hi:
                return _bad(ua.StatusCodes.BadContinuationPointInvalid)
            if reverse:
                hi = cursor
            else:
                lo = cursor
        raw = self.backend.read_raw(key, lo, hi, cap + skip + 1, reverse)
        cursor_t = hi if reverse else lo
        if skip:
            drop = 0
            while drop < skip and drop < len(raw) and raw.times_us[drop] == cursor_t:
                drop += 1
            raw = _slice(raw, drop, len(raw))
        more = len(raw) > cap
        if more:
            raw = _slice(raw, 0, cap)
        bounds = bool(d.ReturnBounds) and not is_unspecified(d.StartTime) and not is_unspecified(d.EndTime)
        head = tail = None
        if bounds and first:
            edge = hi if reverse else lo
            if not raw.times_us or raw.times_us[0] != edge:
                head = self._bound(key, edge, before=not reverse)
        result = ua.HistoryReadResult()
        if more:
            last = raw.times_us[-1]
            same = sum(1 for t in raw.times_us if t == last) + (skip if last == cursor_t else 0)
            result.ContinuationPoint = _CP.pack(_CP_MAGIC, last, same, 0)
        elif bounds:
            edge = lo if reverse else hi
            if not raw.times_us or raw.times_us[-1] != edge:
                tail = self._bound(key, edge, before=reverse)
        result.HistoryData = encode_history_data(raw, head, tail)
        return result

    def _bound(self, key: str, edge: int, before: bool) -> RawSeries:
        found = (self.backend.read_raw(key, T_MIN, edge - 1, 1, reverse=True) if before
                 else self.backend.read_raw(key, edge + 1, T_MAX, 1))
        return found if found else RawSeries([edge], [None], [ua.StatusCodes.BadBoundNotFound], [edge])

    def _series_around(self, key: str, lo: int, hi: int) -> Series:
        before = self.backend.read_raw(key, T_MIN, lo - 1, LOOKAROUND, reverse=True)
        inside = self.backend.read_raw(key, lo, hi)
        after = self.backend.read_raw(key, hi + 1, T_MAX, LOOKAROUND)
        times = before.times_us[::-1] + inside.times_us + after.times_us
        values = before.values[::-1] + inside.values + after.values
        statuses = before.statuses[::-1] + inside.statuses + after.statuses
        return Series.from_lists(times, values, statuses)

    def read_text(self, unit: str, origin: str, d: ua.ReadRawModifiedDetails) -> ua.HistoryReadResult:
        """Raw history of a String node kept as event rows (:attr:`text_series`): start/end in either order, one
        of them open with ``NumValuesPerNode`` > 0; at most ``NumValuesPerNode`` (or ``max_values_per_read``)
        values, no continuation point (such a node changes a few times a day), no bounds."""
        span = self._raw_range(d)
        if span is None:
            return _bad(ua.StatusCodes.BadHistoryOperationInvalid)
        lo, hi, reverse, cap = span
        rows = [row for row in self.backend.read_events(unit, lo, hi) if row[2] == origin]
        if reverse:
            rows.reverse()
        values = [ua.DataValue(ua.Variant(row[3], ua.VariantType.String), SourceTimestamp=from_us(row[0]),
                               ServerTimestamp=from_us(row[0])) for row in rows[:cap]]
        return ua.HistoryReadResult(HistoryData=ua.HistoryData(DataValues=values))

    # -- events ------------------------------------------------------------------------------------
    def read_events(self, unit: str, source: ua.NodeId, d: ua.ReadEventDetails,
                    with_audit: bool = False) -> ua.HistoryReadResult:
        """``with_audit``: include audit rows (logins, refusals, who wrote what) — only for readers with the audit
        role (:data:`~.audit_history.AUDIT_EVENTS_VISIBLE`)."""
        start = T_MIN if is_unspecified(d.StartTime) else to_us(d.StartTime)
        end = T_MAX if is_unspecified(d.EndTime) else to_us(d.EndTime)
        lo, hi = min(start, end), max(start, end)
        text_origins = {origin for u, origin in self.text_series.values() if u == unit}
        rows = [row for row in self.backend.read_events(unit, lo, hi) if row[2] not in text_origins]
        if not with_audit:
            rows = [row for row in rows if row[2] != AUDIT_SOURCE]
        cap = min(int(d.NumValuesPerNode), self.max_values_per_read) if d.NumValuesPerNode else \
            self.max_values_per_read
        if start > end:
            rows.reverse()
        clauses = d.Filter.SelectClauses if d.Filter is not None else []
        events = [ua.HistoryEventFieldList(EventFields=[_event_field(c, row, unit, source, n) for c in clauses])
                  for n, row in enumerate(rows[:cap])]
        return ua.HistoryReadResult(HistoryData=ua.HistoryEvent(Events=events))

    # -- processed ----------------------------------------------------------------------------------
    def read_processed(self, key: str, d: ua.ReadProcessedDetails, i: int) -> ua.HistoryReadResult:
        types = d.AggregateType or []
        agg = types[i] if i < len(types) else (types[0] if len(types) == 1 else None)
        name = AGGREGATES.get(agg.Identifier) if agg is not None and agg.NamespaceIndex == 0 else None
        if name is None:
            return _bad(ua.StatusCodes.BadAggregateNotSupported)
        if is_unspecified(d.StartTime) or is_unspecified(d.EndTime) or d.StartTime == d.EndTime:
            return _bad(ua.StatusCodes.BadInvalidArgument)
        start, end = to_us(d.StartTime), to_us(d.EndTime)
        lo, hi = min(start, end), max(start, end)
        interval_ms = float(d.ProcessingInterval or 0.0)
        if not math.isfinite(interval_ms) or interval_ms < 0:
            return _bad(ua.StatusCodes.BadInvalidArgument)
        interval_us = int(round(interval_ms * 1000.0))
        if interval_us and (hi - lo) // interval_us > self.max_values_per_read:
            return _bad(ua.StatusCodes.BadTooManyOperations)
        settings = _aggregate_settings(d.AggregateConfiguration)
        edges = interval_edges(lo, hi, interval_us)
        series = self._series_around(key, lo, hi)
        rows = compute(name, series, edges, settings, self._data_end_us())
        if start > end:
            rows.reverse()
        vtype = ua.VariantType.Int32 if name == "Count" else ua.VariantType.Double
        return ua.HistoryReadResult(HistoryData=ua.HistoryData(DataValues=_processed_values(rows, vtype)))

    # -- at time -------------------------------------------------------------------------------------
    def read_at_time(self, key: str, d: ua.ReadAtTimeDetails) -> ua.HistoryReadResult:
        if not d.ReqTimes:
            return ua.HistoryReadResult(HistoryData=ua.HistoryData(DataValues=[]))
        if len(d.ReqTimes) > self.max_values_per_read:
            return _bad(ua.StatusCodes.BadTooManyOperations)
        times = np.asarray([to_us(t) for t in d.ReqTimes], dtype=np.int64)
        series = self._series_around(key, int(times.min()), int(times.max()))
        rows = interpolate(series, times, AggregateSettings(), simple_bounds=bool(d.UseSimpleBounds),
                           data_end_us=self._data_end_us())
        return ua.HistoryReadResult(HistoryData=ua.HistoryData(DataValues=_processed_values(rows)))


def _valid_continuation_point(cp: bytes, details: Any) -> bool:
    """Whether ``cp`` is one this service issued: only raw reads issue them (magic + position)."""
    if not isinstance(details, ua.ReadRawModifiedDetails) or len(cp) != _CP.size:
        return False
    return _CP.unpack(cp)[0] == _CP_MAGIC


def _event_field(clause: ua.SimpleAttributeOperand, row: tuple[int, str, str, str], unit: str,
                 source: ua.NodeId, n: int) -> ua.Variant:
    """One select clause of a BaseEventType event made from a control event row ``(t_us, unit, source, text)``."""
    name = clause.BrowsePath[-1].Name if clause.BrowsePath else ""
    t_us, _, origin, message = row
    alarm = decode_alarm(origin, message)
    if alarm is not None:
        return _alarm_field(clause, alarm, t_us, unit, source, n)
    if name == "EventId":
        return ua.Variant(f"{unit}:{t_us}:{n}".encode(), ua.VariantType.ByteString)
    if name == "EventType":
        return ua.Variant(ua.NodeId(ua.ObjectIds.BaseEventType), ua.VariantType.NodeId)
    if name == "SourceNode":
        return ua.Variant(source, ua.VariantType.NodeId)
    if name == "SourceName":
        return ua.Variant(f"{unit} {origin}", ua.VariantType.String)
    if name in ("Time", "ReceiveTime"):
        return ua.Variant(from_us(t_us), ua.VariantType.DateTime)
    if name == "Message":
        return ua.Variant(ua.LocalizedText(message), ua.VariantType.LocalizedText)
    if name == "Severity":
        severity = 700 if "fallback" in message or "failed" in message or "refused" in message else 300
        return ua.Variant(severity, ua.VariantType.UInt16)
    return ua.Variant()


_ALARM_STATES = {"ActiveState": ("active", "Active", "Inactive"), "AckedState": ("acked", "Acknowledged",
                                                                                  "Unacknowledged"),
                 "ConfirmedState": ("confirmed", "Confirmed", "Unconfirmed")}


def _alarm_field(clause: ua.SimpleAttributeOperand, alarm: Mapping[str, Any], t_us: int, unit: str,
                 source: ua.NodeId, n: int) -> ua.Variant:
    """One select clause of a condition event made from an alarm event row (:mod:`.alarm_history`)."""
    path = "/".join(q.Name for q in clause.BrowsePath or [])
    if clause.AttributeId == ua.AttributeIds.NodeId and not path:  # ConditionId
        return ua.Variant(ua.NodeId(str(alarm["condition"]), source.NamespaceIndex), ua.VariantType.NodeId)
    if path == "EventId":
        return ua.Variant(f"{alarm['condition']}:{t_us}:{n}".encode(), ua.VariantType.ByteString)
    if path == "EventType":
        return ua.Variant(ua.NodeId(int(alarm["type"])), ua.VariantType.NodeId)
    if path == "SourceNode":
        return ua.Variant(source, ua.VariantType.NodeId)
    if path == "SourceName":
        return ua.Variant(unit, ua.VariantType.String)
    if path in ("Time", "ReceiveTime"):
        return ua.Variant(from_us(t_us), ua.VariantType.DateTime)
    if path == "Message":
        return ua.Variant(ua.LocalizedText(str(alarm["message"])), ua.VariantType.LocalizedText)
    if path in ("Severity", "LastSeverity"):
        return ua.Variant(int(alarm["severity"]), ua.VariantType.UInt16)
    if path == "ConditionName":
        return ua.Variant(str(alarm["name"]), ua.VariantType.String)
    if path == "Retain":
        return ua.Variant(bool(alarm["retain"]), ua.VariantType.Boolean)
    if path == "Comment":
        return ua.Variant(ua.LocalizedText(str(alarm["comment"])), ua.VariantType.LocalizedText)
    if path == "ClientUserId":
        return ua.Variant(str(alarm["user"]), ua.VariantType.String)
    state, _, leaf = path.partition("/")
    if state in _ALARM_STATES:
        key, true_text, false_text = _ALARM_STATES[state]
        if leaf == "Id":
            return ua.Variant(bool(alarm[key]), ua.VariantType.Boolean)
        if not leaf:
            return ua.Variant(ua.LocalizedText(true_text if alarm[key] else false_text), ua.VariantType.LocalizedText)
    return ua.Variant()


def _aggregate_settings(cfg: ua.AggregateConfiguration | None) -> AggregateSettings:
    if cfg is None or cfg.UseServerCapabilitiesDefaults:
        return AggregateSettings()
    return AggregateSettings(treat_uncertain_as_bad=bool(cfg.TreatUncertainAsBad),
                             percent_data_bad=float(cfg.PercentDataBad), percent_data_good=float(cfg.PercentDataGood))


def _slice(raw: RawSeries, a: int, b: int) -> RawSeries:
    return RawSeries(raw.times_us[a:b], raw.values[a:b], raw.statuses[a:b], raw.server_times_us[a:b])


_VARIANT_DOUBLE = ua.VariantType.Double


_HISTORY_DATA_ENCODING = ua.NodeId(ua.ObjectIds.HistoryData_Encoding_DefaultBinary)
_DV_VALUE = struct.Struct("<BBdIqq")
"""DataValue with Value (Variant Double), StatusCode, SourceTimestamp, ServerTimestamp (OPC 10000-6 §5.2.2.17)."""
_DV_NO_VALUE = struct.Struct("<BIqq")
_FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
"""OPC UA DateTime: 100 ns ticks since 1601-01-01; the Unix epoch in those ticks."""


def encode_history_data(raw: RawSeries, head: RawSeries | None = None,
                        tail: RawSeries | None = None) -> ua.ExtensionObject:
    """Raw history as a binary-encoded ``HistoryData`` (both timestamps: the source's and the twin's).

    Encoded here in one pass (``struct``) instead of building one ``DataValue`` object per value for
    asyncua to encode: this is what makes 86,400 values answer in well under a second."""
    parts = [b""]
    pack_value, pack_empty = _DV_VALUE.pack, _DV_NO_VALUE.pack
    off = _FILETIME_UNIX_EPOCH
    n = 0
    for series in (head, raw, tail):
        if not series:
            continue
        n += len(series)
        for t, v, st, srv in zip(series.times_us, series.values, series.statuses, series.server_times_us,
                                 strict=True):
            if v is None:
                parts.append(pack_empty(0x0E, st, max(t * 10 + off, 0), max(srv * 10 + off, 0)))
            else:
                parts.append(pack_value(0x0F, 11, v, st, max(t * 10 + off, 0), max(srv * 10 + off, 0)))
    parts[0] = struct.pack("<i", n)
    return ua.ExtensionObject(TypeId=_HISTORY_DATA_ENCODING, Body=b"".join(parts))


def _processed_values(rows: list[tuple[int, float | None, int]],
                      vtype: ua.VariantType = _VARIANT_DOUBLE) -> list[ua.DataValue]:
    out = []
    for t, v, st in rows:
        ts = EPOCH if t is None else from_us(t)
        value = int(v) if v is not None and vtype == ua.VariantType.Int32 else v
        variant = ua.Variant(value, vtype) if v is not None else ua.Variant()
        out.append(ua.DataValue(variant, _status(st), ts, ts))
    return out
