"""Conversions between OPC UA DataValues / Variants and the adapter's samples and setpoints.

* A DataValue from the PLC becomes a :class:`~plc_adapters.sample.Sample` with the PLC's own status code
  (Good, Uncertain_*, Bad_* — including codes linetwin does not name) and its source timestamp; the server
  timestamp stands in when the PLC sends no source timestamp, the receive time only when it sends neither.
* A setpoint in engineering units is converted to the node's DataType (read from the PLC on connect):
  integers are rounded to the nearest and checked against the type's range, Boolean accepts 0 and 1 only.
"""

from __future__ import annotations

import math
import numbers
import struct
from datetime import UTC, datetime

from asyncua import ua

from plc_adapters.quality import Quality
from plc_adapters.sample import Sample

BAD_TYPE_MISMATCH = 0x80740000
"""OPC UA BadTypeMismatch: the PLC node's value is not a real number (string, array, structure)."""
BAD_NODE_ID_UNKNOWN = 0x80340000
"""OPC UA BadNodeIdUnknown: the configured node (or its namespace URI) does not exist on the PLC."""

_EPOCH_FLOOR = datetime(1601, 1, 2, tzinfo=UTC)  # OPC UA DateTime 0 (1601-01-01) means "no timestamp"

_INTEGER_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
_FLOAT_TYPES = {ua.VariantType.Float: 3.4028234663852886e38, ua.VariantType.Double: math.inf}
WRITABLE_VARIANT_TYPES = frozenset({*_INTEGER_RANGES, *_FLOAT_TYPES, ua.VariantType.Boolean})


def utc(ts: datetime | None) -> datetime | None:
    """``ts`` as an aware UTC datetime; ``None`` for a missing or zero (1601) timestamp."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return None if ts < _EPOCH_FLOOR else ts


def variant_type_of_data_type(data_type: ua.NodeId | None) -> ua.VariantType | None:
    """The built-in VariantType of a DataType node id (ns=0 numeric ids 1..25 coincide), else ``None``."""
    if data_type is None or data_type.NamespaceIndex != 0 or not isinstance(data_type.Identifier, int):
        return None
    try:
        return ua.VariantType(data_type.Identifier)
    except ValueError:
        return None


def sample_from_data_value(tag: str, dv: ua.DataValue, last_value: float | None, received: datetime) -> Sample:
    """The sample for one DataValue of the PLC.

    The status code is kept as the PLC sent it. A value that is no real number gets BadTypeMismatch, a non-finite
    float under a Good/Uncertain status BadDeviceFailure (linetwin's rule for any source); both keep
    ``last_value``, as does a Bad status without a value.
    """
    status = dv.StatusCode
    code = 0 if status is None else int(status.value)
    timestamp = utc(dv.SourceTimestamp) or utc(dv.ServerTimestamp) or received
    raw = dv.Value.Value if dv.Value is not None else None
    if raw is None:
        # No value: a Bad status keeps the last value; a Good/Uncertain status without a value is a defect.
        return Sample(tag, last_value, Quality(code if code >> 30 == 2 else BAD_TYPE_MISMATCH), timestamp)
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
    elif isinstance(raw, numbers.Real):
        try:
            value = float(raw)
        except OverflowError:
            value = math.nan
    else:
        return Sample(tag, last_value, Quality(BAD_TYPE_MISMATCH), timestamp)
    if not math.isfinite(value):
        if code >> 30 == 2:
            return Sample(tag, last_value, Quality(code), timestamp)
        return Sample(tag, last_value, Quality.BAD_DEVICE_FAILURE, timestamp)
    return Sample(tag, value, Quality(code), timestamp)


def setpoint_variant(value: float, variant_type: ua.VariantType) -> tuple[ua.Variant, float]:
    """``value`` as a Variant of the node's type, and the engineering value the PLC will then hold.

    Raises:
        ValueError: the value does not fit the type (range, or not 0/1 for Boolean), or the type is not numeric.
    """
    if variant_type is ua.VariantType.Boolean:
        if value not in (0.0, 1.0):
            raise ValueError(f"the PLC node is Boolean: 0 or 1 expected, got {value:g}")
        return ua.Variant(bool(value), variant_type), value
    if variant_type in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[variant_type]
        held = round(value)
        if not low <= held <= high:
            raise ValueError(f"{value:g} does not fit the PLC node's {variant_type.name} [{low}, {high}]")
        return ua.Variant(held, variant_type), float(held)
    if variant_type in _FLOAT_TYPES:
        limit = _FLOAT_TYPES[variant_type]
        if abs(value) > limit:
            raise ValueError(f"{value:g} does not fit the PLC node's {variant_type.name}")
        if variant_type is ua.VariantType.Float:
            held_f = struct.unpack("<f", struct.pack("<f", value))[0]
            return ua.Variant(value, variant_type), held_f
        return ua.Variant(value, variant_type), value
    raise ValueError(f"the PLC node's DataType {variant_type.name} is not a number type linetwin writes")


def status_name(code: int) -> str:
    """OPC UA symbolic name of a status code (``BadOutOfRange``), or its hex form when unknown."""
    try:
        return ua.StatusCode(code).name
    except Exception:
        return f"0x{code:08X}"
