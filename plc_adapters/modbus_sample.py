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

:class:`BlockDecoder` applies the same rule to every tag of one read block at once with numpy (one array of the
block's registers, one gather and one dtype view per codec in the block, the range checks as array operations): the
Modbus adapter's scan path. It gives the values and qualities :func:`sample_from_registers` gives, bit for bit
(tested over every data type, byte and word order); a block holding a register outside 0..65535 (only a broken peer
sends one) is decoded tag by tag by :func:`sample_from_registers`, for its error message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from plc_adapters.modbus_codec import CodecError, decode
from plc_adapters.quality import Quality
from plc_adapters.read_plan import ReadBlock
from plc_adapters.sample import Sample
from plc_adapters.tag_map import ByteOrder, DataType, TagSpec, WordOrder

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


_BIG_ENDIAN_DTYPE = {
    DataType.INT16: ">i2", DataType.UINT16: ">u2", DataType.INT32: ">i4", DataType.UINT32: ">u4",
    DataType.FLOAT32: ">f4", DataType.FLOAT64: ">f8",
}

GOOD, OUT_OF_RANGE, NOT_FINITE = 0, 1, 2
"""The verdicts of :meth:`BlockDecoder.decode`: Good, Uncertain (outside eu_range, value kept), Bad (NaN/±inf)."""


@dataclass(frozen=True)
class _CodecGroup:
    """The tags of a block sharing one codec (data type, byte order, word order)."""

    data_type: DataType
    byte_order: ByteOrder
    positions: np.ndarray
    """where each tag sits in the block's tag tuple"""
    words: np.ndarray
    """(tags, registers per value): the block offsets of each tag's registers, most significant word first"""
    scale: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray


class BlockDecoder:
    """The decode rule of :func:`sample_from_registers` for all tags of one read block at once (numpy).

    Built once per block of the read plan; :meth:`decode` then costs a handful of array operations per codec
    present in the block, whatever its number of tags."""

    def __init__(self, block: ReadBlock) -> None:
        self.block = block
        by_codec: dict[tuple[DataType, ByteOrder, WordOrder], list[int]] = {}
        for i, tag in enumerate(block.tags):
            by_codec.setdefault((tag.data_type, tag.byte_order, tag.word_order), []).append(i)
        groups = []
        for (data_type, byte_order, word_order), positions in by_codec.items():
            tags = [block.tags[i] for i in positions]
            n_words = data_type.register_count
            order = np.arange(n_words)[::-1] if word_order is WordOrder.LITTLE and n_words > 1 else np.arange(n_words)
            starts = np.array([t.address - block.start for t in tags], dtype=np.intp)
            groups.append(_CodecGroup(
                data_type, byte_order, np.array(positions, dtype=np.intp), starts[:, None] + order[None, :],
                np.array([t.scale for t in tags], dtype=np.float64), np.array([t.offset for t in tags], np.float64),
                np.array([t.eu_range.low for t in tags], np.float64),
                np.array([t.eu_range.high for t in tags], np.float64)))
        self._groups = tuple(groups)
        self._n = len(block.tags)

    def decode(self, registers: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """``(values, verdicts)`` of the block's tags in ``block.tags`` order: the engineering value (float64) and
        :data:`GOOD` / :data:`OUT_OF_RANGE` / :data:`NOT_FINITE`; ``None`` when a register is outside 0..65535
        (decode that block tag by tag)."""
        raw_registers = np.asarray(registers, dtype=np.int64)
        if raw_registers.size and (raw_registers.min() < 0 or raw_registers.max() > 0xFFFF):
            return None
        block_words = raw_registers.astype(np.uint16)
        values = np.empty(self._n, dtype=np.float64)
        for g in self._groups:
            words = block_words[g.words]  # (tags, registers per value), most significant word first
            if g.data_type is DataType.BOOL:
                raw = (words[:, 0] != 0).astype(np.float64)
            else:
                if g.byte_order is ByteOrder.LITTLE:
                    words = words.byteswap()
                raw = np.ascontiguousarray(words.astype(">u2")).view(_BIG_ENDIAN_DTYPE[g.data_type])[:, 0]
            values[g.positions] = raw.astype(np.float64) * g.scale + g.offset
        verdicts = np.full(self._n, GOOD, dtype=np.int8)
        finite = np.isfinite(values)
        for g in self._groups:
            v = values[g.positions]
            outside = (v < g.low) | (v > g.high)
            verdicts[g.positions] = np.where(~finite[g.positions], NOT_FINITE, np.where(outside, OUT_OF_RANGE, GOOD))
        return values, verdicts
