"""Timestamps of the historian: integer microseconds since the Unix epoch (UTC).

Integers sort, index and compare exactly in SQLite and InfluxDB (``precision=u``); Python datetimes carry
microseconds, so nothing is lost converting either way. OPC UA's 100 ns ticks are truncated to µs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
OPCUA_MIN_YEAR = 1601
"""OPC UA encodes an unspecified DateTime as 0 = 1601-01-01."""


def to_us(ts: datetime) -> int:
    """µs since the epoch; a naive datetime is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - EPOCH) // _US


def from_us(t_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(t_us))


def is_unspecified(ts: datetime | None) -> bool:
    """True for a DateTime the client left empty (None or 1601-01-01, OPC UA's 0)."""
    return ts is None or ts.year <= OPCUA_MIN_YEAR


def now_us() -> int:
    return to_us(datetime.now(UTC))
