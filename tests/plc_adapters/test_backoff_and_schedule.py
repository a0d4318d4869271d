"""Reconnect backoff and the drift-free scan schedule (pure logic)."""

from __future__ import annotations

import random

import pytest

from plc_adapters import Backoff, ScanSchedule


def test_backoff_doubles_from_initial_to_max_within_jitter_and_resets():
    backoff = Backoff(0.2, 5.0, jitter=0.1, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    bases = [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.9 <= delay <= min(5.0, base * 1.1)
    assert len(set(delays)) > 1  # jitter actually varies
    backoff.reset()
    assert 0.18 <= backoff.next_delay() <= 0.22


def test_backoff_without_jitter_is_exact():
    backoff = Backoff(0.5, 3.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("initial", "maximum", "jitter"), [(0.0, 1.0, 0.1), (2.0, 1.0, 0.1), (0.1, 1.0, 1.0)])
def test_backoff_rejects_bad_settings(initial, maximum, jitter):
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, jitter)


def test_schedule_keeps_absolute_deadlines_when_scans_are_on_time():
    schedule = ScanSchedule(t0=100.0, period_s=0.1)
    for k in range(1, 50):
        assert schedule.advance(now=100.0 + (k - 1) * 0.1 + 0.03) == 0  # each scan takes 30 ms
        assert schedule.deadline == pytest.approx(100.0 + k * 0.1)
    assert schedule.overruns == 0


def test_schedule_skips_missed_slots_and_counts_them_instead_of_catching_up():
    schedule = ScanSchedule(t0=0.0, period_s=0.1)
    assert schedule.advance(now=0.25) == 2  # scan 0 ran 250 ms: slots 1 and 2 are gone
    assert schedule.deadline == pytest.approx(0.3)
    assert schedule.advance(now=0.31) == 0
    assert schedule.deadline == pytest.approx(0.4)
    assert schedule.overruns == 2


def test_schedule_rejects_non_positive_period():
    with pytest.raises(ValueError, match="scan period"):
        ScanSchedule(0.0, 0.0)
