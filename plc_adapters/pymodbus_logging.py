"""Keep pymodbus' own log output out of the way: linetwin reports outages and recoveries itself.

pymodbus 3.x logs through one logger, ``pymodbus.logging`` (child of ``pymodbus``), via its ``Log``
class. At DEBUG it dumps every frame (``send: 0x…``, ``recv: 0x…``); below DEBUG its ERROR lines carry
the last 20 frames appended (``>>>>> send: 0x…``). :func:`quiet_pymodbus_logging` keeps the ``pymodbus``
loggers at WARNING or quieter whatever the root level is (``linetwin -v`` included), and installs
:class:`PymodbusRecordFilter` on ``pymodbus.logging``: frame dumps are cut off, the rest of the line is
shortened (to ``MESSAGE_LIMIT`` characters, saying its full length) and repeats are rate-limited
(:class:`plc_adapters.log_text.RepeatLimiter`).
"""

from __future__ import annotations

import logging

from plc_adapters.log_text import RepeatLimiter

PYMODBUS_LOGGERS = ("pymodbus", "pymodbus.logging")
"""The loggers pymodbus 3.x writes to (``Log._logger`` is ``pymodbus.logging``)."""

FRAME_DUMP_MARKER = "\n>>>>>"
"""Where pymodbus appends its last frames to an ERROR line."""

_FRAME_LINE_PREFIXES = ("send: ", "recv: ", "extra: ", "Processing: ", "Very short frame", "Short frame")
MESSAGE_LIMIT = 160
"""Characters of a pymodbus line kept."""


class PymodbusRecordFilter(logging.Filter):
    """Drops frame dumps and pymodbus' "Repeating...." lines, shortens and rate-limits the rest."""

    def __init__(self, limiter: RepeatLimiter | None = None) -> None:
        super().__init__()
        self._limiter = limiter or RepeatLimiter(burst=5, window_s=60.0)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().split(FRAME_DUMP_MARKER, 1)[0].strip()
        if not text or text == "Repeating...." or text.startswith(_FRAME_LINE_PREFIXES):
            return False
        suppressed = self._limiter.allow(f"{record.levelno}:{text[:60]}")
        if suppressed is None:
            return False
        record.msg = text if len(text) <= MESSAGE_LIMIT else f"{text[: MESSAGE_LIMIT - 1]}… ({len(text)} chars)"
        if suppressed:
            record.msg += f" (and {suppressed} like it suppressed)"
        record.args = ()
        record.exc_info = record.exc_text = None
        return True


_FILTER = PymodbusRecordFilter()


def quiet_pymodbus_logging(level: int = logging.WARNING) -> None:
    """Keep pymodbus' loggers at ``level`` or quieter (never below WARNING) and filter what they log.

    Idempotent; call it after the application configured logging (e.g. ``basicConfig(level=DEBUG)``).
    A logger already set quieter than ``level`` (e.g. ERROR) is left as it is.
    """
    level = max(level, logging.WARNING)
    root_logger = logging.getLogger("pymodbus")
    if root_logger.level == logging.NOTSET or root_logger.level < level:
        root_logger.setLevel(level)
    frame_logger = logging.getLogger("pymodbus.logging")
    if frame_logger.level != logging.NOTSET and frame_logger.level < level:  # e.g. pymodbus_apply_logging_config
        frame_logger.setLevel(level)
    if _FILTER not in frame_logger.filters:
        frame_logger.addFilter(_FILTER)
