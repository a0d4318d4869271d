"""Capped exponential backoff with jitter for reconnecting to a PLC.

Delays run initial, 2·initial, 4·initial, ... up to ``max_s``, each multiplied by a random factor in
[1 - jitter, 1 + jitter] (and capped again at ``max_s``) so that many adapters that lost the same
network segment do not reconnect in lock step.
"""

from __future__ import annotations

import random


class Backoff:
    """Reconnect delays in seconds: initial → ×2 → ... → max, with small multiplicative jitter."""

    def __init__(self, initial_s: float, max_s: float, jitter: float = 0.1, rng: random.Random | None = None) -> None:
        if not initial_s > 0:
            raise ValueError(f"backoff initial delay must be > 0 s, got {initial_s!r}")
        if not max_s >= initial_s:
            raise ValueError(f"backoff max delay ({max_s!r} s) must be >= initial delay ({initial_s!r} s)")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {jitter!r}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        self._next_base_s = initial_s

    def next_delay(self) -> float:
        """Delay in seconds before the next attempt; doubles the base delay for the one after."""
        base_s = self._next_base_s
        self._next_base_s = min(self.max_s, base_s * 2.0)
        factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        return min(self.max_s, base_s * factor)

    def reset(self) -> None:
        """Start again from the initial delay (call after a successful connection)."""
        self._next_base_s = self.initial_s
