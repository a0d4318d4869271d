"""Errors raised by adapters. Each refusal names the tag and says why, and nothing was written."""

from __future__ import annotations

from enum import Enum


class WriteRefusal(str, Enum):
    """Why a write was refused (maps 1:1 onto OPC UA Bad status codes at the server)."""

    UNKNOWN_TAG = "unknown_tag"  # BadNodeIdUnknown
    NOT_WRITABLE = "not_writable"  # BadNotWritable
    OUT_OF_RANGE = "out_of_range"  # BadOutOfRange
    RATE_LIMIT = "rate_limit"  # BadOutOfRange (change faster than max_rate)
    TYPE_MISMATCH = "type_mismatch"  # BadTypeMismatch (NaN, inf, not a number)
    COMMUNICATION_ERROR = "communication_error"  # BadCommunicationError (PLC unreachable / timeout)
    DEVICE_REFUSED = "device_refused"  # BadDeviceFailure (PLC answered with a Modbus exception)


class WriteNotConfirmed(Exception):
    """The one outcome type of a guarded write that did not end Good (every adapter, every protocol): a write
    returns normally when the PLC accepted it, else raises one of the two subclasses — :class:`WriteRefused`
    (not applied) or :class:`WriteOutcomeUnknown` (sent, no answer: reconciled by a read-back)."""

    tag: str
    message: str
    status_code: int | None = None
    """The PLC's own OPC UA status code when the PLC answered with one (else the twin maps the reason)."""


class WriteRefused(WriteNotConfirmed):
    """A commanded value was not written. Nothing was put on the wire unless reason says the PLC refused."""

    def __init__(self, tag: str, reason: WriteRefusal, message: str) -> None:
        super().__init__(f"write to '{tag}' refused ({reason.value}): {message}")
        self.tag = tag
        self.reason = reason
        self.message = message


class WriteOutcomeUnknown(WriteNotConfirmed):
    """A write request left for the PLC but no answer came back (timeout, connection lost mid-request).

    The PLC may or may not have applied it. The adapter reads the register back before it accepts the next
    write to that tag (and every scan reports what the PLC really holds), so the twin reconciles by itself.
    """

    def __init__(self, tag: str, value: float, message: str) -> None:
        super().__init__(f"write of {value!r} to '{tag}': outcome unknown: {message}")
        self.tag = tag
        self.value = value
        self.message = message
