"""Write outcomes specific to PLCs that answer with OPC UA status codes.

Both are :class:`~plc_adapters.errors.WriteRefused` subclasses, so every caller that handles a refused write
handles these too; each carries the OPC UA status code the twin's server returns to its client.
"""

from __future__ import annotations

from plc_adapters.errors import WriteRefusal, WriteRefused


class PlcRefusedWrite(WriteRefused):
    """The PLC answered the Write with a Bad status (``status_code``, e.g. BadOutOfRange, BadUserAccessDenied):
    nothing was written. The twin's server returns the same code to its client."""

    def __init__(self, tag: str, status_code: int, status_name: str, message: str) -> None:
        super().__init__(tag, WriteRefusal.DEVICE_REFUSED, message)
        self.status_code = status_code
        self.status_name = status_name


