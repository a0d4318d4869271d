"""Supervisor: modes, bumpless transfer, rate limits, NaN / limit / failed / late solve guards, event log."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from controllers import (
    ControlMode,
    Fallback,
    ManipulatedInput,
    NmpcConfig,
    NonlinearMpc,
    OutputTracking,
    RecipeProfile,
    SetpointCommand,
    SetpointLimits,
    Supervisor,
    SupervisorConfig,
    SupervisorError,
)
from controllers.nmpc import NmpcResult, PredictedTrajectory
from process_models.engineering_units import UNITS_BY_CODE
from tests.controllers.models import thermal_tank

JACKET = "jacket_temperature"
LIMITS = SetpointLimits(JACKET, "K", 280.0, 360.0, max_rate_per_s=0.1)  # 1 K per 10 s scan
RECIPE = RecipeProfile.linear_ramp(JACKET, 0.0, 300.0, 1000.0, 330.0)


def _result(value: float, success: bool = True, solve_time_s: float = 0.01, status: str = "Solve_Succeeded"):
    empty = PredictedTrajectory(np.zeros(1), {}, {}, {})
    command = SetpointCommand(JACKET, value, "K", "test", ControlMode.MPC)
    return NmpcResult(time_s=0.0, commands=(command,), success=success, status=status, solve_time_s=solve_time_s,
                      iterations=5, objective=0.0, trajectory=empty)


def _supervisor(fallback: Fallback = Fallback.HOLD_LAST, deadline: float = 1.0, mode=ControlMode.MPC):
    config = SupervisorConfig(limits=(LIMITS,), fallback=fallback, recipe=RECIPE, solve_deadline_s=deadline)
    return Supervisor(config, {JACKET: 300.0}, mode=mode, start_time_s=0.0)


def _value(commands: tuple[SetpointCommand, ...]) -> float:
    (command,) = commands
    return command.value


def test_rate_limit_always_holds_even_for_a_good_mpc_request():
    sup = _supervisor()
    values = [_value(sup.update(10.0 * k, _result(340.0))) for k in range(1, 6)]
    assert values == pytest.approx([301.0, 302.0, 303.0, 304.0, 305.0])
    assert sup.events == []  # rate limiting is normal operation, not an event


def test_nan_request_is_never_emitted_and_is_logged(caplog):
    sup = _supervisor()
    sup.update(10.0, _result(302.0))
    with caplog.at_level(logging.WARNING, logger="controllers.supervisor"):
        commands = sup.update(20.0, _result(math.nan))
    assert _value(commands) == 301.0  # hold last
    assert "fallback hold_last" in commands[0].reason
    (event,) = sup.events
    assert event.reason == "not a finite number" and event.used == 301.0 and event.used_source == "hold_last"
    assert event.mode is ControlMode.MPC and math.isnan(event.proposed) and event.time_s == 20.0
    assert "not a finite number" in caplog.text


def test_out_of_limit_request_uses_recipe_fallback():
    sup = _supervisor(fallback=Fallback.RECIPE)
    commands = sup.update(10.0, _result(400.0))
    assert _value(commands) == pytest.approx(300.3)  # recipe at t=10 s, within the 1 K rate step
    assert "outside limits" in sup.events[0].reason and sup.events[0].used_source == "recipe"


def test_failed_missing_and_late_solves_fall_back():
    sup = _supervisor(deadline=0.05)
    assert _value(sup.update(10.0, _result(301.0, success=False, status="Infeasible_Problem_Detected"))) == 300.0
    assert _value(sup.update(20.0, None)) == 300.0
    assert _value(sup.update(30.0, _result(301.0, solve_time_s=0.2))) == 300.0
    reasons = [e.reason for e in sup.events]
    assert "Infeasible_Problem_Detected" in reasons[0]
    assert "missing or late" in reasons[1]
    assert "late" in reasons[2] and "deadline" in reasons[2]
    assert _value(sup.update(40.0, _result(301.0))) == 301.0  # healthy again


def test_bumpless_transfer_between_modes():
    sup = _supervisor(mode=ControlMode.MANUAL)
    assert _value(sup.update(10.0)) == 300.0  # manual holds the last value until the operator sets one
    sup.set_manual(JACKET, 320.0)
    assert _value(sup.update(20.0)) == 301.0
    sup.set_mode(ControlMode.AUTO, 20.0)
    # recipe at t=30 s is 300.9 K: reached from 301.0 without a jump
    assert _value(sup.update(30.0)) == pytest.approx(300.9)
    sup.set_mode(ControlMode.MPC, 30.0)
    assert _value(sup.update(40.0, _result(350.0))) == pytest.approx(301.9)
    sup.set_mode(ControlMode.MANUAL, 40.0)
    assert _value(sup.update(50.0)) == pytest.approx(301.9)  # entering MANUAL holds, no jump back to 320 K
    assert [e.reason.split(" (")[0] for e in sup.events] == ["mode manual -> auto", "mode auto -> mpc",
                                                             "mode mpc -> manual"]
    sup.set_manual(JACKET, 500.0)
    assert _value(sup.update(60.0)) == pytest.approx(301.9)  # out-of-limit operator entry refused
    assert "outside limits" in sup.events[-1].reason


def test_configuration_errors():
    with pytest.raises(SupervisorError, match="outside"):
        Supervisor(SupervisorConfig(limits=(LIMITS,)), {JACKET: 500.0})
    with pytest.raises(SupervisorError, match="recipe"):
        SupervisorConfig(limits=(LIMITS,), fallback=Fallback.RECIPE)
    with pytest.raises(SupervisorError, match="coolant"):
        Supervisor(SupervisorConfig(limits=(LIMITS,)), {JACKET: 300.0, "coolant": 1.0})
    with pytest.raises(SupervisorError, match="increasing"):
        RecipeProfile({JACKET: ((0.0, 300.0), (0.0, 310.0))})
    with pytest.raises(SupervisorError, match="AUTO"):
        Supervisor(SupervisorConfig(limits=(LIMITS,)), {JACKET: 300.0}, mode=ControlMode.AUTO)


def test_real_solver_forced_to_fail_never_emits_out_of_limit_values():
    """max_iter=0 and a 1 microsecond time budget: IPOPT fails; the supervisor follows the recipe instead. Every step
    is a cold solve: IPOPT checks its budget after an iteration, so warm-started from the previous step's
    unfinished iterate, a few 1 µs steps could add up to a converged solve (it happened under load). The budget is
    CPU and wall time: IPOPT reads process CPU time, which advances in scheduler ticks of milliseconds here, so a
    whole solve of this small NLP could fall between two ticks and converge within a 1 µs CPU budget (it happened
    once in a loaded suite run); the wall clock resolves microseconds."""
    model = thermal_tank()
    for ipopt_limits in ({"max_iter": 0}, {"max_cpu_time_s": 1e-6, "ipopt_options": {"max_wall_time": 1e-6}}):
        config = NmpcConfig(sample_period_s=10.0, horizon=10,
                            inputs=(ManipulatedInput(JACKET, 280.0, 360.0, max_move=2.0),),
                            tracking=(OutputTracking("temperature_celsius"),), **ipopt_limits)
        mpc = NonlinearMpc(model, config)
        sup = _supervisor(fallback=Fallback.RECIPE)
        emitted = []
        for k in range(5):
            mpc.reset()
            result = mpc.step(10.0 * k, {"temperature": 300.0}, {JACKET: sup.last_written[JACKET]},
                              {"temperature_celsius": 80.0}, disturbances={"ambient_temperature": 293.15})
            assert not result.success
            emitted.append(_value(sup.update(10.0 * (k + 1), result)))
        assert emitted == pytest.approx([RECIPE.value(JACKET, 10.0 * (k + 1)) for k in range(5)])
        assert all(LIMITS.lower <= v <= LIMITS.upper for v in emitted)
        assert len(sup.events) == 5 and all(e.used_source == "recipe" for e in sup.events)


def test_logs_events_and_reasons_show_the_display_unit_while_values_stay_si(caplog):
    celsius = UNITS_BY_CODE["CEL"]
    config = SupervisorConfig(limits=(LIMITS,), fallback=Fallback.HOLD_LAST, recipe=RECIPE, solve_deadline_s=1.0)
    sup = Supervisor(config, {JACKET: 300.0}, mode=ControlMode.MPC, display_units={JACKET: celsius})
    with caplog.at_level(logging.WARNING, logger="controllers.supervisor"):
        commands = sup.update(10.0, _result(400.0))  # 400 K: outside [280, 360] K
    (event,) = sup.events
    assert event.proposed == 400.0 and event.used == 300.0  # SI, as the model and the NMPC use them
    text = caplog.text
    assert "outside limits [6.85, 86.85] °C" in text and "proposed 126.9 °C" in text and "used 26.85 °C" in text
    assert " K" not in text
    assert sup.describe(event) == ("jacket_temperature: outside limits [6.85, 86.85] °C; proposed 126.9 °C, "
                                   "used 26.85 °C (hold_last)")
    assert "outside limits [6.85, 86.85] °C" in commands[0].reason
    rate_limited = sup.update(20.0, _result(340.0))[0]
    assert rate_limited.value == pytest.approx(301.0) and rate_limited.unit == "K"
    assert rate_limited.reason.endswith("(rate-limited to 0.1 °C/s)")
    with pytest.raises(SupervisorError, match="display_units for unknown inputs"):
        Supervisor(config, {JACKET: 300.0}, display_units={"agitator_speed": celsius})
