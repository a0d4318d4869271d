"""Log hygiene: the repeat limiter remembers a bounded number of message keys (issue 21)."""

from __future__ import annotations

from plc_adapters.log_text import RepeatLimiter


def test_repeat_limiter_stays_at_its_bound_after_many_distinct_keys():
    now = [0.0]
    limiter = RepeatLimiter(burst=2, window_s=10.0, clock=lambda: now[0], max_keys=100)
    for i in range(10_000):  # e.g. a peer's message with a changing number in it, one a second
        assert limiter.allow(f"decode:{i}") == 0
        now[0] += 1.0
        assert limiter.remembered <= 100
    assert limiter.remembered <= 100


def test_repeat_limiter_forgets_the_oldest_when_every_window_is_live():
    now = [0.0]
    limiter = RepeatLimiter(burst=1, window_s=1e9, clock=lambda: now[0], max_keys=3)
    for key in ("a", "b", "c"):
        assert limiter.allow(key) == 0
    assert limiter.allow("a") is None  # suppressed: a's window is live
    assert limiter.allow("d") == 0  # room made by forgetting a (the oldest)
    assert limiter.remembered == 3
    assert limiter.allow("b") is None  # b, c and d still limited
    assert limiter.allow("a") == 0  # a was forgotten: it starts a new window


def test_repeat_limiter_keeps_counting_suppressed_lines_of_live_keys_under_the_bound():
    now = [0.0]
    limiter = RepeatLimiter(burst=1, window_s=10.0, clock=lambda: now[0], max_keys=10)
    assert limiter.allow("outage") == 0
    assert [limiter.allow("outage") for _ in range(3)] == [None, None, None]
    now[0] = 11.0
    assert limiter.allow("outage") == 3
