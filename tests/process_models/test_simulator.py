"""The simulator integrates a declared model exactly as its inputs are specified, and refuses bad requests clearly."""

from __future__ import annotations

import csv

import casadi as ca
import numpy as np
import pytest

from process_models.declaration import Equations, Input, ModelDeclaration, Parameter, Variable, compile_model
from process_models.simulator import (
    InputProgram,
    Phase,
    SimulationCase,
    SimulationError,
    _affine_input_segments,
    _prepare,
    _ProgressBar,
    sensitivities,
    simulate,
    simulate_batch,
    simulate_phases,
    trajectory_sensitivity,
)

TAU = 120.0


def _first_order() -> ModelDeclaration:
    return ModelDeclaration(
        name="first_order_tank",
        description="T' = (T_j - T)/tau",
        states=(Variable("temperature", "K", "liquid temperature"),),
        inputs=(Input("jacket_temperature", "K", "jacket temperature"),),
        parameters=(Parameter("time_constant", "s", TAU, "thermal time constant", lower=1.0),),
        outputs=(Variable("temperature_celsius", "degC", "liquid temperature"),),
        equations=lambda s: Equations(
            derivatives={"temperature": (s.u["jacket_temperature"] - s.x["temperature"]) / s.p["time_constant"]},
            outputs={"temperature_celsius": s.x["temperature"] - 273.15},
        ),
    )


@pytest.fixture(scope="module")
def tank():
    return compile_model(_first_order())


@pytest.fixture(scope="module")
def integrator_model():
    """x' = u (plus a time-driven state z' = sin t and a 2-vector decaying at rate k)."""
    decl = ModelDeclaration(
        name="integrators",
        description="pure integrators",
        states=(Variable("x", "kg", "integral of u"), Variable("z", "1", "integral of sin t"),
                Variable("v", "1", "decaying vector", size=2)),
        inputs=(Input("u", "kg/s", "rate"),),
        parameters=(Parameter("k", "1/s", 0.1, "decay rate"),),
        outputs=(),
        equations=lambda s: Equations(derivatives={"x": s.u["u"], "z": ca.sin(s.t), "v": -s.p["k"] * s.x["v"]}),
    )
    return compile_model(decl)


def _step_response(t, t0, x0, u, tau=TAU):
    return u + (x0 - u) * np.exp(-(t - t0) / tau)


def test_step_response_matches_the_analytic_solution(tank):
    t = np.linspace(0.0, 600.0, 61)
    res = simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0})
    assert res.state("temperature") == pytest.approx(_step_response(t, 0.0, 300.0, 350.0), rel=1e-6)
    assert res.output("temperature_celsius") == pytest.approx(res.state("temperature") - 273.15, rel=1e-12)
    assert res.input("jacket_temperature") == pytest.approx(np.full(t.size, 350.0))
    assert res.times_s == pytest.approx(t)


def test_zoh_program_switch_inside_an_output_interval_is_applied_at_its_time(tank):
    t = np.linspace(0.0, 600.0, 7)   # switch at 55 s lies inside the first 100 s interval
    program = InputProgram((0.0, 55.0), (350.0, 300.0))
    res = simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": program})
    t_switch = _step_response(55.0, 0.0, 300.0, 350.0)
    expected = np.where(t <= 55.0, _step_response(t, 0.0, 300.0, 350.0), _step_response(t, 55.0, t_switch, 300.0))
    assert res.state("temperature") == pytest.approx(expected, rel=1e-6)
    assert res.input("jacket_temperature")[:2] == pytest.approx([350.0, 300.0])


def test_linear_program_is_integrated_exactly(integrator_model):
    ramp = InputProgram((0.0, 10.0, 30.0), (0.0, 2.0, 0.0), "linear")
    t = np.array([0.0, 7.0, 25.0, 40.0])
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 1.0}, t, {"u": ramp})
    # integral of the hat function (rises 0 -> 2 over 0..10 s, falls to 0 at 30 s)
    expected = [0.0, 0.1 * 7.0**2, 10.0 + 2.0 * 15.0 - 0.05 * 15.0**2, 30.0]
    assert res.state("x") == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert res.input("u") == pytest.approx([0.0, 1.4, 0.5, 0.0])


def _ramp_response(t, x0, a, b, tau=TAU):
    """Closed form of x' = (a + b t - x) / tau, x(0) = x0."""
    return a + b * (t - tau) + (x0 - a + b * tau) * np.exp(-t / tau)


def test_linear_ramp_integrates_to_the_quadratic_over_one_long_run(integrator_model):
    ramp = InputProgram((0.0, 7200.0), (1.0, 5.0), "linear")   # u = 1 + t/1800
    t = np.arange(0.0, 7201.0, 60.0)
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 0.0}, t, {"u": ramp})
    assert res.state("x") == pytest.approx(t + t**2 / 3600.0, rel=1e-8, abs=1e-8)
    assert res.input("u") == pytest.approx(1.0 + t / 1800.0, rel=1e-12)


def test_linear_ramp_drives_a_first_order_lag_exactly(tank):
    """Exact to a few times rtol (1e-8); holding the ramp at interval midpoints is off by 1e-3 (relative) here."""
    a, b = 350.0, -0.05   # jacket 350 K falling 0.05 K/s
    ramp = InputProgram((0.0, 600.0), (a, a + b * 600.0), "linear")
    t = np.linspace(0.0, 600.0, 7)
    expected = _ramp_response(t, 300.0, a, b)
    for integrator, rel in (("cvodes", 1e-7), ("idas", 1e-7), ("rk", 1e-7), ("collocation", 1e-7)):
        res = simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": ramp}, integrator=integrator)
        assert res.state("temperature") == pytest.approx(expected, rel=rel), integrator
    sens = trajectory_sensitivity(tank, {"temperature": 300.0}, t, {"jacket_temperature": ramp}, None,
                                  ["time_constant"])
    assert sens.result.state("temperature") == pytest.approx(expected, rel=1e-7)


def test_linear_program_kink_inside_an_output_interval_lands_at_its_time(tank):
    a, b, t_kink = 350.0, -0.2, 55.0   # ramp 350 -> 339 K over 0..55 s, then held
    ramp = InputProgram((0.0, t_kink), (a, a + b * t_kink), "linear")
    t = np.linspace(0.0, 600.0, 7)
    res = simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": ramp})
    at_kink = _ramp_response(t_kink, 300.0, a, b)
    after = _step_response(t, t_kink, at_kink, a + b * t_kink)
    expected = np.where(t <= t_kink, _ramp_response(t, 300.0, a, b), after)
    assert res.state("temperature") == pytest.approx(expected, rel=1e-7)   # midpoint hold: 3e-4 off


def test_several_zoh_steps_inside_one_output_interval_land_at_their_times(integrator_model):
    steps = InputProgram.steps((0.0, 1.0), (12.5, 3.0), (31.25, -2.0), (40.0, 0.5))
    t = np.array([0.0, 50.0, 100.0])
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 0.0}, t, {"u": steps})
    expected_50 = 1.0 * 12.5 + 3.0 * 18.75 - 2.0 * 8.75 + 0.5 * 10.0
    assert res.state("x") == pytest.approx([0.0, expected_50, expected_50 + 25.0], rel=1e-10)
    assert res.input("u") == pytest.approx([1.0, 0.5, 0.5])
    # a knot within rounding of an output time steps there, on whichever side of it it lies
    for knot in (50.0 - 1e-9, 50.0 + 1e-9):
        step = InputProgram.steps((0.0, 1.0), (knot, 2.0))
        late = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 0.0}, t, {"u": step})
        assert late.state("x") == pytest.approx([0.0, 50.0, 150.0], rel=1e-9)


def test_solver_restarts_only_at_program_knots(integrator_model):
    x0 = {"x": 0.0, "z": 0.0, "v": 0.0}
    t = np.arange(0.0, 7201.0, 60.0)   # 120 output intervals

    def runs(u):
        return _affine_input_segments(_prepare(integrator_model, x0, t, {"u": u}, None).segment_keys)

    assert runs(InputProgram((0.0, 7200.0), (1.0, 5.0), "linear")) == [(0, 120)]
    assert runs(InputProgram((0.0, 3000.0, 7200.0), (1.0, 5.0, 0.0), "linear")) == [(0, 50), (50, 120)]
    assert runs(InputProgram((-100.0, 7300.0), (1.0, 5.0), "linear")) == [(0, 120)]
    # a knot between output times becomes a grid point (121 intervals) and the only restart
    assert runs(InputProgram.steps((0.0, 1.0), (1000.0, 2.0))) == [(0, 17), (17, 121)]
    assert len(runs(lambda ts: ts)) == 120   # a callable is held per interval


def test_time_dependent_rhs_and_vector_state(integrator_model):
    t = np.linspace(0.0, 20.0, 41)
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": [1.0, 2.0]}, t, {"u": 1.0}, {"k": 0.2})
    assert res.state("z") == pytest.approx(1.0 - np.cos(t), abs=1e-5)
    assert res.state("v").shape == (2, t.size)
    assert res.state("v")[1] == pytest.approx(2.0 * np.exp(-0.2 * t), rel=1e-6)
    assert res.state("x") == pytest.approx(t, rel=1e-10)


def test_callable_input_is_sampled_at_interval_midpoints(integrator_model):
    t = np.linspace(0.0, 10.0, 101)
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 0.0}, t, {"u": lambda ts: 2.0 * ts})
    assert res.state("x") == pytest.approx(t**2, rel=1e-8, abs=1e-10)   # midpoint rule is exact for a ramp
    quad = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": 0.0}, [0.0, 2.0], {"u": lambda ts: ts**2})
    assert quad.state("x")[-1] == pytest.approx(2.0 * 1.0**2, rel=1e-10)   # held at t = 1 s, not the exact 8/3


def test_missing_and_unknown_names_are_reported(tank):
    t = [0.0, 1.0]
    with pytest.raises(SimulationError, match=r"missing initial state\(s\) \['temperature'\]"):
        simulate(tank, {}, t, {"jacket_temperature": 300.0})
    with pytest.raises(SimulationError, match=r"missing input\(s\) \['jacket_temperature'\]"):
        simulate(tank, {"temperature": 300.0}, t, {})
    with pytest.raises(SimulationError, match=r"unknown input\(s\) \['jacket_temp'\]"):
        simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": 300.0, "jacket_temp": 1.0})
    with pytest.raises(SimulationError, match="unknown parameter 'tau'"):
        simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": 300.0}, {"tau": 1.0})


def test_bad_time_grids_and_models_are_refused(tank):
    with pytest.raises(SimulationError, match="strictly increasing"):
        simulate(tank, {"temperature": 300.0}, [0.0, 2.0, 2.0], {"jacket_temperature": 300.0})
    with pytest.raises(SimulationError, match="at least 2 times"):
        simulate(tank, {"temperature": 300.0}, [0.0], {"jacket_temperature": 300.0})
    with pytest.raises(TypeError, match="compile_model"):
        simulate(_first_order(), {"temperature": 300.0}, [0.0, 1.0], {"jacket_temperature": 300.0})
    with pytest.raises(SimulationError, match="strictly increasing"):
        InputProgram((0.0, 0.0), (1.0, 2.0))
    with pytest.raises(SimulationError, match="not finite"):
        simulate(tank, {"temperature": 300.0}, [0.0, 1.0], {"jacket_temperature": float("nan")})


def test_integration_failure_names_the_span():
    blowup = compile_model(ModelDeclaration(
        name="blowup", description="x' = x^2 blows up at t = 1/x0", states=(Variable("x", "1", "x"),), inputs=(),
        parameters=(), outputs=(), equations=lambda s: Equations(derivatives={"x": s.x["x"] ** 2}),
    ))
    with pytest.raises(SimulationError, match="integration failed between t=0 s and t=2 s"):
        simulate(blowup, {"x": 1.0}, [0.0, 2.0], {})


def test_sensitivities_match_the_analytic_derivative(tank):
    t = np.linspace(0.0, 600.0, 31)
    sens = sensitivities(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0}, None, ["time_constant"])
    expected = -50.0 * np.exp(-t / TAU) * t / TAU**2      # d/d tau of 350 - 50 exp(-t/tau)
    assert sens.shape == (t.size, 1, 1)
    assert sens[:, 0, 0] == pytest.approx(expected, abs=1e-5 * np.max(np.abs(expected)))
    full = trajectory_sensitivity(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0}, None,
                                  ["time_constant"])
    assert full.d_outputs[:, 0, 0] == pytest.approx(sens[:, 0, 0], rel=1e-12)
    with pytest.raises(SimulationError, match="expected parameter names"):
        sensitivities(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0}, None, ["tau"])


def test_phases_chain_like_one_program(tank):
    phases = [Phase(300.0, {"jacket_temperature": 350.0}, "heat"), (900.0, {"jacket_temperature": 290.0})]
    chained = simulate_phases(tank, {"temperature": 300.0}, phases, output_interval_s=50.0)
    t = np.arange(0.0, 901.0, 50.0)
    single = simulate(tank, {"temperature": 300.0}, t,
                      {"jacket_temperature": InputProgram((0.0, 300.0), (350.0, 290.0))})
    assert chained.times_s == pytest.approx(t)
    assert chained.state("temperature") == pytest.approx(single.state("temperature"), rel=1e-6)
    with pytest.raises(SimulationError, match="phase 1 'back'"):
        simulate_phases(tank, {"temperature": 300.0}, [phases[0], Phase(100.0, {"jacket_temperature": 1.0}, "back")],
                        10.0)


def test_batch_runs_each_case_with_its_parameters(tank):
    t = np.linspace(0.0, 300.0, 11)
    cases = [SimulationCase({"temperature": 300.0}, t, {"jacket_temperature": 350.0}, {"time_constant": tau}, f"{tau}")
             for tau in (60.0, 240.0)]
    fast, slow = simulate_batch(tank, cases)
    assert fast.state("temperature") == pytest.approx(_step_response(t, 0, 300.0, 350.0, 60.0), rel=1e-6)
    assert slow.state("temperature") == pytest.approx(_step_response(t, 0, 300.0, 350.0, 240.0), rel=1e-6)
    bad = SimulationCase({"temperature": 300.0}, t, {}, None, "no inputs")
    with pytest.raises(SimulationError, match="case 1 'no inputs'"):
        simulate_batch(tank, [cases[0], bad])


def test_csv_names_every_column_with_its_unit(integrator_model, tmp_path):
    t = np.linspace(0.0, 2.0, 3)
    res = simulate(integrator_model, {"x": 0.0, "z": 0.0, "v": [1.0, 2.0]}, t, {"u": 1.5})
    path = tmp_path / "run.csv"
    res.to_csv(path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["time [s]", "x [kg]", "z [1]", "v[0] [1]", "v[1] [1]", "u [kg/s]"]
    assert len(rows) == 4
    assert float(rows[-1][1]) == pytest.approx(3.0)


def test_final_state_restarts_a_run(tank):
    first = simulate(tank, {"temperature": 300.0}, [0.0, 100.0], {"jacket_temperature": 350.0})
    second = simulate(tank, first.final_state(), [100.0, 200.0], {"jacket_temperature": 350.0})
    whole = simulate(tank, {"temperature": 300.0}, [0.0, 100.0, 200.0], {"jacket_temperature": 350.0})
    assert second.state("temperature")[-1] == pytest.approx(whole.state("temperature")[-1], rel=1e-7)


def test_progress_bar_writes_to_stderr_once_a_run_is_slow(capsys):
    bar = _ProgressBar("tank", 100.0, started=0.0, delay_s=0.0)
    bar.update(50.0)
    bar.close()
    err = capsys.readouterr().err
    assert "tank: [" in err and "50.0%" in err and err.endswith("\n")
    quiet = _ProgressBar("tank", 100.0, started=1e12, delay_s=0.5)   # "started in the future": never shown
    quiet.update(50.0)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_cached_integrators_do_not_keep_a_model_alive():
    import gc
    import weakref

    model = compile_model(_first_order())
    simulate(model, {"temperature": 300.0}, [0.0, 10.0], {"jacket_temperature": 350.0})
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize(("integrator", "rel"), [("idas", 1e-6), ("rk", 1e-6), ("collocation", 1e-5)])
def test_other_integrators_agree(tank, integrator, rel):
    t = np.linspace(0.0, 600.0, 61)
    res = simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0}, integrator=integrator)
    assert res.state("temperature") == pytest.approx(_step_response(t, 0.0, 300.0, 350.0), rel=rel)
    with pytest.raises(SimulationError, match="integrator must be one of"):
        simulate(tank, {"temperature": 300.0}, t, {"jacket_temperature": 350.0}, integrator="euler")
