"""Log hygiene shared by every package: values shortened before they reach a log line, and repeated
messages rate-limited, so a hostile client or a misbehaving peer cannot flood the log.

* :func:`shorten` renders any value for a log line (``repr`` for strings), cut to ``limit`` characters
  with the full length said (``'xxxx…' (1048576 chars)``).
* :class:`RepeatLimiter` lets the first ``burst`` occurrences of a message key through per ``window_s``
  and counts the rest; the next line that passes says how many were suppressed, and
  :meth:`RepeatLimiter.drain_suppressed` hands the counts of ended windows to a periodic summary. It remembers
  at most ``max_keys`` keys (a key may carry a tag, a user, a node or a peer's text: over months they are unbounded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_LIMIT = 80
"""Characters of a value kept in a log line or a config error."""


def shorten(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as text for a log line, at most about ``limit`` characters (strings quoted)."""
    text = repr(value) if isinstance(value, str | bytes) else str(value)
    if len(text) <= limit:
        return text
    if isinstance(value, list | tuple | dict | set):
        what = f"{len(value)} items"
    elif isinstance(value, bytes):
        what = f"{len(value)} bytes"
    elif isinstance(value, str):
        what = f"{len(value)} chars"
    else:
        what = f"{len(text)} chars"
    return f"{text[: max(limit - 1, 1)]}… ({what})"


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


@dataclass
class RepeatLimiter:
    """Per-key rate limit for log lines: at most ``burst`` lines per ``window_s`` seconds for one key.

    ``allow(key)`` returns ``None`` when the line must be dropped, else the number of lines of that key
    dropped since the last one that passed (0 usually), to be mentioned in the line.
    """

    burst: int = 5
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 1024
    """Keys remembered at most (~200 bytes each). A new key beyond it first forgets the keys whose window has
    passed, then the oldest; a forgotten key's suppressed count is not reported."""
    _windows: dict[str, _Window] = field(default_factory=dict)

    def allow(self, key: str) -> int | None:
        now = self.clock()
        w = self._windows.get(key)
        if w is None and len(self._windows) >= self.max_keys:
            self._forget(now)
        if w is None or now - w.start >= self.window_s:
            suppressed = w.suppressed if w is not None else 0
            self._windows[key] = _Window(start=now, passed=1)
            return suppressed
        if w.passed < self.burst:
            w.passed += 1
            suppressed, w.suppressed = w.suppressed, 0
            return suppressed
        w.suppressed += 1
        return None

    def drain_suppressed(self) -> dict[str, int]:
        """Keys with lines dropped in windows that have ended, and how many (counted once: they are cleared);
        for a periodic summary of what was suppressed. Forgets windows that ended with nothing dropped."""
        now = self.clock()
        out = {}
        for key, w in list(self._windows.items()):
            if now - w.start < self.window_s:
                continue
            if w.suppressed:
                out[key] = w.suppressed
            del self._windows[key]
        return out

    def _forget(self, now: float) -> None:
        """Make room for one key: drop the windows that have passed, else the oldest key."""
        for key in [k for k, w in self._windows.items() if now - w.start >= self.window_s]:
            del self._windows[key]
        while len(self._windows) >= self.max_keys:
            del self._windows[next(iter(self._windows))]

    @property
    def remembered(self) -> int:
        """Keys remembered now (at most :attr:`max_keys`)."""
        return len(self._windows)
