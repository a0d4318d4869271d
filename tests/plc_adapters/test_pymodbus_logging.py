"""The filter on pymodbus' logger: frame dumps cut, long lines shortened, repeats rate-limited."""

from __future__ import annotations

import logging

from plc_adapters.log_text import RepeatLimiter
from plc_adapters.pymodbus_logging import PymodbusRecordFilter


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("pymodbus.logging", level, __file__, 1, message, (), None)


def test_error_line_keeps_its_text_and_loses_the_appended_frames():
    record = _record("No response received after 0 retries\n>>>>> send: 0x0 0x1 0x0\n>>>>> recv: 0xde 0xad")
    assert PymodbusRecordFilter().filter(record)
    assert record.getMessage() == "No response received after 0 retries"


def test_frame_lines_and_repeat_markers_are_dropped():
    log_filter = PymodbusRecordFilter()
    for text in ("send: 0x0 0x1", "recv: 0xde 0xad extra data: ", "Processing: 0x0", "Repeating...."):
        assert not log_filter.filter(_record(text, logging.DEBUG)), text


def test_long_lines_are_shortened_and_repeats_rate_limited():
    now = [0.0]
    log_filter = PymodbusRecordFilter(RepeatLimiter(burst=2, window_s=10.0, clock=lambda: now[0]))
    long_record = _record("Unable to decode frame " + "ab" * 5000, logging.WARNING)
    assert log_filter.filter(long_record)
    assert len(long_record.getMessage()) < 200 and "chars)" in long_record.getMessage()
    passed = [log_filter.filter(_record("Invalid Modbus protocol id: 48879")) for _ in range(10)]
    assert passed == [True, True] + [False] * 8
    now[0] = 11.0
    later = _record("Invalid Modbus protocol id: 48879")
    assert log_filter.filter(later) and "8 like it suppressed" in later.getMessage()
