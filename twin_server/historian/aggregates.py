"""Processed (aggregate) history: OPC UA Part 13 (OPC 10000-13, Aggregates) on raw values of one node.

Supported aggregates (by their standard NodeIds, ``AggregateFunction_*``): Average, TimeAverage, Minimum,
Maximum, Count, Interpolative. Semantics followed from Part 13 (v1.04, §5.4 and the aggregate tables):

- Intervals start at the request's start time and step by ``ProcessingInterval``; the last one may be
  shorter (then flagged ``Partial``). ``ProcessingInterval`` 0 gives one interval over the whole range.
- A raw value is *usable* when its status is Good, or Uncertain and ``TreatUncertainAsBad`` is false; a
  non-finite value is never usable.
- Average, Minimum, Maximum, Count use the usable raw values inside ``[start, end)`` of the interval.
  The share of Bad data is counted in values: Bad if ``%bad >= PercentDataBad``, else Good if
  ``%good >= PercentDataGood``, else ``UncertainDataSubNormal``. An interval without any raw value is
  ``BadNoData`` (Count: 0, Good). Minimum/Maximum carry the interval start time (not the raw value's time).
- TimeAverage integrates the sloped-interpolated curve through usable values (a usable value followed by a
  Bad one is held, stepped, until that Bad value), and divides by the duration of Good data. Time after a
  Bad value until the next usable one, and time before the first raw value, are Bad; the shares above are
  taken by duration. After the last raw value the last usable value is held (stepped extrapolation) and
  the interval is flagged ``Partial``.
- Interpolative: the value at each interval start; a raw value at that instant is returned as is, otherwise
  sloped interpolation between the nearest usable values before and after: Good when those are adjacent
  raw values, ``UncertainDataSubNormal`` when Bad values lie between them or when it is extrapolated past
  the last value; ``BadNoData`` before the first usable value.

Status codes carry the DataValue InfoType (0x400) and the historian bits Calculated (1), Interpolated (2),
Partial (4) (OPC 10000-4 §7.39).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from asyncua import ua

GOOD = 0
UNCERTAIN_SUBNORMAL = ua.StatusCodes.UncertainDataSubNormal
BAD = ua.StatusCodes.Bad
BAD_NO_DATA = ua.StatusCodes.BadNoData
INFO_DATAVALUE = 0x400
CALCULATED = 0x1
INTERPOLATED = 0x2
PARTIAL = 0x4

AGGREGATES = {
    ua.ObjectIds.AggregateFunction_Average: "Average",
    ua.ObjectIds.AggregateFunction_TimeAverage: "TimeAverage",
    ua.ObjectIds.AggregateFunction_Minimum: "Minimum",
    ua.ObjectIds.AggregateFunction_Maximum: "Maximum",
    ua.ObjectIds.AggregateFunction_Count: "Count",
    ua.ObjectIds.AggregateFunction_Interpolative: "Interpolative",
}


@dataclass(frozen=True, slots=True)
class AggregateSettings:
    """The AggregateConfiguration of a request (Part 13 §4.2.1.2); defaults are the server's."""

    treat_uncertain_as_bad: bool = False
    percent_data_bad: float = 100.0
    percent_data_good: float = 100.0


@dataclass(slots=True)
class Series:
    """Raw values of one node, ascending time: µs timestamps, values (NaN for none), OPC UA status codes."""

    t: np.ndarray
    v: np.ndarray
    status: np.ndarray

    @classmethod
    def from_lists(cls, times: list[int], values: list[float | None], statuses: list[int]) -> Series:
        return cls(np.asarray(times, dtype=np.int64),
                   np.asarray([np.nan if x is None else x for x in values], dtype=np.float64),
                   np.asarray(statuses, dtype=np.uint32))

    def usable(self, settings: AggregateSettings) -> np.ndarray:
        severity = self.status >> 30
        ok = (severity == 0) | ((severity == 1) & (not settings.treat_uncertain_as_bad))
        return ok & np.isfinite(self.v)


Result = tuple[int, float | None, int]
"""``(timestamp µs, value or None, status code)`` of one processed value."""


def interval_edges(start_us: int, end_us: int, interval_us: int) -> np.ndarray:
    """Interval boundaries ``[start, start+pi, …, end]`` (``start < end``); one interval if ``interval_us`` is 0."""
    if interval_us <= 0 or interval_us >= end_us - start_us:
        return np.array([start_us, end_us], dtype=np.int64)
    edges = np.arange(start_us, end_us, interval_us, dtype=np.int64)
    return np.append(edges, np.int64(end_us))


def _status(pct_bad: np.ndarray, pct_good: np.ndarray, s: AggregateSettings) -> np.ndarray:
    return np.where(pct_bad >= s.percent_data_bad, BAD,
                    np.where(pct_good >= s.percent_data_good, GOOD, UNCERTAIN_SUBNORMAL)).astype(np.int64)


def _bits(codes: np.ndarray, extra: np.ndarray | int) -> np.ndarray:
    return codes | INFO_DATAVALUE | extra


def compute(name: str, series: Series, edges: np.ndarray, settings: AggregateSettings,
            data_end_us: int) -> list[Result]:
    """Processed values of aggregate ``name`` over the intervals between ``edges``.

    ``series`` must cover the intervals and include the raw values just before the first and just after
    the last edge where they exist. ``data_end_us``: time up to which the history is complete (now).
    """
    if name == "Interpolative":
        return interpolate(series, edges[:-1], settings, simple_bounds=False, data_end_us=data_end_us)
    n_int = len(edges) - 1
    partial = np.zeros(n_int, dtype=np.int64)
    lengths = np.diff(edges)
    if n_int > 1 and lengths[-1] < lengths[0]:
        partial[-1] = PARTIAL
    partial[edges[1:] > data_end_us] = PARTIAL
    if name == "TimeAverage":
        return _time_average(series, edges, settings, partial)
    usable = series.usable(settings)
    idx = np.searchsorted(edges, series.t, side="right") - 1
    inside = (idx >= 0) & (idx < n_int) & (series.t < edges[-1])
    total = np.bincount(idx[inside], minlength=n_int)[:n_int]
    good_sel = inside & usable
    good_idx = idx[good_sel]
    good = np.bincount(good_idx, minlength=n_int)[:n_int]
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_good = np.where(total > 0, 100.0 * good / np.maximum(total, 1), 0.0)
    pct_bad = np.where(total > 0, 100.0 - pct_good, 100.0)
    codes = _status(pct_bad, pct_good, settings)
    codes = np.where(total == 0, BAD_NO_DATA, codes)
    if name == "Count":
        codes = np.where(total == 0, GOOD, codes)
        codes = _bits(codes, partial | CALCULATED)
        return [(int(edges[i]), float(good[i]), int(codes[i])) for i in range(n_int)]
    vals = series.v[good_sel]
    if name == "Average":
        sums = np.bincount(good_idx, weights=vals, minlength=n_int)[:n_int]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = sums / good
    elif name in ("Minimum", "Maximum"):
        out = np.full(n_int, np.inf if name == "Minimum" else -np.inf)
        (np.minimum if name == "Minimum" else np.maximum).at(out, good_idx, vals)
    else:
        raise ValueError(f"unsupported aggregate {name}")
    codes = np.where((good == 0) & (total > 0), BAD, codes)
    codes = _bits(codes, partial | CALCULATED)
    return [(int(edges[i]), float(out[i]) if good[i] > 0 and not codes[i] & 0x80000000 else None, int(codes[i]))
            for i in range(n_int)]


def _time_average(series: Series, edges: np.ndarray, settings: AggregateSettings, partial: np.ndarray) -> list[Result]:
    n_int = len(edges) - 1
    t, v = series.t, series.v
    usable = series.usable(settings)
    grid = np.union1d(t[(t > edges[0]) & (t < edges[-1])], edges)
    a, b = grid[:-1], grid[1:]
    dur = (b - a).astype(np.float64)
    k = np.searchsorted(t, a, side="right") - 1  # raw value in force at the piece's start (-1: none yet)
    has_left = k >= 0
    kk = np.clip(k, 0, max(len(t) - 1, 0))
    has_right = has_left & (k + 1 < len(t))
    kr = np.clip(k + 1, 0, max(len(t) - 1, 0))
    if len(t) == 0:
        good_piece = np.zeros(len(a), dtype=bool)
        area = np.zeros(len(a))
        extrapolated = np.zeros(len(a), dtype=bool)
    else:
        left_ok = has_left & usable[kk]
        right_ok = has_right & usable[kr]
        sloped = left_ok & right_ok
        good_piece = left_ok
        extrapolated = left_ok & ~has_right
        with np.errstate(invalid="ignore", divide="ignore"):
            span = np.where(sloped, (t[kr] - t[kk]).astype(np.float64), 1.0)
            slope = np.where(sloped, (v[kr] - v[kk]) / span, 0.0)
            va = v[kk] + slope * (a - t[kk])
            vb = v[kk] + slope * (b - t[kk])
        area = np.where(good_piece, 0.5 * (va + vb) * dur, 0.0)
    j = np.searchsorted(edges, a, side="right") - 1
    good_dur = np.bincount(j, weights=np.where(good_piece, dur, 0.0), minlength=n_int)[:n_int]
    areas = np.bincount(j, weights=area, minlength=n_int)[:n_int]
    extra = np.bincount(j, weights=extrapolated.astype(np.float64), minlength=n_int)[:n_int] > 0
    lengths = np.diff(edges).astype(np.float64)
    pct_good = 100.0 * good_dur / lengths
    codes = _status(100.0 - pct_good, pct_good, settings)
    no_data = good_dur <= 0
    codes = np.where(no_data, BAD_NO_DATA if len(t) == 0 else BAD, codes)
    codes = _bits(codes, partial | np.where(extra, PARTIAL, 0) | CALCULATED)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = areas / good_dur
    return [(int(edges[i]), None if no_data[i] or codes[i] & 0x80000000 else float(out[i]), int(codes[i]))
            for i in range(n_int)]


def interpolate(series: Series, times_us: np.ndarray, settings: AggregateSettings, simple_bounds: bool,
                data_end_us: int) -> list[Result]:
    """Values at ``times_us`` (Interpolative aggregate, ReadAtTime). A raw value at the instant is returned
    as is; otherwise sloped interpolation (see the module docstring). ``simple_bounds``: the nearest raw
    values are the bounds whatever their quality, and a Bad bound gives a Bad result (ReadAtTime's
    ``UseSimpleBounds``)."""
    t, v, status = series.t, series.v, series.status
    usable = series.usable(settings)
    good_idx = np.flatnonzero(usable) if not simple_bounds else np.arange(len(t))
    out: list[Result] = []
    for ts in np.asarray(times_us, dtype=np.int64):
        ts_i = int(ts)
        pos = int(np.searchsorted(t, ts, side="left"))
        if pos < len(t) and t[pos] == ts:
            val = None if not np.isfinite(v[pos]) else float(v[pos])
            out.append((ts_i, val, int(status[pos]) | INFO_DATAVALUE))
            continue
        g = int(np.searchsorted(t[good_idx], ts, side="left")) if len(good_idx) else 0
        if g == 0:
            out.append((ts_i, None, BAD_NO_DATA | INFO_DATAVALUE))
            continue
        p = int(good_idx[g - 1])
        if simple_bounds and not usable[p]:
            out.append((ts_i, None, BAD | INFO_DATAVALUE | INTERPOLATED))
            continue
        if g >= len(good_idx):  # after the last usable value: stepped extrapolation
            flags = INTERPOLATED | (PARTIAL if ts_i > data_end_us else 0)
            out.append((ts_i, float(v[p]), UNCERTAIN_SUBNORMAL | INFO_DATAVALUE | flags))
            continue
        n = int(good_idx[g])
        if simple_bounds and not usable[n]:
            out.append((ts_i, None, BAD | INFO_DATAVALUE | INTERPOLATED))
            continue
        value = float(v[p] + (v[n] - v[p]) * (ts_i - int(t[p])) / (int(t[n]) - int(t[p])))
        code = GOOD if n == p + 1 else UNCERTAIN_SUBNORMAL
        out.append((ts_i, value, code | INFO_DATAVALUE | INTERPOLATED))
    return out
