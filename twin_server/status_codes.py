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


def _published(quality: Quality, has_value: bool) -> ua.StatusCode:
    if not quality.is_bad or not has_value:
        return ua.StatusCode(int(quality))
    if quality in (Quality.BAD_COMMUNICATION_ERROR, Quality.BAD_NOT_CONNECTED):
        return ua.StatusCode(ua.StatusCodes.UncertainNoCommunicationLastUsableValue)
    if quality is Quality.BAD_DEVICE_FAILURE:  # the twin's own verdict on a NaN/inf from a Modbus PLC
        return ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
    return ua.StatusCode(int(quality))  # a PLC's own Bad code (OPC UA source) passes through unchanged


_PUBLISHED_STATUS: dict[tuple[Quality, bool], ua.StatusCode] = {
    (q, has_value): _published(q, has_value) for q in Quality for has_value in (False, True)
}


def published_status(quality: Quality, has_value: bool) -> ua.StatusCode:
    """The status a client sees for a sample: its quality, except a Bad sample that still carries the last
    usable value, which is published as Uncertain with that value.

    OPC 10000-4 §7.11 (DataValue): a Bad value is to be ignored and the server sets it to null, so a Bad
    status cannot carry the last known value. OPC 10000-8 §7.3.2 (Table 62) has the Uncertain codes made for
    this: ``Uncertain_NoCommunicationLastUsableValue`` ("communication to the data source has failed; the
    value is the last value that had a good quality") for a lost PLC link, ``Uncertain_LastUsableValue``
    ("whatever was updating this value has stopped doing so") for other source failures (NaN/inf from the
    PLC). Without a last value the Bad quality is published as it is (value null). One dict lookup: this is
    on the mirror hot path.
    """
    status = _PUBLISHED_STATUS.get((quality, has_value))
    return status if status is not None else _published(quality, has_value)  # a PLC's own code (OPC UA source)
