"""Mapping of adapter results onto OPC UA status codes."""

from __future__ import annotations

from asyncua import ua

from plc_adapters.errors import WriteRefusal
from plc_adapters.quality import Quality

WRITE_REFUSAL_STATUS: dict[WriteRefusal, int] = {
    WriteRefusal.UNKNOWN_TAG: ua.StatusCodes.BadNodeIdUnknown,
    WriteRefusal.NOT_WRITABLE: ua.StatusCodes.BadNotWritable,
    WriteRefusal.OUT_OF_RANGE: ua.StatusCodes.BadOutOfRange,
    WriteRefusal.RATE_LIMIT: ua.StatusCodes.BadOutOfRange,
    WriteRefusal.TYPE_MISMATCH: ua.StatusCodes.BadTypeMismatch,
    WriteRefusal.COMMUNICATION_ERROR: ua.StatusCodes.BadCommunicationError,
    WriteRefusal.DEVICE_REFUSED: ua.StatusCodes.BadDeviceFailure,
}

OUTCOME_UNKNOWN_STATUS = ua.StatusCodes.BadTimeout
"""A write request left for the PLC but no answer came: it may or may not have been applied (reconciled by a
read-back before the next write to the tag). Bad, because the client must not assume it took effect."""


def status_for_refusal(reason: WriteRefusal) -> ua.StatusCode:
    return ua.StatusCode(WRITE_REFUSAL_STATUS[reason])


def status_for_quality(quality: Quality) -> ua.StatusCode:
    """Quality values are OPC UA status codes already."""
    return ua.StatusCode(int(quality))
