"""Modbus TCP adapter: polls a unit's PLC on a fixed scan period and writes guarded setpoints.

Behaviour a plant engineer can rely on:

* **Scans** run on absolute deadlines ``t0 + k·scan_period_s`` of the event-loop clock; an overrunning
  scan skips the slots it missed (counted in ``stats.overruns``), lag never accumulates. ``t0`` is the
  end of the first connection attempt (at most ``connection.timeout_s`` after ``start``).
* **One list per scan**: every scan reads the planned blocks (measured tags and the read-back of
  commanded holding registers / coils, so the twin shows what the PLC really holds) and hands one list
  of samples for all tags to ``on_samples``.
* **Timestamps**: Modbus carries no timestamps, so a Good sample's source timestamp is the UTC time at
  which the response of its read request was received; a Bad sample carries the UTC time of the scan
  that found the source down.
* **Quality**: Good when read and decoded; a value outside the tag's ``eu_range`` is kept and marked
  ``UNCERTAIN_ENGINEERING_UNITS_EXCEEDED`` (the instrument reports beyond its range — usable with
  care, not Bad); a non-finite float from the PLC becomes ``BAD_DEVICE_FAILURE`` with the last usable
  value kept. Connection loss, timeout or a Modbus exception answer to a read make that scan and every
  scan while the fault lasts ``BAD_COMMUNICATION_ERROR`` for every tag, with the last known value (or
  None), never a stale Good. Before the first scan tags read ``BAD_WAITING_FOR_INITIAL_DATA``.
* **Reconnect**: pymodbus' own reconnect is switched off (``reconnect_delay=0``); the adapter
  reconnects in a background task with capped exponential backoff and jitter, while the scan task keeps
  emitting Bad samples on schedule. The backoff is reset only once the link has proven healthy
  (``HEALTHY_SCANS_TO_RESET_BACKOFF`` good scans in a row), so a peer that accepts the connection and then
  misbehaves sees delays grow to ``backoff_max_s``. One warning per outage, one info line on recovery
  with its duration (both rate-limited per unit).
* **Malformed responses** (wrong byte count, wrong protocol id, transaction or device id, undecodable
  PDU) are a communication fault like a dropped connection: the link is closed and the outage warning
  says what was wrong (shortened), with no traceback; pymodbus' own log output is kept at WARNING or
  quieter and without frame dumps (:mod:`plc_adapters.pymodbus_logging`).
* **Writes** are checked before anything goes on the wire (see :meth:`ModbusAdapter.write`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from plc_adapters.adapter import register_adapter
from plc_adapters.adapter_core import AdapterCore
from plc_adapters.adapter_state import Counters, SampleStore, WriteStats
from plc_adapters.backoff import Backoff
from plc_adapters.errors import WriteRefusal
from plc_adapters.guarded_write import GuardedWrites
from plc_adapters.log_text import RepeatLimiter, shorten
from plc_adapters.modbus_codec import CodecError, decode, encode
from plc_adapters.modbus_sample import GOOD, OUT_OF_EU_RANGE_QUALITY, OUT_OF_RANGE, BlockDecoder, sample_from_registers
from plc_adapters.pymodbus_logging import quiet_pymodbus_logging
from plc_adapters.quality import Quality
from plc_adapters.read_plan import ReadBlock, plan_reads
from plc_adapters.sample import Sample
from plc_adapters.sample_delivery import SampleDelivery, SamplesCallback
from plc_adapters.scan_schedule import ScanSchedule
from plc_adapters.tag_map import Direction, ModbusConnection, RegisterTable, TagSpec

logger = logging.getLogger(__name__)

HEALTHY_SCANS_TO_RESET_BACKOFF = 3
"""Good scans in a row after which the reconnect backoff starts again from its initial delay."""

ERROR_TEXT_LIMIT = 200
"""Characters of an error text (which may carry bytes from the peer) kept in a log line."""

MAX_MBAP_LENGTH = 254
"""Largest MBAP length field of a Modbus TCP frame (unit id + 253-byte PDU), Modbus Messaging on TCP/IP V1.0b."""

_READ_FUNCTIONS = {
    RegisterTable.HOLDING: AsyncModbusTcpClient.read_holding_registers,  # function code 3
    RegisterTable.INPUT: AsyncModbusTcpClient.read_input_registers,  # function code 4
    RegisterTable.COIL: AsyncModbusTcpClient.read_coils,  # function code 1
    RegisterTable.DISCRETE: AsyncModbusTcpClient.read_discrete_inputs,  # function code 2
}


@dataclass(frozen=True, slots=True)
class AdapterStats(WriteStats):
    """Counters of one Modbus adapter since start (and :class:`~plc_adapters.adapter_state.WriteStats`' write
    counters).

    Attributes:
        scans: scans run (good or bad).
        failed_scans: scans whose samples were Bad_CommunicationError.
        reconnects: successful reconnections after an outage (the first connection is not counted).
        overruns: scan slots skipped because a scan (or the samples callback) ran past the next slot.
        last_scan_duration_s: wall time of the last scan, reads and callback included, in seconds.
        read_requests_per_scan: read requests one scan needs (blocks of the read plan).
    """

    scans: int = 0
    failed_scans: int = 0
    reconnects: int = 0
    overruns: int = 0
    last_scan_duration_s: float = 0.0
    read_requests_per_scan: int = 0


def _suppressed_text(suppressed: int) -> str:
    """Tail of a rate-limited log line: how many like it were dropped since the last one logged."""
    return f" ({suppressed} similar lines suppressed)" if suppressed else ""


class _LinkError(Exception):
    """The connection is unusable (closed, timed out, garbled): drop it and reconnect."""


class _DeviceException(Exception):
    """The PLC answered with a Modbus exception response (connection still fine)."""

    def __init__(self, response: ModbusPDU) -> None:
        code = getattr(response, "exception_code", None)
        super().__init__(f"Modbus exception code {code} for function code {response.function_code & 0x7F}")


def _error_text(error: object) -> str:
    """An error for a log line, cut to ``ERROR_TEXT_LIMIT`` characters (it may quote the peer)."""
    text = str(error) or type(error).__name__
    return text if len(text) <= ERROR_TEXT_LIMIT else f"{text[: ERROR_TEXT_LIMIT - 1]}… ({len(text)} chars)"


def _hex_preview(data: bytes, limit: int = 16) -> str:
    """The first ``limit`` bytes of a frame in hex, e.g. ``00 01 00 00 00 07 01 04 09 … (13 bytes)``."""
    shown = data[:limit].hex(" ")
    return shown if len(data) <= limit else f"{shown} … ({len(data)} bytes)"


_READ_FUNCTION_CODES = frozenset({1, 2, 3, 4})


def _mbap_problem(data: bytes, expected_transaction_id: int, expected_device_id: int) -> str | None:
    """What is wrong with the frame at the start of ``data`` (None if nothing, or too short to tell).

    Checks the MBAP header (Modbus Messaging on TCP/IP Implementation Guide V1.0b, 3.1.3) and, for a read
    response (function codes 1-4), that its byte count matches the data that follows.
    """
    if len(data) < 7:
        return None
    transaction_id = int.from_bytes(data[0:2], "big")
    protocol_id = int.from_bytes(data[2:4], "big")
    length = int.from_bytes(data[4:6], "big")
    device_id = data[6]
    if protocol_id != 0:
        return f"protocol id {protocol_id} in the MBAP header, expected 0"
    if not 2 <= length <= MAX_MBAP_LENGTH:
        return f"MBAP length {length}, expected 2..{MAX_MBAP_LENGTH}"
    if expected_transaction_id and transaction_id and transaction_id != expected_transaction_id:
        return f"answer to transaction {transaction_id}, expected {expected_transaction_id}"
    if expected_device_id and device_id != expected_device_id:
        return f"answer from device id {device_id}, expected {expected_device_id}"
    if len(data) >= 6 + length and length >= 3 and data[7] in _READ_FUNCTION_CODES:
        byte_count, data_bytes = data[8], length - 3  # MBAP length counts unit id, function code, byte count
        if byte_count != data_bytes:
            return f"byte count {byte_count} but {data_bytes} data bytes follow (function code {data[7]})"
    return None


class _Link:
    """One TCP connection: the pymodbus client and a future resolved when the peer drops it.

    Bytes from the peer pass through :meth:`_checked_data` before pymodbus decodes them: a malformed frame
    (bad MBAP header, or a PDU pymodbus cannot decode, e.g. a byte count that disagrees with the data)
    closes the link with ``error`` saying what was wrong, instead of an exception escaping into the event
    loop (a traceback per response) or a request left to time out.
    """

    def __init__(self, connection: ModbusConnection) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.error: str | None = None
        self.client = AsyncModbusTcpClient(
            connection.host,
            port=connection.port,
            timeout=connection.timeout_s,
            retries=0,
            reconnect_delay=0,  # the adapter does its own backoff
            trace_connect=self._on_connection_change,
        )
        transaction = self.client.ctx
        self._decode_frames = transaction.callback_data
        transaction.callback_data = self._checked_data  # pymodbus' protocol calls it for every chunk received

    def _on_connection_change(self, connected: bool) -> None:
        if not connected and not self.lost.done():
            self.lost.set_result(None)

    def _checked_data(self, data: bytes, addr: tuple[str, int] | None = None) -> int:
        """pymodbus' ``callback_data``, guarded: returns the bytes consumed, or drops the link."""
        if self.lost.done():
            return len(data)
        transaction = self.client.ctx
        problem = _mbap_problem(data, getattr(transaction, "request_transaction_id", 0),
                                getattr(transaction, "request_dev_id", 0))
        if problem is None:
            try:
                return self._decode_frames(data, addr=addr)
            except Exception as exc:  # noqa: BLE001 - any decoding failure is the peer's garbage, not ours
                function_code = f" (function code {data[7]})" if len(data) > 7 else ""
                problem = f"undecodable response{function_code}: {str(exc) or type(exc).__name__}"
        self.error = f"malformed response from the PLC: {_error_text(problem)} (received {_hex_preview(data)})"
        self.close()
        return len(data)

    @property
    def up(self) -> bool:
        return self.client.connected and not self.lost.done()

    def close(self) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.client.close()


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again while it runs on: a cancellation that lands
    while a request is being torn down, or in Python 3.11's ``asyncio.wait_for`` race, can be swallowed, and a stop
    requested right after the start then waited forever (found by a ``demo`` stopped by a closed stdout)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if not task.cancelled():
        task.result()  # an error it ended with is the caller's, as before


class ModbusAdapter(AdapterCore[AdapterStats]):
    """Polls one unit's PLC over Modbus TCP and writes its commanded tags.

    Args:
        unit: unit name, used in logs.
        connection: where the PLC listens; ``timeout_s`` bounds each connect and each request.
        tags: the unit's tag map (measured and commanded).
        scan_period_s: time between scan starts, in seconds.
        on_samples: called (and awaited if it returns an awaitable) with one list of samples per scan.
        backoff_initial_s / backoff_max_s: reconnect delays in seconds (initial → ×2 → max, ±10 % jitter).
    """

    def __init__(
        self, unit: str, connection: ModbusConnection, tags: Sequence[TagSpec], scan_period_s: float,
        on_samples: SamplesCallback | None = None, backoff_initial_s: float = 0.2, backoff_max_s: float = 5.0,
    ) -> None:
        if not (math.isfinite(scan_period_s) and scan_period_s > 0):
            raise ValueError(
                f"unit '{unit}': scan_period_s must be a finite number of seconds > 0, got {scan_period_s!r}"
            )
        if not tags:
            raise ValueError(f"unit '{unit}': the tag map is empty")
        try:
            self._plan: list[ReadBlock] = plan_reads(tags)
        except ValueError as exc:
            raise ValueError(f"unit '{unit}': {exc}") from exc
        self._decoders = [(block, BlockDecoder(block)) for block in self._plan]
        """The read plan with each block's numpy decoder (the scan path)."""
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)  # validates the delays now
        self._healthy_scans = 0
        self._log_limiter = RepeatLimiter(burst=5, window_s=60.0)
        quiet_pymodbus_logging()
        self.unit = unit
        self.connection = connection
        self.scan_period_s = scan_period_s
        self._tags: dict[str, TagSpec] = {tag.name: tag for tag in tags}
        self._delivery = SampleDelivery(unit, on_samples, logger)

        self._link: _Link | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._outage_since: float | None = None
        self._store = SampleStore(self._tags)
        self._counters = Counters(AdapterStats, read_requests_per_scan=len(self._plan))
        self._writes = GuardedWrites(unit, self._tags, self._counters, logger)
        self._io_lock = asyncio.Lock()
        """Held by a scan (read, store, deliver) and by the register part of a write: never both at once."""

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """True while a TCP connection to the PLC is open and usable."""
        return self._link is not None and self._link.up

    @property
    def eu_mismatches(self) -> Mapping[str, str]:
        """Always empty: Modbus carries no engineering units to compare with the config."""
        return MappingProxyType({})

    async def start(self) -> None:
        """Start polling in a background task; returns at once (does not wait for the connection)."""
        if self._poll_task is not None and not self._poll_task.done():
            raise RuntimeError(f"unit '{self.unit}': adapter already started")
        self._counters.reset()
        self._backoff.reset()
        self._healthy_scans = 0
        self._poll_task = asyncio.create_task(self._poll(), name=f"modbus-poll-{self.unit}")

    async def stop(self) -> None:
        """Stop polling and reconnecting and close the connection. Safe to call more than once."""
        for task in (self._poll_task, self._reconnect_task):
            if task is not None:
                await _cancel_and_wait(task)
        self._poll_task = self._reconnect_task = None
        self._outage_since = None
        if self._link is not None:
            self._link.close()
            self._link = None

    async def write(self, tag: str, value: float) -> None:
        """Write a commanded tag's engineering value to the PLC.

        Checked before anything goes on the wire, in this order: the tag exists (UNKNOWN_TAG); it is a
        commanded tag in a writable table (NOT_WRITABLE); the value is a finite real number
        (TYPE_MISMATCH); it lies within ``tag.effective_write_limits`` and the raw type (OUT_OF_RANGE);
        the PLC is connected (COMMUNICATION_ERROR); its step from the value the PLC holds — the last write,
        or the read-back if someone else changed it since — is at most ``tag.max_rate`` × min(seconds since the
        PLC took that value, :data:`~plc_adapters.rate_limit.RATE_WINDOW_S`) (RATE_LIMIT): a rate limit bounds
        the step of one write as well as the average rate, so a pause does not allow a full-range jump.

        Before the rate check, and before any write that follows a write of unknown outcome, the register
        is read back from the PLC (so the check and the reconciliation use what the PLC really holds); if
        that read fails the write is refused with COMMUNICATION_ERROR. A Modbus exception answer gives
        DEVICE_REFUSED.

        Raises:
            WriteRefused: with the reason; nothing was written unless the reason is DEVICE_REFUSED.
            WriteOutcomeUnknown: the request was sent but no answer came (timeout, connection lost): the
                PLC may have applied it. The tag is read back before the next write to it is accepted.
        """
        await self._writes.write(tag, value, self._send)

    async def _send(self, spec: TagSpec, value: float) -> None:
        """The Modbus part of a guarded write: encode, read back if needed, rate check, write the registers."""
        tag = spec.name
        try:
            registers = encode(spec, value)
        except CodecError as exc:
            self._writes.refuse(tag, value, WriteRefusal.OUT_OF_RANGE, str(exc))
        held_value = decode(spec, registers)
        async with self._io_lock:  # after any scan read in flight (see _scan)
            link = self._link
            if link is None or not link.up:
                self._writes.refuse(tag, value, WriteRefusal.COMMUNICATION_ERROR, self._not_connected_text())
            if self._writes.needs_read_back(spec):
                await self._read_back(spec, link, value)
            self._writes.check_rate(spec, held_value)

            try:
                if spec.table is RegisterTable.COIL:
                    await self._request(link, lambda c: c.write_coil(
                        spec.address, bool(registers[0]), device_id=self.connection.unit_id))
                elif len(registers) == 1:
                    await self._request(link, lambda c: c.write_register(
                        spec.address, registers[0], device_id=self.connection.unit_id))
                else:
                    await self._request(link, lambda c: c.write_registers(
                        spec.address, registers, device_id=self.connection.unit_id))
            except _LinkError as exc:
                # The request was on its way: the PLC may have applied it (e.g. it hung after receiving it).
                self._link_lost(link, exc)
                message = (f"{self._endpoint()}: {exc}; the PLC may or may not have applied it; the register is read "
                           "back before the next write to this tag")
                raise self._writes.outcome_unknown(spec, value, held_value, message) from None
            except _DeviceException as exc:
                self._writes.refuse(tag, value, WriteRefusal.DEVICE_REFUSED, f"PLC refused the write: {exc}")
            self._writes.accepted(spec, value, held_value)

    async def _read_back(self, spec: TagSpec, link: _Link, value: float) -> None:
        """Read a commanded tag's register(s) from the PLC now: the value it holds becomes the rate reference,
        the tag's last value and sample, and resolves a write of unknown outcome. Refuses the write (reason
        COMMUNICATION_ERROR) when the read fails."""
        block = ReadBlock(spec.table, spec.address, spec.register_count, (spec,))
        try:
            registers = await self._read_block(link, block)
        except (_LinkError, _DeviceException) as exc:
            if isinstance(exc, _LinkError):
                self._link_lost(link, exc)
            pending = self._writes.unconfirmed.get(spec.name)
            why = (f"the outcome of the earlier write of {pending:g} is unknown and " if pending is not None else
                   "the PLC's current value is not known and ")
            self._writes.refuse(spec.name, value, WriteRefusal.COMMUNICATION_ERROR,
                                f"{why}the register could not be read back from {self._endpoint()}: {exc}")
        sample = self._decode_sample(spec, registers, datetime.now(UTC))
        self._store.update([sample])

    # ------------------------------------------------------------------ polling

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        self._counters["read_requests_per_scan"] = len(self._plan)
        if not await self._connect():
            self._start_reconnecting()
        schedule = ScanSchedule(loop.time(), self.scan_period_s)
        while True:
            delay = schedule.deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            started = loop.time()
            await self._scan()
            finished = loop.time()
            self._counters["last_scan_duration_s"] = finished - started
            self._counters["scans"] += 1
            schedule.advance(finished)
            self._counters["overruns"] = schedule.overruns

    async def _scan(self) -> None:
        """One scan: read every planned block, store and deliver the samples. Holds the I/O lock, so a write
        waits for a read in flight: a value read before the write never lands after it (it would overwrite the
        accepted value on the twin's node with the one the PLC held before)."""
        async with self._io_lock:
            link = self._link
            samples: list[Sample] | None = None
            if link is not None and link.up:
                try:
                    samples = await self._read_all(link)
                except _LinkError as exc:
                    self._link_lost(link, exc)
                except _DeviceException as exc:
                    self._begin_outage(exc)  # the connection is fine: no reconnect
            elif link is not None:
                self._link_lost(link, "connection closed by the PLC")
            else:
                self._start_reconnecting()  # no-op while a reconnect task runs
            if samples is None:
                self._counters["failed_scans"] += 1
                self._healthy_scans = 0
                samples = self._bad_samples(Quality.BAD_COMMUNICATION_ERROR)
            else:
                self._end_outage()
                self._healthy_scans += 1
                if self._healthy_scans == HEALTHY_SCANS_TO_RESET_BACKOFF:
                    self._backoff.reset()  # the link has proven healthy: the next outage starts with short delays
            self._store.replace_all(samples)
            await self._delivery.deliver(samples)

    async def _read_all(self, link: _Link) -> list[Sample]:
        samples: list[Sample] = []
        for block, decoder in self._decoders:
            values = await self._read_block(link, block)
            received = datetime.now(UTC)
            decoded = decoder.decode(values)
            if decoded is None:  # a register outside 0..65535: tag by tag, for the codec's error message
                samples += [self._decode_sample(tag, values[block.slice_for(tag)], received) for tag in block.tags]
            else:
                samples += self._block_samples(block, *decoded, received)
        return samples

    def _block_samples(self, block: ReadBlock, values: np.ndarray, verdicts: np.ndarray,
                       received: datetime) -> list[Sample]:
        """The samples of a block decoded at once (:class:`~plc_adapters.modbus_sample.BlockDecoder`), with the
        effects of :meth:`_decode_sample`: a usable value becomes the tag's last value and, for a commanded tag, an
        observation of the PLC's setpoint."""
        last_values = self._store.last_values
        out: list[Sample] = []
        for tag, value, verdict in zip(block.tags, values.tolist(), verdicts.tolist(), strict=True):
            name = tag.name
            if verdict == GOOD or verdict == OUT_OF_RANGE:
                last_values[name] = value
                out.append(Sample(name, value, Quality.GOOD if verdict == GOOD else OUT_OF_EU_RANGE_QUALITY, received))
                if tag.direction is Direction.COMMANDED:
                    self._writes.observed(tag, value)
            else:
                out.append(Sample(name, last_values[name], Quality.BAD_DEVICE_FAILURE, received))
        return out

    async def _read_block(self, link: _Link, block: ReadBlock) -> list[int]:
        device_id = self.connection.unit_id
        start, count = block.start, block.count
        read = _READ_FUNCTIONS[block.table]
        response = await self._request(link, lambda client: read(client, start, count=count, device_id=device_id))
        values = [int(bit) for bit in response.bits[:count]] if block.table.is_bit_table else list(response.registers)
        if len(values) < count:
            raise _LinkError(f"short response: asked {count} {block.table.value} values at {start}, got {len(values)}")
        return values[:count]

    def _decode_sample(self, tag: TagSpec, registers: list[int], received: datetime) -> Sample:
        """The decode rule (:func:`~plc_adapters.modbus_sample.sample_from_registers`), then its effects here: a
        usable value becomes the tag's last value and, for a commanded tag, an observation of the PLC's setpoint."""
        last_values = self._store.last_values

        def log_codec_error(exc: CodecError) -> None:
            suppressed = self._log_limiter.allow(f"decode:{tag.name}")
            if suppressed is not None:
                logger.warning("unit %s: tag %s: cannot decode %s: %s%s", self.unit, tag.name, shorten(registers),
                               _error_text(exc), _suppressed_text(suppressed))

        sample = sample_from_registers(tag, registers, received, last_values[tag.name], log_codec_error)
        if not sample.quality.is_bad and sample.value is not None:
            last_values[tag.name] = sample.value
            if tag.direction is Direction.COMMANDED:
                self._writes.observed(tag, sample.value)
        return sample

    def _bad_samples(self, quality: Quality) -> list[Sample]:
        return self._store.bad(quality)

    # ------------------------------------------------------------------ connection

    async def _request(self, link: _Link, send: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]]) -> ModbusPDU:
        """Run one request; a dropped connection fails it at once, not after the timeout."""
        if not link.up:
            raise _LinkError("not connected")
        request = asyncio.ensure_future(send(link.client))
        try:
            done, _ = await asyncio.wait(
                {request, link.lost}, timeout=self.connection.timeout_s + 0.1, return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await request
        if request not in done:
            raise _LinkError("connection closed by the PLC" if link.lost.done() else
                             f"no response within {self.connection.timeout_s:g} s")
        try:
            response = request.result()
        except (TimeoutError, ModbusException, OSError) as exc:
            raise _LinkError(str(exc) or type(exc).__name__) from exc
        if response.isError():
            raise _DeviceException(response)
        return response

    async def _connect(self) -> bool:
        link = _Link(self.connection)
        try:
            ok = await link.client.connect()
        except asyncio.CancelledError:
            link.close()
            raise
        except Exception as exc:  # pymodbus raises for e.g. unresolvable hosts
            ok = False
            error: object = exc
        else:
            error = "connection refused or timed out"
        if ok and link.up:
            self._link = link
            return True
        link.close()
        self._begin_outage(error)
        return False

    def _start_reconnecting(self) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._reconnect(), name=f"modbus-reconnect-{self.unit}")

    async def _reconnect(self) -> None:
        try:
            while True:
                delay_s = self._backoff.next_delay()
                logger.debug("unit %s: reconnecting to %s in %.3f s", self.unit, self._endpoint(), delay_s)
                await asyncio.sleep(delay_s)
                if await self._connect():
                    self._counters["reconnects"] += 1
                    return
        finally:
            self._reconnect_task = None

    def _link_lost(self, link: _Link, error: object) -> None:
        """Drop a broken connection (once) and start reconnecting."""
        self._begin_outage(link.error or error)  # link.error: the malformed response that closed it
        if self._link is link:
            self._link = None
            link.close()
        self._start_reconnecting()

    def _begin_outage(self, error: object) -> None:
        if self._outage_since is None:
            self._outage_since = asyncio.get_running_loop().time()
            suppressed = self._log_limiter.allow("outage")
            if suppressed is not None:
                logger.warning("unit %s: PLC %s unavailable: %s; samples are Bad_CommunicationError until it "
                               "recovers%s", self.unit, self._endpoint(), _error_text(error),
                               _suppressed_text(suppressed))

    def _end_outage(self) -> None:
        if self._outage_since is not None:
            duration_s = asyncio.get_running_loop().time() - self._outage_since
            self._outage_since = None
            suppressed = self._log_limiter.allow("recovery")
            if suppressed is not None:
                logger.info("unit %s: PLC %s recovered after %.2f s%s", self.unit, self._endpoint(), duration_s,
                            _suppressed_text(suppressed))

    # ------------------------------------------------------------------ helpers

    def _endpoint(self) -> str:
        return f"{self.connection.host}:{self.connection.port} (device id {self.connection.unit_id})"

    def _not_connected_text(self) -> str:
        return f"PLC {self._endpoint()} is not connected"


register_adapter(ModbusConnection.protocol, ModbusAdapter)
