"""The setpoint rate limit shared by every adapter.

``max_rate`` (engineering units per second) is the most a setpoint may move within one second: one write moves it
by at most ``max_rate × min(seconds since the PLC took its current value, RATE_WINDOW_S)``. So max_rate bounds the
step of a single write (a pause never allows a jump) as well as the average rate of a series of writes.
"""

from __future__ import annotations

RATE_WINDOW_S = 1.0
"""Longest time a pause counts for: after it, one write may move the setpoint by max_rate × this, at most."""

NO_REFERENCE = ("is set but the PLC's current value is not known yet (no read-back or write since start)")


def rate_limit_refusal(max_rate: float, unit: str, reference: tuple[float, float] | None, value: float,
                       now_s: float) -> str | None:
    """Why writing ``value`` now breaks the rate limit, or None. ``reference``: ``(value the PLC holds, clock time
    it took it)`` on the same clock as ``now_s``; None when not known (refused: the step cannot be bounded).
    ``unit``: the tag's unit symbol (°C, µm)."""
    if reference is None:
        return f"max_rate {max_rate:g} {unit}/s {NO_REFERENCE}"
    held, since = reference
    change = abs(value - held)
    if change == 0:
        return None
    elapsed_s = max(now_s - since, 0.0)
    largest_step = max_rate * min(elapsed_s, RATE_WINDOW_S)
    if change <= largest_step * (1 + 1e-9):
        return None
    return (f"step {held:g} → {value:g} {unit} is {change:.4g} {unit}; allowed now {largest_step:.4g} "
            f"{unit} = max_rate {max_rate:g} {unit}/s × min({elapsed_s:.3g} s since the PLC took {held:g}, "
            f"{RATE_WINDOW_S:g} s)")
