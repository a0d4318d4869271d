"""Limit alarm logic without sockets: limit states, deadband, on-delay (injected clock), and condition states."""

from __future__ import annotations

import pytest
from asyncua import ua

from twin_server.alarms.condition_state import ConditionRefused, ConditionState
from twin_server.alarms.limits import LimitAlarmConfig, LimitEvaluator, LimitState

HIGHS = LimitAlarmConfig(high_high=80.0, high=70.0, low=10.0, low_low=5.0, deadband=0.5)


def run(evaluator: LimitEvaluator, values: list[tuple[float, float]]) -> list[LimitState | None]:
    return [evaluator.update(v, t) for t, v in values]


def test_most_severe_limit_crossed_is_the_active_state():
    ev = LimitEvaluator(HIGHS)
    assert run(ev, [(0, 50.0), (1, 70.0), (2, 85.0), (3, 4.0), (4, 8.0), (5, 50.0)]) == [
        None, LimitState.HIGH, LimitState.HIGH_HIGH, LimitState.LOW_LOW, LimitState.LOW, None]


def test_deadband_holds_the_state_until_the_value_is_back_past_the_limit_by_more_than_the_deadband():
    ev = LimitEvaluator(HIGHS)
    assert run(ev, [(0, 70.2), (1, 69.9), (2, 69.5), (3, 69.49)]) == [
        LimitState.HIGH, LimitState.HIGH, LimitState.HIGH, None]
    ev = LimitEvaluator(HIGHS)  # from HighHigh down: HighHigh held within its deadband, then High
    assert run(ev, [(0, 81.0), (1, 79.6), (2, 79.4), (3, 69.7), (4, 69.0)]) == [
        LimitState.HIGH_HIGH, LimitState.HIGH_HIGH, LimitState.HIGH, LimitState.HIGH, None]
    ev = LimitEvaluator(HIGHS)  # lows mirror highs
    assert run(ev, [(0, 9.9), (1, 10.4), (2, 10.6)]) == [LimitState.LOW, LimitState.LOW, None]


def test_without_deadband_a_value_hovering_at_the_limit_chatters():
    ev = LimitEvaluator(LimitAlarmConfig(high=70.0))
    assert run(ev, [(0, 70.0), (1, 69.9), (2, 70.0)]) == [LimitState.HIGH, None, LimitState.HIGH]


def test_on_delay_raises_only_after_the_value_stayed_beyond_the_limit():
    ev = LimitEvaluator(LimitAlarmConfig(high=70.0, high_high=80.0, on_delay_s=2.0))
    assert run(ev, [(0.0, 71.0), (1.0, 71.0), (1.9, 72.0)]) == [None, None, None]
    assert ev.pending is LimitState.HIGH
    assert ev.update(72.0, 2.0) is LimitState.HIGH
    # escalation to HighHigh waits its own delay; going back down is immediate
    assert run(ev, [(3.0, 85.0), (4.9, 85.0), (5.0, 85.0), (5.1, 60.0)]) == [
        LimitState.HIGH, LimitState.HIGH, LimitState.HIGH_HIGH, None]


def test_a_fleeting_excursion_shorter_than_the_on_delay_raises_nothing_and_resets_the_delay():
    ev = LimitEvaluator(LimitAlarmConfig(high=70.0, on_delay_s=2.0))
    assert run(ev, [(0.0, 71.0), (1.5, 60.0), (2.5, 71.0), (4.0, 71.0)]) == [None, None, None, None]
    assert ev.pending is LimitState.HIGH
    assert ev.update(71.0, 4.5) is LimitState.HIGH


def test_condition_states_and_retain():
    s = ConditionState()
    assert (s.active, s.acked, s.confirmed, s.retain) == (False, True, True, False)
    assert s.activate("hot", "High", 71.0)
    assert (s.active, s.acked, s.confirmed, s.retain) == (True, False, False, True)
    assert not s.activate("hot", "High", 72.0), "same limit state: no new event"
    with pytest.raises(ConditionRefused) as exc:
        s.confirm("too early", "op")
    assert exc.value.code == ua.StatusCodes.BadInvalidState
    s.acknowledge("seen", "op")
    assert s.acked and s.comment == "seen" and s.comment_user == "op"
    with pytest.raises(ConditionRefused) as exc:
        s.acknowledge("again", "op")
    assert exc.value.code == ua.StatusCodes.BadConditionBranchAlreadyAcked
    assert s.activate("hotter", "HighHigh", 81.0) and not s.acked, "a more severe state needs a new acknowledgement"
    s.acknowledge("seen", "op")
    assert s.deactivate("ok") and s.retain, "unconfirmed: retained after returning to normal"
    s.confirm("done", "op")
    assert not s.retain
    with pytest.raises(ConditionRefused) as exc:
        s.confirm("again", "op")
    assert exc.value.code == ua.StatusCodes.BadConditionBranchAlreadyConfirmed
