"""NMPC solver options: every solver reaches IPOPT's optimum on the shipped problems, RTI converges to it, code
generation is cached on disk and falls back to the interpreter without a compiler."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from controllers import (
    HorizonMode,
    ManipulatedInput,
    NmpcConfig,
    NonlinearMpc,
    OutputTracking,
    SolverMethod,
    SolverOptions,
)
from controllers.crystallization.control_options import SOLVER_METHODS, parse_options
from controllers.crystallization.objective import CrystallizationObjective, crystallizer_nmpc_config
from process_models.crystallization.crystallizer import crystallizer_moments_model, moments_initial_state, seed_moments
from process_models.crystallization.kinetics import solubility
from process_models.crystallization.params import parameter_set
from process_models.declaration import compile_model
from process_models.simulator import simulate
from tests.controllers.models import thermal_tank

SAMPLE_S = 120.0
START_K = 313.15
JACKET = "jacket_temperature"
BATCH_END_S = 7200.0
TARGET_D43_M = 400e-6
OBJECTIVE_RTOL = 1e-6
INPUT_ATOL_K = 1e-3
"""inputs agree to 1 mK: far below a jacket controller's resolution, above the solvers' tolerances"""


@pytest.fixture(scope="module")
def crystallizer():
    model = compile_model(crystallizer_moments_model())
    kdp = parameter_set("kdp_water").values
    c0 = float(solubility(START_K, kdp))
    x0 = moments_initial_state(c0, seed_moments(0.01 * c0, 150e-6, 15e-6, kdp["crystal_density"]), START_K)
    return model, x0


def _batch_config(x0: dict[str, float], horizon: int = 10) -> NmpcConfig:
    """The control plan's batch problem (shrinking horizon, terminal d43, fines, soft CV, rate limit)."""
    objective = CrystallizationObjective(target_d43_m=TARGET_D43_M, seed_count_per_kg=x0["mu0"], max_cv=0.94)
    config = crystallizer_nmpc_config(objective, SAMPLE_S, horizon, 283.15, 313.15, max_move_k=1.0,
                                      max_cpu_time_s=10.0, state_scales={k: abs(v) for k, v in x0.items() if v})
    return replace(config, tolerance=1e-8)


def _tracking_config(x0: dict[str, float], horizon: int = 5) -> NmpcConfig:
    """The benchmark's shared problem: supersaturation tracking on a receding horizon."""
    return NmpcConfig(sample_period_s=SAMPLE_S, horizon=horizon, horizon_mode=HorizonMode.RECEDING,
                      inputs=(ManipulatedInput(JACKET, 283.15, 313.15, move_weight=0.01),),
                      tracking=(OutputTracking("supersaturation", 1.0, 0.001),),
                      state_scales={name: max(abs(v), 1.0) for name, v in x0.items()}, max_cpu_time_s=10.0,
                      tolerance=1e-8)


def _two_steps(model, x0, config, references, batch_end_s):
    """Two closed-loop steps (the second warm-started); returns the second step's result."""
    mpc = NonlinearMpc(model, config)
    first = mpc.step(0.0, x0, {JACKET: START_K}, references, batch_end_s=batch_end_s)
    assert first.success, first.status
    u = first.commands[0].value
    sim = simulate(model, x0, [0.0, SAMPLE_S], {JACKET: u})
    x1 = {name: float(sim.states[sl, -1][0]) for name, sl in model.state_slices.items()}
    return mpc.step(SAMPLE_S, x1, {JACKET: u}, references, batch_end_s=batch_end_s)


PROBLEMS = {
    "batch": (_batch_config, {"d43": TARGET_D43_M}, BATCH_END_S),
    "tracking": (_tracking_config, {"supersaturation": 0.015}, None),
}


_SQP_GAP = pytest.mark.xfail(strict=True, reason="casadi sqpmethod's line search fails from the warm start on this "
                             "problem (steps into NaN regions of the moments model, or stalls); the step is then "
                             "IPOPT's cold retry (docs/control.md, 'Solvers')")
SOLVER_CASES = [
    pytest.param(SolverOptions("fatrop"), "batch", id="fatrop-batch"),
    pytest.param(SolverOptions("fatrop"), "tracking", id="fatrop-tracking"),
    pytest.param(SolverOptions("sqp_hpipm", hessian="gauss_newton"), "tracking", id="sqp_hpipm+gn-tracking"),
    pytest.param(SolverOptions("sqp_hpipm", hessian="gauss_newton"), "batch", id="sqp_hpipm+gn-batch",
                 marks=_SQP_GAP),
    pytest.param(SolverOptions("sqp_hpipm"), "tracking", id="sqp_hpipm-tracking", marks=_SQP_GAP),
    pytest.param(SolverOptions("sqp_hpipm"), "batch", id="sqp_hpipm-batch", marks=_SQP_GAP),
    pytest.param(SolverOptions("sqp_qrqp"), "tracking", id="sqp_qrqp-tracking", marks=_SQP_GAP),
]


@pytest.mark.parametrize(("solver", "problem"), SOLVER_CASES)
def test_every_solver_reaches_the_ipopt_optimum(crystallizer, problem, solver):
    model, x0 = crystallizer
    make_config, references, batch_end_s = PROBLEMS[problem]
    config = make_config(x0)
    reference = _two_steps(model, x0, config, references, batch_end_s)
    result = _two_steps(model, x0, replace(config, solver=solver), references, batch_end_s)
    assert reference.success and result.success, (reference.status, result.status)
    assert "cold retry" not in result.status  # solved by the solver under test, warm, not by IPOPT's retry
    assert result.objective == pytest.approx(reference.objective, rel=OBJECTIVE_RTOL)
    np.testing.assert_allclose(result.trajectory.inputs[JACKET], reference.trajectory.inputs[JACKET],
                               atol=INPUT_ATOL_K)


def test_the_warm_solver_takes_the_cold_solvers_derivatives_and_steps_the_same(crystallizer, monkeypatch):
    """IPOPT's warm solver of the same NLP is built on the cold one's derivative functions (no second algorithmic
    differentiation): the warm-started second step is the one a warm solver that differentiates the NLP itself
    takes, iterate for iterate."""
    import controllers.nmpc_solvers as nmpc_solvers

    model, x0 = crystallizer
    config = _batch_config(x0)
    taken: list[dict] = []
    derivatives_of = nmpc_solvers._derivatives_of

    def recorded(built, solver):
        taken.append(derivatives_of(built, solver))
        return taken[-1]

    monkeypatch.setattr(nmpc_solvers, "_derivatives_of", recorded)
    shared = _two_steps(model, x0, config, {"d43": TARGET_D43_M}, BATCH_END_S)
    assert [sorted(t) for t in taken] == [["grad_f", "hess_lag", "jac_g"]]
    monkeypatch.setattr(nmpc_solvers, "_derivatives_of", lambda built, solver: {})
    own = _two_steps(model, x0, config, {"d43": TARGET_D43_M}, BATCH_END_S)
    assert shared.success and own.success, (shared.status, own.status)
    assert shared.iterations == own.iterations and shared.objective == own.objective
    np.testing.assert_array_equal(shared.trajectory.inputs[JACKET], own.trajectory.inputs[JACKET])


def test_an_nmpc_built_again_takes_the_shared_derivatives_and_steps_bit_for_bit(crystallizer, monkeypatch):
    """Derivatives shared in a process (SHARED_DERIVATIVES): a second NMPC of the same NLP differentiates nothing —
    its cold solver takes the first one's derivative functions — and its two steps are the first NMPC's, bit for
    bit; an NLP of another horizon is differentiated on its own; the cache keeps the last ``capacity`` NLPs."""
    import controllers.nmpc_solvers as nmpc_solvers

    model, x0 = crystallizer
    cache = nmpc_solvers.DerivativeCache(capacity=2)
    monkeypatch.setattr(nmpc_solvers, "SHARED_DERIVATIVES", cache)
    config = _batch_config(x0)
    first = _two_steps(model, x0, config, {"d43": TARGET_D43_M}, BATCH_END_S)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    again = _two_steps(model, x0, config, {"d43": TARGET_D43_M}, BATCH_END_S)
    assert (cache.hits, cache.misses) == (1, 1)
    assert first.success and again.success, (first.status, again.status)
    assert again.iterations == first.iterations and again.objective == first.objective
    np.testing.assert_array_equal(again.trajectory.inputs[JACKET], first.trajectory.inputs[JACKET])
    for horizon in (11, 12):  # two other NLPs: each differentiated; the first one's entry is the oldest, dropped
        NonlinearMpc(model, _batch_config(x0, horizon=horizon))
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 2)
    NonlinearMpc(model, config)
    assert (cache.hits, cache.misses) == (1, 4)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        nmpc_solvers.DerivativeCache(capacity=0)


def test_nmpcs_sharing_derivatives_solve_at_once_in_two_threads_as_one_after_the_other(crystallizer, monkeypatch):
    """Two NMPCs of one NLP (their cold solvers on the same shared derivative functions) stepped at the same time
    from two threads (casadi releases the GIL while it solves) give what each gives alone."""
    import threading

    import controllers.nmpc_solvers as nmpc_solvers

    model, x0 = crystallizer
    monkeypatch.setattr(nmpc_solvers, "SHARED_DERIVATIVES", nmpc_solvers.DerivativeCache())
    config = _batch_config(x0)
    mpcs = [NonlinearMpc(model, config) for _ in range(2)]
    assert nmpc_solvers.SHARED_DERIVATIVES.hits == 1
    starts = [START_K - 0.5 * k for k in range(4)]

    def steps(mpc: NonlinearMpc) -> list[float]:
        out = []
        for start in starts:
            mpc.reset()  # every step cold: the solver on the shared derivatives
            result = mpc.step(0.0, x0, {JACKET: start}, {"d43": TARGET_D43_M}, batch_end_s=BATCH_END_S)
            assert result.success, result.status
            out.append(result.commands[0].value)
        return out

    alone = steps(mpcs[0])
    together: dict[int, list[float]] = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, steps(mpcs[i]))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together == {0: alone, 1: alone}


def test_rti_converges_to_the_ipopt_solution_over_a_few_samples(crystallizer):
    """Frozen loop on the (nonlinear) crystallizer tracking problem: the warm start is the optimum for a state 1 K
    warmer; then the same state every sample and a shrinking horizon, so each sample is one full SQP step from the
    previous one; the RTI iterates approach IPOPT's converged optimum for that state."""
    model, x0 = crystallizer
    config = replace(_tracking_config(x0), horizon_mode=HorizonMode.SHRINKING)
    warmer = {**x0, "temperature": x0["temperature"] + 1.0}
    args = (0.0, x0, {JACKET: START_K}, {"supersaturation": 0.015})
    reference = NonlinearMpc(model, config).step(*args, batch_end_s=5 * SAMPLE_S)
    rti = NonlinearMpc(model, replace(config, solver=SolverOptions("sqp_hpipm", rti=True, hessian="gauss_newton")))
    assert rti.step(0.0, warmer, *args[2:], batch_end_s=5 * SAMPLE_S).success  # cold: IPOPT
    errors = []
    for _ in range(6):
        result = rti.step(*args, batch_end_s=5 * SAMPLE_S)
        assert result.success and result.iterations <= 1, result.status
        errors.append(float(np.max(np.abs(result.trajectory.inputs[JACKET] - reference.trajectory.inputs[JACKET]))))
    assert errors[0] > 10 * INPUT_ATOL_K  # the first RTI step started away from the optimum
    assert errors[-1] < INPUT_ATOL_K
    assert result.objective == pytest.approx(reference.objective, rel=OBJECTIVE_RTOL)


def _tank_config(solver: SolverOptions) -> NmpcConfig:
    return NmpcConfig(sample_period_s=10.0, horizon=3,
                      inputs=(ManipulatedInput(JACKET, 280.0, 360.0, max_move=2.0, move_weight=0.01),),
                      tracking=(OutputTracking("temperature_celsius", 1.0, 1.0),), solver=solver)


def _tank_step(mpc: NonlinearMpc):
    return mpc.step(0.0, {"temperature": 293.15}, {JACKET: 300.0}, {"temperature_celsius": 45.0},
                    disturbances={"ambient_temperature": 293.15})


def test_codegen_compiles_once_and_the_second_build_hits_the_cache(tmp_path):
    model = thermal_tank()
    solver = SolverOptions("ipopt", codegen=True, cache_dir=tmp_path)
    first = NonlinearMpc(model, _tank_config(solver))
    assert [o.mode for o in first.codegen] == ["compiled", "compiled"]  # cold and warm IPOPT
    libraries = sorted(tmp_path.glob("*.so"))
    assert len(libraries) == 2 and all(o.library in libraries for o in first.codegen)
    stamps = [p.stat().st_mtime_ns for p in libraries]
    second = NonlinearMpc(model, _tank_config(solver))
    assert [o.mode for o in second.codegen] == ["cached", "cached"]
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.glob("*.so"))] == stamps
    interpreted = _tank_step(NonlinearMpc(model, _tank_config(SolverOptions("ipopt"))))
    compiled = _tank_step(second)
    assert compiled.success and compiled.objective == pytest.approx(interpreted.objective, rel=1e-9)
    # another problem (horizon) is another library
    NonlinearMpc(model, replace(_tank_config(solver), horizon=4))
    assert len(list(tmp_path.glob("*.so"))) == 4


def test_codegen_without_a_compiler_falls_back_to_the_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    model = thermal_tank()
    mpc = NonlinearMpc(model, _tank_config(SolverOptions("ipopt", codegen=True, cache_dir=tmp_path / "cache")))
    assert {o.mode for o in mpc.codegen} == {"interpreted"}
    assert "no-such-cc" in mpc.codegen[0].reason
    assert not (tmp_path / "cache").exists()
    assert _tank_step(mpc).success


def test_bad_solver_options_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="sqp_hpipm"):
        SolverOptions("acados")
    with pytest.raises(ValueError, match="rti needs an SQP method"):
        SolverOptions("ipopt", rti=True)
    assert SOLVER_METHODS == tuple(m.value for m in SolverMethod)  # the config parser's copy (no casadi import)
    _, issues = parse_options({"solver": "acados"}, "units.c1.control", set())
    assert ("units.c1.control.solver", "acados", "one of ipopt, fatrop, sqp_hpipm, sqp_qrqp") in issues
