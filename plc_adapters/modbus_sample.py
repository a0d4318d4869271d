"""The Modbus decode rule: a tag's registers → a :class:`~plc_adapters.sample.Sample` with its quality.

Pure (no I/O, no state): the Modbus adapter's scan and the stepped loop's PLC image
(:class:`hil.stepped_plc.SteppedPlc`) both use it, so the twin's view of a register is the same on the socket path
and the stepped path.

* Good when the registers decode to a finite value inside the tag's ``eu_range``;
* ``UNCERTAIN_ENGINEERING_UNITS_EXCEEDED`` for a finite value outside it (kept: the instrument reports beyond its
  range — usable with care, not Bad);
* ``BAD_DEVICE_FAILURE`` with the last usable value when the registers do not decode
  (:class:`~plc_adapters.modbus_codec.CodecError`) or decode to NaN/±inf (a PLC's failed analog input).

A usable sample of a commanded tag (``sample.quality`` not Bad) is the PLC's value of that setpoint; the caller
decides what observing it means (the adapter hands it to its guarded-write core).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

from plc_adapters.modbus_codec import CodecError, decode
from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from plc_adapters.tag_map import TagSpec

OUT_OF_EU_RANGE_QUALITY = Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
"""Quality of a value decoded outside its tag's eu_range (value kept)."""


def sample_from_registers(tag: TagSpec, registers: Sequence[int], received: datetime, last_value: float | None,
                          on_codec_error: Callable[[CodecError], None] | None = None) -> Sample:
    """The sample of ``tag`` whose registers read ``registers`` at ``received`` (UTC).

    Args:
        tag: the tag (codec, eu_range).
        registers: its raw 16-bit registers (one value per address for bit tables).
        received: source timestamp of the sample.
        last_value: the tag's last usable value, kept in a Bad sample (None if there was none).
        on_codec_error: told about an undecodable register pattern (for a log line); the sample is Bad either way.
    """
    try:
        value = decode(tag, list(registers))
    except CodecError as exc:
        if on_codec_error is not None:
            on_codec_error(exc)
        return Sample(tag.name, last_value, Quality.BAD_DEVICE_FAILURE, received)
    if not math.isfinite(value):
        return Sample(tag.name, last_value, Quality.BAD_DEVICE_FAILURE, received)
    quality = Quality.GOOD if tag.eu_range.contains(value) else OUT_OF_EU_RANGE_QUALITY
    return Sample(tag.name, value, quality, received)
