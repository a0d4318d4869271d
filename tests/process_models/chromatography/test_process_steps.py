"""Process steps in chromatography cases (issue 19, item 3): flow rate per step, polynomial inlets, steps stated as
steps, WENO5 — checked against conservation, the exact (Laplace) reference and the two-knot form they replace."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from process_models.case_file import CaseFileError
from process_models.case_file import load_case as load_generic_case
from process_models.chromatography.column import (
    CASES_DIR,
    ChromatographyCaseError,
    build_column,
    load_case,
    simulate_column,
)
from process_models.chromatography.inlet import (
    InletProgramError,
    inlet_program_from_inputs,
    interstitial_velocity,
    program_from_steps,
)
from process_models.chromatography.isotherms import LangmuirIsotherm
from process_models.chromatography.laplace_reference import linear_component, pulse_response
from process_models.chromatography.transport import ColumnError, ColumnSpec, Discretisation, TransportModel
from process_models.simulator import InputProgram
from tests.process_models.chromatography.test_high_order import ISOTHERM, PULSE_S, TIMES, linear_spec, relative_l2

REPO = Path(__file__).resolve().parents[3]
DIAMETER_M = 0.01
ML_PER_MIN = 1e-6 / 60.0


def _lrmp_langmuir() -> tuple[ColumnSpec, LangmuirIsotherm]:
    spec = ColumnSpec(TransportModel.LUMPED_RATE_WITH_PORES, ("a", "b"), 0.05, 1e-3, 1e-7, column_porosity=0.4,
                      particle_porosity=0.5, particle_radius_m=2e-5, film_diffusion_m_per_s=(2e-5, 2e-5),
                      column_diameter_m=DIAMETER_M)
    iso = LangmuirIsotherm(adsorption_rate_m3_per_mol_s=(0.1, 0.05), desorption_rate_per_s=(1.0, 1.0),
                           capacity_mol_per_m3=(10.0, 10.0))
    return spec, iso


STEPS = [
    {"name": "load", "duration_s": 60.0, "flow_rate_ml_per_min": 1.0, "inlet": {"a": 1.0, "b": 0.5}},
    {"name": "wash", "duration_s": 100.0, "flow_rate_ml_per_min": 3.0, "inlet": {}},
    {"name": "elute", "duration_s": 200.0, "flow_rate_ml_per_min": 0.5, "inlet": {"a": [0.0, 1e-3, 0.0, 1e-9]}},
    {"name": "strip", "duration_s": 300.0, "flow_rate_m3_per_s": 4 * ML_PER_MIN},
]


def _inventory(spec: ColumnSpec, column, state: np.ndarray, component: str) -> float:
    """Moles of ``component`` held in the column (mol): bulk, pore liquid and bound, per cell volume."""
    s = column.model.unpack_states(state)
    cell_volume = math.pi * DIAMETER_M ** 2 / 4.0 * spec.length_m / column.layout.axial_cells
    eps_c, eps_p = spec.column_porosity, spec.particle_porosity
    per_cell = (eps_c * s[f"bulk_concentration_{component}"]
                + (1 - eps_c) * eps_p * s[f"pore_concentration_{component}"]
                + (1 - eps_c) * (1 - eps_p) * s[f"bound_concentration_{component}"])
    return float(np.sum(per_cell) * cell_volume)


def test_steps_with_flow_changes_conserve_mass():
    spec, iso = _lrmp_langmuir()
    column = build_column(spec, iso, Discretisation(axial_cells=30, weno_order=2))
    program = program_from_steps(("a", "b"), STEPS, 0.0, DIAMETER_M, spec.column_porosity)
    times = np.linspace(0.0, program.end_time_s, 6601)  # 0.1 s
    result = simulate_column(column, program, times, rtol=1e-9, atol=1e-12)
    flow = program.velocity_at(times, spec.interstitial_velocity_m_per_s) * (
        math.pi * DIAMETER_M ** 2 / 4.0 * spec.column_porosity)
    assert flow[0] == pytest.approx(1.0 * ML_PER_MIN) and flow[-1] == pytest.approx(4.0 * ML_PER_MIN)
    for i, comp in enumerate(("a", "b")):
        fed = _integral(times, flow * program.concentration_at(times)[i], program.switching_times())
        eluted = _integral(times, flow * result.output(f"outlet_concentration_{comp}"), program.switching_times())
        held = _inventory(spec, column, result.states[:, -1], comp)
        assert fed > 0 and eluted > 0.5 * fed
        assert eluted + held == pytest.approx(fed, rel=2e-4), comp


def _integral(times: np.ndarray, values: np.ndarray, breaks: list[float]) -> float:
    """Simpson's rule piecewise between the steps (the integrand jumps at a flow change)."""
    from scipy.integrate import simpson

    total = 0.0
    edges = [times[0], *breaks, times[-1]]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        inside = (times >= a - 1e-9) & (times <= b + 1e-9)
        t, v = times[inside], values[inside].copy()
        # the value on the boundary belongs to the step that starts there: use the left limit at the right edge
        if b != times[-1]:
            v[-1] = 2 * v[-2] - v[-3]
        total += float(simpson(v, x=t))
    return total


def test_a_step_is_the_two_knot_ramp_it_replaces():
    """A salt step written as a step equals the old two-knot form (1e-6 s ramp)."""
    spec, iso = _lrmp_langmuir()
    column = build_column(spec, iso, Discretisation(axial_cells=20))
    steps = [{"name": "load", "duration_s": 50.0, "inlet": {"a": 1.0}},
             {"name": "elute", "duration_s": 250.0, "inlet": {"b": 2.0}}]
    as_steps = program_from_steps(("a", "b"), steps, 0.0)
    as_knots = inlet_program_from_inputs(("a", "b"), {
        "inlet_concentration_a": InputProgram((0.0, 50.0), (1.0, 0.0), "zoh"),
        "inlet_concentration_b": InputProgram((0.0, 49.999999, 50.0, 300.0), (0.0, 0.0, 2.0, 2.0), "linear"),
    }, 0.0, 300.0)
    times = np.linspace(0.0, 300.0, 151)
    a = simulate_column(column, as_steps, times, rtol=1e-9, atol=1e-12).outputs
    b = simulate_column(column, as_knots, times, rtol=1e-9, atol=1e-12).outputs
    assert len(as_steps.sections) == 2 and len(as_knots.sections) == 3
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5


def test_cubic_inlet_is_exact_inside_a_step():
    program = program_from_steps(("a",), [{"name": "ramp", "duration_s": 10.0, "inlet": {"a": [1.0, 0.5, -0.1, 0.01]}},
                                          {"name": "hold", "duration_s": 5.0, "inlet": {"a": 2.0}}], 100.0)
    tau = np.array([0.0, 2.5, 9.999])
    expected = 1.0 + 0.5 * tau - 0.1 * tau ** 2 + 0.01 * tau ** 3
    assert np.allclose(program.concentration_at(100.0 + tau)[0], expected)
    assert program.concentration_at(110.0)[0] == pytest.approx(2.0)
    assert program.end_time_s == pytest.approx(115.0)


def test_weno5_is_more_accurate_and_converges_faster_than_weno3_against_the_exact_solution():
    transport = TransportModel.EQUILIBRIUM_DISPERSIVE
    exact = pulse_response(linear_component(linear_spec(transport), ISOTHERM, "a"), TIMES, 1.0, PULSE_S,
                           method="talbot")
    program = inlet_program_from_inputs(("a",), {"inlet_concentration_a": InputProgram((0.0, PULSE_S), (1.0, 0.0))},
                                        0.0, float(TIMES[-1]))
    errors = {}
    for order in (2, 3):
        for cells in (32, 64):
            column = build_column(linear_spec(transport), ISOTHERM, Discretisation(axial_cells=cells, weno_order=order))
            y = simulate_column(column, program, TIMES, rtol=1e-10, atol=1e-12).outputs[0]
            errors[order, cells] = relative_l2(y, exact)
    assert errors[3, 32] < 0.6 * errors[2, 32] and errors[3, 64] < 0.5 * errors[2, 64]
    assert errors[3, 32] / errors[3, 64] > errors[2, 32] / errors[2, 64]  # a higher observed order


def test_shipped_process_step_case_runs_with_its_flow_changes():
    case = load_case("sma_process_steps", discretisation_overrides={"axial_cells": 8, "particle_cells": 2})
    names = [s.name for s in case.program.sections]
    assert names == ["load", "wash", "elute", "strip", "re_equilibration"]
    u = [s.interstitial_velocity_m_per_s for s in case.program.sections]
    assert u[1] == pytest.approx(2 * u[0]) and u[0] == pytest.approx(
        interstitial_velocity(1.0 * ML_PER_MIN, 0.01, 0.37))
    assert case.column.spec.interstitial_velocity_m_per_s == pytest.approx(u[0])
    times = np.array([0.0, 50.0, 95.0, 1100.0])
    result = case.simulate(times_s=times)
    dp = result.output("column_pressure_drop")
    assert dp[1] == pytest.approx(2 * dp[0], rel=1e-9)  # Darcy: pressure drop follows the step's flow
    assert result.output("outlet_concentration_salt")[-1] > 100.0  # the gradient is running
    generic = load_generic_case(CASES_DIR / "chromatography_sma_process_steps.toml")
    assert generic.runner is not None and generic.inputs == {}


@pytest.mark.parametrize(("steps", "message"), [
    ([{"name": "a", "duration_s": 0.0}], "'duration_s' expected a number of seconds > 0"),
    ([{"name": "a", "duration_s": 1.0, "flow": 1.0}], r"unknown key\(s\) \['flow'\]"),
    ([{"name": "a", "duration_s": 1.0, "inlet": {"x": 1.0}}], "unknown component 'x'"),
    ([{"name": "a", "duration_s": 1.0, "inlet": {"a": [1, 2, 3, 4, 5]}}], "list of 1-4 polynomial coefficients"),
    ([{"name": "a", "duration_s": 1.0}, {"name": "a", "duration_s": 1.0}], "repeats an earlier step's name"),
    ([{"name": "a", "duration_s": 1.0, "flow_rate_ml_per_min": 1.0, "flow_rate_m3_per_s": 1e-8}], "not both"),
    ([{"duration_s": 1.0}], "'name' expected a non-empty string"),
    ([], "non-empty list of step tables"),
])
def test_bad_steps_are_refused_naming_the_step_and_key(steps, message):
    with pytest.raises(InletProgramError, match=message):
        program_from_steps(("a",), steps, 0.0, DIAMETER_M, 0.4)


def test_a_flow_rate_without_a_column_diameter_is_refused():
    with pytest.raises(InletProgramError, match="step 1 \\('load'\\): 'flow_rate_ml_per_min' needs the column's "
                                                "'column_diameter_m'"):
        program_from_steps(("a",), [{"name": "load", "duration_s": 1.0, "flow_rate_ml_per_min": 1.0}], 0.0)


def test_bad_case_files_with_steps_name_the_file_and_key(tmp_path):
    base = (CASES_DIR / "chromatography_sma_process_steps.toml").read_text().replace(
        "axial_cells = 32", "axial_cells = 5").replace("particle_cells = 8", "particle_cells = 1")  # quick to build
    cases = {
        "both": (base + "\n[inputs.inlet_concentration_salt]\nvalue = 50.0\n", "either as \\[\\[steps\\]\\] or"),
        "late": (base.replace("until_s = 1490.0", "until_s = 2000.0"), "after the end of the last step"),
        "velocity": (base.replace("flow_rate_ml_per_min = 1.0  #", "interstitial_velocity_m_per_s = 5e-4\n"
                                  "flow_rate_ml_per_min = 1.0  #"), "give one of 'interstitial_velocity_m_per_s'"),
        "component": (base.replace("inlet = { salt = 50.0 }", "inlet = { sugar = 50.0 }", 1), "unknown component"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        with pytest.raises(ChromatographyCaseError, match=message):
            load_case(path)
        with pytest.raises(CaseFileError, match=message):
            load_generic_case(path)
    proc = subprocess.run([sys.executable, "-m", "linetwin_cli.main", "simulate", str(tmp_path / "late.toml")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {tmp_path / 'late.toml'}: ") and "last step" in proc.stderr


def test_weno5_needs_five_cells_and_other_orders_are_refused():
    with pytest.raises(ColumnError, match="expected >= 5 with weno_order = 3"):
        Discretisation(axial_cells=4, weno_order=3).check(TransportModel.EQUILIBRIUM_DISPERSIVE)
    with pytest.raises(ColumnError, match="3 \\(WENO5\\)"):
        Discretisation(axial_cells=10, weno_order=4).check(TransportModel.EQUILIBRIUM_DISPERSIVE)


def test_the_generic_simulator_refuses_a_program_that_changes_flow():
    program = program_from_steps(("a",), [{"name": "a", "duration_s": 1.0, "flow_rate_ml_per_min": 1.0}], 0.0,
                                 DIAMETER_M, 0.4)
    with pytest.raises(InletProgramError, match="section-wise simulator"):
        program.component_function("a")
