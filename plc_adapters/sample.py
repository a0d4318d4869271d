"""One measured value as produced by an adapter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from plc_adapters.quality import Quality


@dataclass(frozen=True, slots=True)
class Sample:
    """A tag's value in engineering units, its quality and the PLC-side source timestamp (UTC).

    ``value`` is ``None`` only when nothing usable was ever read (quality is then Bad).
    When a source goes down the last value is kept but the quality turns Bad, never a stale Good.
    """

    tag: str
    value: float | None
    quality: Quality
    source_timestamp: datetime
