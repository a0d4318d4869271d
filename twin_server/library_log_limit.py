"""Rate limits on the log lines other libraries write on a client's behalf (issue 15, "logs that cannot be flooded").

asyncua logs one ERROR line, ``sending service fault response: … (BadTooManyOperations)``, for every request the
twin refuses with a service fault; a client repeating a refused request would otherwise write one line per request.
:func:`limit_library_logs` puts a :class:`RepeatFilter` on that logger: the first ``burst`` lines of one message per
``window_s`` pass, the next that passes says how many were suppressed. Installed once per process (idempotent).
"""

from __future__ import annotations

import logging

from plc_adapters.log_text import RepeatLimiter

__all__ = ["LIMITED_LOGGERS", "RepeatFilter", "limit_library_logs"]

LIMITED_LOGGERS = ("asyncua.server.uaprocessor",)
"""Loggers whose lines a client's requests can multiply."""


class RepeatFilter(logging.Filter):
    """Lets at most ``burst`` records with the same message through per ``window_s`` seconds."""

    def __init__(self, burst: int = 5, window_s: float = 60.0) -> None:
        super().__init__()
        self.limiter = RepeatLimiter(burst=burst, window_s=window_s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        suppressed = self.limiter.allow(f"{record.name}|{message[:200]}")
        if suppressed is None:
            return False
        if suppressed:
            record.msg, record.args = f"{message} ({suppressed} similar lines suppressed)", None
        return True


def limit_library_logs() -> None:
    """Put one :class:`RepeatFilter` on each of :data:`LIMITED_LOGGERS` (no second one when called again)."""
    for name in LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
