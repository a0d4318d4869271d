"""The Modbus adapter against misbehaving real peers on loopback (issue #7, "Logs and CLI").

Malformed answers are a communication fault with one clear warning and no traceback; pymodbus' frame
dumps stay out of the log; the reconnect delay grows against a peer that accepts and then fails, and
resets only after the link has proven healthy; log lines with peer bytes are shortened and repeats
rate-limited. Reconnects are counted as events (connections the peer saw, scans the adapter ran).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest

from plc_adapters import (
    DataType,
    Direction,
    ModbusAdapter,
    ModbusConnection,
    Quality,
    Range,
    RegisterTable,
    TagSpec,
)
from plc_adapters.modbus_adapter import HEALTHY_SCANS_TO_RESET_BACKOFF
from plc_adapters.pymodbus_logging import PYMODBUS_LOGGERS
from tests.conftest import wait_until
from tests.plc_adapters.misbehaving_peer import (
    Answer,
    MisbehavingPeer,
    Request,
    garbage,
    good_read_answer,
    long_garbage,
    silent,
    unknown_function_code,
    wrong_byte_count,
    wrong_transaction_id,
)

ADAPTER_LOGGER = "plc_adapters.modbus_adapter"
SCAN_PERIOD_S = 0.02
BACKOFF_INITIAL_S = 0.02
BACKOFF_MAX_S = 0.64
JITTER = 0.1

REACTOR_TEMPERATURE = TagSpec(
    name="reactor_temperature", direction=Direction.MEASURED, unit_code="CEL", eu_range=Range(-10.0, 150.0),
    table=RegisterTable.INPUT, address=0, data_type=DataType.FLOAT32,
)
VESSEL_LEVEL = TagSpec(
    name="vessel_level", direction=Direction.MEASURED, unit_code="MTR", eu_range=Range(0.0, 3.0),
    table=RegisterTable.INPUT, address=2, data_type=DataType.FLOAT32,
)
TAGS = [REACTOR_TEMPERATURE, VESSEL_LEVEL]
_DELAY_LINE = re.compile(r"reconnecting to .* in ([0-9.]+) s")


@pytest.fixture(autouse=True)
def fresh_pymodbus_loggers() -> Iterator[None]:
    """pymodbus' loggers as a fresh process has them (level NOTSET, no filters), restored afterwards."""
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).filters)) for name in PYMODBUS_LOGGERS}
    for name in PYMODBUS_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
        for log_filter in list(logging.getLogger(name).filters):
            logging.getLogger(name).removeFilter(log_filter)
    try:
        yield
    finally:
        for name, (level, filters) in saved.items():
            pymodbus_logger = logging.getLogger(name)
            pymodbus_logger.setLevel(level)
            for log_filter in list(pymodbus_logger.filters):
                pymodbus_logger.removeFilter(log_filter)
            for log_filter in filters:
                pymodbus_logger.addFilter(log_filter)


@pytest.fixture
async def peer_factory() -> AsyncIterator[type[MisbehavingPeer]]:
    peers: list[MisbehavingPeer] = []

    async def make(answer: Answer) -> MisbehavingPeer:
        peer = MisbehavingPeer(answer)
        await peer.start()
        peers.append(peer)
        return peer

    try:
        yield make  # type: ignore[misc]
    finally:
        for peer in peers:
            await peer.stop()


def _adapter(port: int, recorder, timeout_s: float = 1.0) -> ModbusAdapter:
    return ModbusAdapter(
        "crystallizer_1", ModbusConnection("127.0.0.1", port, unit_id=1, timeout_s=timeout_s), TAGS, SCAN_PERIOD_S,
        on_samples=recorder, backoff_initial_s=BACKOFF_INITIAL_S, backoff_max_s=BACKOFF_MAX_S,
    )


def _all(quality: Quality):
    return lambda samples: len(samples) == len(TAGS) and all(s.quality is quality for s in samples.values())


def _announced_delays(caplog) -> list[float]:
    return [float(m.group(1)) for r in caplog.records if r.name == ADAPTER_LOGGER
            and (m := _DELAY_LINE.search(r.getMessage()))]


def _assert_delays_grow_to_max(delays: list[float]) -> None:
    assert len(delays) >= 6, delays
    for earlier, later in zip(delays[:5], delays[1:6], strict=True):
        assert later >= earlier * 2 * (1 - JITTER) / (1 + JITTER) or later >= BACKOFF_MAX_S * (1 - JITTER), delays
    assert max(delays) >= BACKOFF_MAX_S * (1 - JITTER), delays


def _no_tracebacks_nor_frame_dumps(caplog) -> None:
    for record in caplog.records:
        text = record.getMessage()
        assert record.exc_info is None, f"{record.name}: traceback logged: {text[:200]}"
        assert not (record.name == "asyncio" and record.levelno >= logging.ERROR), text[:200]
        assert ">>>>>" not in text and "0x" not in text, f"{record.name}: frame dump logged: {text[:200]}"


# ------------------------------------------------------------------------ malformed answers (item 1)


@pytest.mark.parametrize(("answer", "what"), [
    (wrong_byte_count, "byte count 9 but 4 data bytes follow"),
    (garbage, "protocol id 48879"),
    (wrong_transaction_id, "answer to transaction"),
    (unknown_function_code, "function code 85"),
])
async def test_malformed_answers_give_one_clear_warning_per_outage_no_traceback_and_bad_tags(
    answer, what, peer_factory, recorder, caplog,
):
    caplog.set_level(logging.DEBUG)  # as `linetwin -v`
    peer = await peer_factory(answer)
    adapter = _adapter(peer.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: peer.connections >= 4 and len(peer.requests) >= 4, timeout_s=60.0,
                         what="four connections to the misbehaving peer")
        _, _, samples = await recorder.wait_for(_all(Quality.BAD_COMMUNICATION_ERROR), after=len(recorder.batches) - 1,
                                                what="Bad_CommunicationError samples")
    finally:
        await adapter.stop()
    assert all(s.value is None for s in samples.values())
    warnings = [r.getMessage() for r in caplog.records if r.name == ADAPTER_LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # one outage, one line, however many reconnects
    assert "malformed response from the PLC" in warnings[0] and what in warnings[0], warnings[0]
    assert len(warnings[0]) < 400
    _no_tracebacks_nor_frame_dumps(caplog)


# ------------------------------------------------------------------------- pymodbus logging (item 2)


async def test_pymodbus_frame_dumps_stay_out_of_a_debug_log(modbus_server, recorder, caplog):
    caplog.set_level(logging.DEBUG)  # root at DEBUG, pymodbus' loggers untouched: what `linetwin -v` had
    adapter = _adapter(modbus_server.port, recorder)
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING for name in PYMODBUS_LOGGERS)
    await adapter.start()
    try:
        await wait_until(lambda: len(modbus_server.requests) >= 5, what="five reads")
    finally:
        await adapter.stop()
    # no pymodbus DEBUG/INFO at all (a WARNING such as a late answer on a loaded machine may pass, shortened)
    assert not [r for r in caplog.records if r.name.startswith("pymodbus") and r.levelno < logging.WARNING]
    _no_tracebacks_nor_frame_dumps(caplog)


async def test_pymodbus_error_lines_lose_their_frame_dump(peer_factory, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    peer = await peer_factory(silent)  # accepts, never answers: pymodbus logs "No response received" at ERROR
    adapter = _adapter(peer.port, recorder, timeout_s=0.2)
    await adapter.start()
    try:
        await wait_until(lambda: peer.connections >= 3, timeout_s=60.0, what="three connections")
    finally:
        await adapter.stop()
    pymodbus_lines = [r.getMessage() for r in caplog.records if r.name.startswith("pymodbus")]
    assert pymodbus_lines, "pymodbus' own error line is kept (shortened), only its frame dump goes"
    _no_tracebacks_nor_frame_dumps(caplog)


# ----------------------------------------------------------------------------------- backoff (item 3)


async def test_reconnect_delay_grows_against_a_peer_that_accepts_and_then_misbehaves(peer_factory, recorder, caplog):
    caplog.set_level(logging.DEBUG, logger=ADAPTER_LOGGER)
    peer = await peer_factory(wrong_byte_count)
    adapter = _adapter(peer.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: adapter.stats.scans >= 150, timeout_s=120.0, what="150 scans")
        connections, scans = peer.connections, adapter.stats.scans
    finally:
        await adapter.stop()
    # Without backoff growth every scan or two reconnects (~75-150 connections in 150 scans); with delays
    # doubling to 0.64 s (32 scan periods) it is about 10.
    assert 3 <= connections <= scans // 7, (connections, scans)
    _assert_delays_grow_to_max(_announced_delays(caplog))


async def test_good_scans_short_of_healthy_do_not_reset_the_backoff(peer_factory, recorder, caplog):
    """A link proves healthy only after HEALTHY_SCANS_TO_RESET_BACKOFF good scans in a row."""
    caplog.set_level(logging.DEBUG, logger=ADAPTER_LOGGER)

    def good_once_then_garbled(request: Request) -> bytes:
        if request.index_on_connection < HEALTHY_SCANS_TO_RESET_BACKOFF - 1:
            return good_read_answer(request)
        return wrong_byte_count(request)

    peer = await peer_factory(good_once_then_garbled)
    adapter = _adapter(peer.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: len(_announced_delays(caplog)) >= 7, timeout_s=120.0, what="seven reconnect attempts")
    finally:
        await adapter.stop()
    _assert_delays_grow_to_max(_announced_delays(caplog))


async def test_backoff_starts_again_from_the_initial_delay_after_the_link_proved_healthy(
    peer_factory, recorder, caplog,
):
    caplog.set_level(logging.DEBUG, logger=ADAPTER_LOGGER)
    mode = {"answer": wrong_byte_count}
    peer = await peer_factory(lambda request: mode["answer"](request))
    adapter = _adapter(peer.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: len(_announced_delays(caplog)) >= 4, timeout_s=60.0, what="four reconnect attempts")
        assert _announced_delays(caplog)[-1] >= 4 * BACKOFF_INITIAL_S  # it had grown
        mode["answer"] = good_read_answer
        first_good, _, _ = await recorder.wait_for(_all(Quality.GOOD), timeout_s=30.0, what="recovery")
        await wait_until(lambda: len(recorder.batches) >= first_good + HEALTHY_SCANS_TO_RESET_BACKOFF + 1,
                         what="healthy scans")
        attempts_before = len(_announced_delays(caplog))
        mode["answer"] = wrong_byte_count
        await wait_until(lambda: len(_announced_delays(caplog)) > attempts_before, timeout_s=30.0,
                         what="a reconnect attempt after the new outage")
    finally:
        await adapter.stop()
    assert _announced_delays(caplog)[attempts_before] <= BACKOFF_INITIAL_S * (1 + JITTER)


# ------------------------------------------------------------------- shortened, rate-limited (item 4)


async def test_log_lines_quoting_peer_bytes_are_shortened(peer_factory, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    peer = await peer_factory(long_garbage)  # 240 bytes of garbage per answer
    adapter = _adapter(peer.port, recorder, timeout_s=0.3)
    await adapter.start()
    try:
        await wait_until(lambda: peer.connections >= 3, timeout_s=60.0, what="three connections")
    finally:
        await adapter.stop()
    assert caplog.records
    longest = max(caplog.records, key=lambda r: len(r.getMessage()))
    assert len(longest.getMessage()) <= 400, longest.getMessage()[:300]
    warning = next(r.getMessage() for r in caplog.records if r.name == ADAPTER_LOGGER and r.levelno == logging.WARNING)
    assert "de ad be ef" in warning and "(240 bytes)" in warning, warning


async def test_outage_and_recovery_lines_of_a_flapping_peer_are_rate_limited(peer_factory, recorder, caplog):
    caplog.set_level(logging.INFO, logger=ADAPTER_LOGGER)
    healthy_reads = HEALTHY_SCANS_TO_RESET_BACKOFF + 1

    def flapping(request: Request) -> bytes | None:  # a few good scans per connection, then it hangs up
        return good_read_answer(request) if request.index_on_connection < healthy_reads else None

    peer = await peer_factory(flapping)
    adapter = _adapter(peer.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: peer.connections >= 12, timeout_s=120.0, what="twelve outages")
    finally:
        await adapter.stop()
    outages = sum(1 for (_, before), (_, after) in zip(recorder.batches, recorder.batches[1:], strict=False)
                  if before[0].quality is Quality.GOOD and after[0].quality is Quality.BAD_COMMUNICATION_ERROR)
    assert outages >= 10
    warnings = [r for r in caplog.records if r.name == ADAPTER_LOGGER and r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if r.name == ADAPTER_LOGGER and "recovered after" in r.getMessage()]
    assert 1 <= len(warnings) <= 5, [r.getMessage() for r in warnings]
    assert 1 <= len(recoveries) <= 5
