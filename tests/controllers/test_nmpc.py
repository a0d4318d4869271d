"""NMPC on small declared models: tracking, bounds, rate limits, soft constraints, shrinking horizon, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controllers import (
    ControlMode,
    Discretization,
    HorizonMode,
    ManipulatedInput,
    NmpcConfig,
    NmpcConfigError,
    NonlinearMpc,
    OutputConstraint,
    OutputTracking,
    TerminalTarget,
)
from controllers.nmpc import deferred_nlp_build
from process_models.simulator import simulate
from tests.controllers.models import thermal_tank

SAMPLE_S = 10.0
AMBIENT = {"ambient_temperature": 293.15}


def _tank_config(**overrides) -> NmpcConfig:
    base = dict(sample_period_s=SAMPLE_S, horizon=15,
                inputs=(ManipulatedInput("jacket_temperature", 280.0, 360.0, max_move=2.0, move_weight=0.01),),
                tracking=(OutputTracking("temperature_celsius", 1.0, 1.0),))
    base.update(overrides)
    return NmpcConfig(**base)


def _closed_loop(mpc: NonlinearMpc, model, steps: int, reference: float, start_k: float = 293.15):
    x, u = start_k, 300.0
    results = []
    for k in range(steps):
        result = mpc.step(k * SAMPLE_S, {"temperature": x}, {"jacket_temperature": u},
                          {"temperature_celsius": reference}, disturbances=AMBIENT)
        results.append(result)
        assert result.success, result.status
        u = result.commands[0].value
        sim = simulate(model, {"temperature": x}, [k * SAMPLE_S, (k + 1) * SAMPLE_S],
                       {"jacket_temperature": u, **AMBIENT})
        x = float(sim.states[0, -1])
    return results, x


def test_tracks_setpoint_within_bounds_and_rate_limits():
    model = thermal_tank()
    mpc = NonlinearMpc(model, _tank_config())
    results, final_k = _closed_loop(mpc, model, 60, reference=45.0)
    assert final_k - 273.15 == pytest.approx(45.0, abs=0.3)
    applied = [300.0] + [r.commands[0].value for r in results]
    moves = np.diff(applied)
    assert np.all(np.abs(moves) <= 2.0 + 1e-9)  # max_move per sample period
    assert all(280.0 <= v <= 360.0 for v in applied)
    first = results[0]
    assert first.commands[0].name == "jacket_temperature" and first.commands[0].unit == "K"
    assert first.commands[0].source_mode is ControlMode.MPC
    assert first.trajectory.times_s.shape == (16,)
    assert first.trajectory.inputs["jacket_temperature"].shape == (15,)
    assert first.trajectory.outputs["temperature_celsius"].shape == (16,)
    planned_moves = np.diff(np.concatenate([[300.0], first.trajectory.inputs["jacket_temperature"]]))
    assert np.all(np.abs(planned_moves) <= 2.0 + 1e-6)
    assert first.iterations > 0 and first.solve_time_s > 0
    # warm start: a later step from the shifted previous solution needs fewer iterations than the cold first one
    assert min(r.iterations for r in results[1:10]) < first.iterations


def test_soft_output_constraint_holds_the_band_instead_of_the_reference():
    model = thermal_tank()
    config = _tank_config(constraints=(OutputConstraint("temperature_celsius", upper=40.0, weight=1e4),))
    mpc = NonlinearMpc(model, config)
    results, final_k = _closed_loop(mpc, model, 60, reference=45.0)
    assert final_k - 273.15 < 40.2  # the band wins over tracking (soft, so a small violation is allowed)
    assert final_k - 273.15 > 39.0
    assert all(r.success for r in results)


def test_infeasible_hard_request_is_still_solved_through_the_slack():
    model = thermal_tank()
    # band below what the jacket can reach within one move: only the slack makes it feasible
    config = _tank_config(constraints=(OutputConstraint("temperature_celsius", upper=0.0, weight=10.0),))
    result = NonlinearMpc(model, config).step(0.0, {"temperature": 293.15}, {"jacket_temperature": 300.0},
                                              {"temperature_celsius": 20.0}, disturbances=AMBIENT)
    assert result.success
    assert result.commands[0].value == pytest.approx(298.0, abs=1e-6)  # cools as fast as the rate limit allows


def test_shrinking_horizon_hits_terminal_target_at_batch_end():
    model = thermal_tank()
    batch_end = 300.0
    config = NmpcConfig(sample_period_s=SAMPLE_S, horizon=8, horizon_mode=HorizonMode.SHRINKING,
                        inputs=(ManipulatedInput("jacket_temperature", 280.0, 360.0, max_move=3.0,
                                                 move_weight=0.1),),
                        terminal_targets=(TerminalTarget("temperature_celsius", 100.0, 1.0),))
    mpc = NonlinearMpc(model, config)
    dt = mpc.interval_lengths(0.0, batch_end)
    assert dt[0] == SAMPLE_S and dt.sum() == pytest.approx(batch_end)
    assert mpc.interval_lengths(295.0, batch_end).sum() == pytest.approx(5.0)
    x, u = 293.15, 300.0
    for k in range(int(batch_end / SAMPLE_S)):
        result = mpc.step(k * SAMPLE_S, {"temperature": x}, {"jacket_temperature": u},
                          {"temperature_celsius": 35.0}, disturbances=AMBIENT, batch_end_s=batch_end)
        assert result.success, result.status
        assert result.trajectory.times_s[-1] == pytest.approx(batch_end)
        u = result.commands[0].value
        x = float(simulate(model, {"temperature": x}, [k * SAMPLE_S, (k + 1) * SAMPLE_S],
                           {"jacket_temperature": u, **AMBIENT}).states[0, -1])
    assert x - 273.15 == pytest.approx(35.0, abs=0.1)
    with pytest.raises(NmpcConfigError, match="batch_end_s"):
        mpc.step(0.0, {"temperature": x}, {"jacket_temperature": u}, {"temperature_celsius": 35.0},
                 disturbances=AMBIENT)


def test_solver_forced_to_fail_reports_failure():
    model = thermal_tank()
    mpc = NonlinearMpc(model, _tank_config(max_iter=0))
    result = mpc.step(0.0, {"temperature": 293.15}, {"jacket_temperature": 300.0}, {"temperature_celsius": 45.0},
                      disturbances=AMBIENT)
    assert not result.success
    assert result.status == "Maximum_Iterations_Exceeded"
    assert result.iterations == 0


def test_configuration_errors_name_the_offending_key():
    model = thermal_tank()
    with pytest.raises(NmpcConfigError, match="coolant_flow"):
        NonlinearMpc(model, _tank_config(inputs=(ManipulatedInput("coolant_flow", 0.0, 1.0),)))
    with pytest.raises(NmpcConfigError, match="ambient_temperature"):
        NonlinearMpc(model, _tank_config(inputs=(ManipulatedInput("ambient_temperature", 280.0, 300.0),)))
    with pytest.raises(NmpcConfigError, match="exceed the declared"):
        NonlinearMpc(model, _tank_config(inputs=(ManipulatedInput("jacket_temperature", 200.0, 300.0),)))
    with pytest.raises(NmpcConfigError, match="level"):
        NonlinearMpc(model, _tank_config(tracking=(OutputTracking("level"),)))
    with pytest.raises(NmpcConfigError, match="trailing comma"):
        _tank_config(tracking=OutputTracking("temperature_celsius"))
    mpc = NonlinearMpc(model, _tank_config())
    with pytest.raises(NmpcConfigError, match="temperature_celsius"):
        mpc.step(0.0, {"temperature": 293.15}, {"jacket_temperature": 300.0}, {}, disturbances=AMBIENT)
    with pytest.raises(NmpcConfigError, match="ambient_temperature"):
        mpc.step(0.0, {"temperature": 293.15}, {"jacket_temperature": 300.0}, {"temperature_celsius": 40.0})
    with pytest.raises(NmpcConfigError, match="non-finite"):
        mpc.step(0.0, {"temperature": math.nan}, {"jacket_temperature": 300.0}, {"temperature_celsius": 40.0},
                 disturbances=AMBIENT)


def test_a_deferred_build_validates_at_once_and_builds_on_demand():
    """Inside deferred_nlp_build (``linetwin fit``, ``linetwin forecast``, the stepped loop's plans) the constructor
    still refuses a bad configuration but builds no NLP; build() (or the first step) builds it, once."""
    model = thermal_tank()
    with deferred_nlp_build():
        with pytest.raises(NmpcConfigError, match="coolant_flow"):
            NonlinearMpc(model, _tank_config(inputs=(ManipulatedInput("coolant_flow", 0.0, 1.0),)))
        deferred = NonlinearMpc(model, _tank_config())
    assert not hasattr(deferred, "_solvers")  # nothing built yet
    deferred.build()
    solvers = deferred._solvers
    deferred.build()
    assert deferred._solvers is solvers and deferred.codegen == []  # built once
    assert hasattr(NonlinearMpc(model, _tank_config()), "_solvers")  # outside the context: built in the constructor


def test_direct_collocation_tracks_like_multiple_shooting():
    model = thermal_tank()
    mpc = NonlinearMpc(model, _tank_config(discretization=Discretization.COLLOCATION, collocation_degree=3))
    results, final_k = _closed_loop(mpc, model, 60, reference=45.0)
    assert final_k - 273.15 == pytest.approx(45.0, abs=0.3)
    shooting = NonlinearMpc(model, _tank_config(substeps=4)).step(
        0.0, {"temperature": 293.15}, {"jacket_temperature": 300.0}, {"temperature_celsius": 45.0},
        disturbances=AMBIENT)
    np.testing.assert_allclose(results[0].trajectory.outputs["temperature_celsius"],
                               shooting.trajectory.outputs["temperature_celsius"], atol=0.05)
