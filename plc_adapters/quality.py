"""Quality codes carried by every sample.

The numeric values are the OPC UA status codes (OPC 10000-4 §7.39 / StatusCode.csv of the
OPC Foundation nodeset), so a quality can be handed to any OPC UA stack unchanged; this module
itself knows nothing about OPC UA servers.
"""

from __future__ import annotations

from enum import IntEnum


class Quality(IntEnum):
    """Truthful quality of a sampled value (value = OPC UA status code)."""

    GOOD = 0x00000000
    UNCERTAIN_LAST_USABLE_VALUE = 0x40900000
    UNCERTAIN_SENSOR_NOT_ACCURATE = 0x40930000
    UNCERTAIN_ENGINEERING_UNITS_EXCEEDED = 0x40940000
    BAD_COMMUNICATION_ERROR = 0x80050000
    BAD_NOT_CONNECTED = 0x808A0000
    BAD_DEVICE_FAILURE = 0x808B0000
    BAD_OUT_OF_RANGE = 0x803C0000
    BAD_WAITING_FOR_INITIAL_DATA = 0x80320000

    @property
    def is_good(self) -> bool:
        return (self.value >> 30) == 0

    @property
    def is_bad(self) -> bool:
        return (self.value >> 30) == 2

    @classmethod
    def _missing_(cls, value: object) -> Quality | None:
        """Any other 32-bit status code (e.g. a PLC's own ``BadSensorFailure``) passes through unchanged as a
        pseudo-member named ``STATUS_XXXXXXXX``: sources that carry status codes must not have them rewritten."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
            member = int.__new__(cls, value)
            member._name_ = f"STATUS_{value:08X}"
            member._value_ = value
            return member
        return None
