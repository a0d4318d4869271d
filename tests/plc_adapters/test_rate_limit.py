"""The rate limit both adapters apply (plc_adapters/rate_limit.py): max_rate bounds the step of one write, so a pause
never allows a full-range jump."""

from __future__ import annotations

from plc_adapters.rate_limit import RATE_WINDOW_S, rate_limit_refusal


def test_a_pause_does_not_allow_a_full_range_jump():
    # 5 °C held since t = 0, max_rate 20 °C/s, asked at t = 2 s (a 2 s pause): 5 → 90 °C is an 85 °C step
    why = rate_limit_refusal(20.0, "°C", (5.0, 0.0), 90.0, 2.0)
    assert why is not None and "allowed now 20 °C" in why
    assert rate_limit_refusal(20.0, "°C", (5.0, 0.0), 25.0, 2.0) is None  # 20 °C: max_rate × RATE_WINDOW_S
    assert RATE_WINDOW_S == 1.0


def test_short_intervals_bound_the_step_by_the_time_since_the_plc_took_its_value():
    assert rate_limit_refusal(20.0, "°C", (30.0, 10.0), 32.0, 10.1) is None  # 2 °C in 0.1 s
    assert rate_limit_refusal(20.0, "°C", (30.0, 10.0), 32.5, 10.1) is not None  # 2.5 °C in 0.1 s


def test_unknown_current_value_is_refused_and_no_change_is_always_allowed():
    assert "not known yet" in (rate_limit_refusal(20.0, "°C", None, 30.0, 5.0) or "")
    assert rate_limit_refusal(20.0, "°C", (30.0, 5.0), 30.0, 5.0) is None
