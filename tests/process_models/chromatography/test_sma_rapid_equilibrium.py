"""Rapid-equilibrium steric mass action (issue 19, item 3): the bound phase held at SMA equilibrium by the
differentiated equilibrium relation (``process_models/chromatography/isotherms.py``, StericMassActionIsotherm).

Checked with real solvers: the per-cell algebra against a dense solve of the differentiated system, kinetic SMA
converging to it as the rates grow (k_a, k_d scaled together), CADET-Core's own rapid-equilibrium run at the same grid
(tests/reference/chromatography/sma_rapid_equilibrium.json, ``tools/cadet_reference.py``), mass balance and the
equilibrium residual along a run, ED / LRMP / GRM with FV and DG, and the errors for what it does not support.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

import casadi as ca
import numpy as np
import pytest

from process_models.chromatography.column import (
    CASES_DIR,
    ChromatographyCaseError,
    build_column,
    column_from_options,
    load_case,
    simulate_column,
)
from process_models.chromatography.inlet import InletProgram, InletSection
from process_models.chromatography.isotherms import IsothermError, StericMassActionIsotherm, sma_equilibrium_bound
from process_models.chromatography.transport import (
    EQUILIBRIUM_RELAXATION_S,
    BindingMode,
    ColumnError,
    Discretisation,
    column_layout,
    shell_geometry,
)
from process_models.simulator import SimulationError

CASE = "sma_rapid_equilibrium"
REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "chromatography" / f"{CASE}.json"
PROTEINS = ("lysozyme", "cytochrome", "ribonuclease")
COARSE = {"axial_cells": 8, "particle_cells": 2}


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def _model_table(**changes) -> dict:
    table = dict(tomllib.loads((CASES_DIR / f"chromatography_{CASE}.toml").read_text())["model"])
    table.update(changes)
    return table


def _case(binding: str = "rapid_equilibrium", **changes):
    """The shipped rapid-equilibrium case with another binding / transport / discretisation (same programme)."""
    base = load_case(CASE, discretisation_overrides=COARSE)
    column = column_from_options(_model_table(binding=binding, **COARSE, **changes), name=CASE)
    state = {k: v for k, v in base.initial_state.items() if k in column.layout.state_sizes}
    return dataclasses.replace(base, column=column, initial_state=state)


def _outlets(result, comps=("salt", *PROTEINS)) -> dict[str, np.ndarray]:
    return {c: result.output(f"outlet_concentration_{c}") for c in comps}


# ----------------------------------------------------------------------------------------------
def test_rates_solve_the_differentiated_equilibrium_with_drift_correction():
    """Off equilibrium, (dc/dt, dq/dt) satisfy the mass balances, the bound-salt balance and
    dg/dc dc/dt + dg/dq dq/dt = -g / tau (g and its Jacobians from casadi, the system solved densely here)."""
    comps = ("salt", "p1", "p2", "p3")
    iso = StericMassActionIsotherm((0, 4.7, 5.3, 3.7), (0, 11.8, 10.6, 10.0), (0, 35.5, 1.59, 7.7),
                                   (0, 1000.0, 1000.0, 1000.0), 1200.0, reference_liquid_mol_per_m3=50.0,
                                   reference_solid_mol_per_m3=1200.0)
    p = {q.name: ca.SX(q.value) for q in iso.parameters(comps)}
    c, q, transport = ca.SX.sym("c", 4), ca.SX.sym("q", 4), ca.SX.sym("t", 4)
    cs, qs, ts = ([v[i] for i in range(4)] for v in (c, q, transport))
    phase_ratio, tau = 1.3, 0.02
    dc, dq = iso.rapid_equilibrium_rates(cs, qs, ts, ca.SX(phase_ratio), p, comps, tau)
    g = ca.vertcat(*iso.equilibrium_residual(cs, qs, p, comps))
    f = ca.Function("f", [c, q, transport], [ca.vertcat(*dc), ca.vertcat(*dq), g, ca.jacobian(g, c),
                                             ca.jacobian(g, q)])
    point_c, point_q = np.array([180.0, 0.3, 0.05, 0.8]), np.array([0.0, 2.0, 0.4, 1.5])
    point_q[0] = 1200.0 - 4.7 * 2.0 - 5.3 * 0.4 - 3.7 * 1.5
    t = np.array([3.0, -0.02, 0.01, -0.05])
    dcv, dqv, gv, gc, gq = (np.asarray(v, dtype=float) for v in f(point_c, point_q, t))
    dcv, dqv, gv = dcv.ravel(), dqv.ravel(), gv.ravel()
    assert np.max(np.abs(gv)) > 1e-2  # the point is off equilibrium: the correction term matters
    np.testing.assert_allclose(dcv + phase_ratio * dqv, t, rtol=1e-12, atol=1e-12)
    assert dqv[0] == pytest.approx(-(4.7 * dqv[1] + 5.3 * dqv[2] + 3.7 * dqv[3]), rel=1e-12)
    np.testing.assert_allclose(gc @ dcv + gq @ dqv, -gv / tau, rtol=1e-9, atol=1e-9 * np.max(np.abs(gv / tau)))
    # the consistent loading: g = 0, and the differentiated form keeps it there
    values = {pp.name: pp.value for pp in iso.parameters(comps)}
    q_eq = np.array([float(v[0]) for v in sma_equilibrium_bound([np.array([v]) for v in point_c], values, comps)])
    assert np.max(np.abs(np.asarray(f(point_c, q_eq, t)[2]))) < 1e-10 * 1200.0
    assert iso.equilibrium_bound(list(point_c), comps) == pytest.approx(list(q_eq), rel=1e-12)
    assert iso.equilibrium_bound([50.0, 0.0, 0.0, 0.0], comps) == [1200.0, 0.0, 0.0, 0.0]


def test_kinetic_sma_converges_to_rapid_equilibrium_as_the_rates_grow():
    """k_a and k_d scaled up together (K = k_a/k_d kept): the outlets approach the rapid-equilibrium run, first order
    in 1/k_d, down to the time integrator's tolerance (measured at 8 x 2 cells, ribonuclease, the weakest binder:
    1.1e-3, 1.1e-4, 1.2e-5 for k_d = 1e-7, 1e-6, 1e-5; the LWE case's k_d = 1000 sits at that floor)."""
    times = np.linspace(0.0, 1500.0, 376)
    rapid = _outlets(_case().simulate(times_s=times))
    ratio = {"lysozyme": 35.5e-3, "cytochrome": 1.59e-3, "ribonuclease": 7.7e-3}  # k_a / k_d
    differences = []
    for kd in (1e-7, 1e-6, 1e-5):
        params = {f"adsorption_rate_{c}": k * kd for c, k in ratio.items()}
        params |= {f"desorption_rate_{c}": kd for c in ratio}
        kinetic = _outlets(_case("kinetic").simulate(times_s=times, parameters=params))
        differences.append(max(relative_l2(rapid[c], kinetic[c]) for c in rapid))
    assert differences[0] > 1e-4
    assert differences[1] < 0.2 * differences[0] and differences[2] < 0.2 * differences[1], differences
    assert differences[2] < 5e-5, differences


def test_matches_cadet_rapid_equilibrium_sma_at_the_same_grid():
    """CADET-Core 5.1.1 with IS_KINETIC = 0 (its own algebraic SMA) on the shipped case at the reference's grid."""
    ref = json.loads(REFERENCE.read_text())
    assert (ref["binding"], ref["isotherm"], ref["transport"]) == ("rapid_equilibrium", "sma", "general_rate")
    case = load_case(CASE, discretisation_overrides={"axial_cells": ref["axial_cells"],
                                                     "particle_cells": ref["particle_cells"]})
    assert case.column.discretisation.weno_order == ref["weno_order"]
    result = case.simulate(times_s=np.asarray(ref["times_s"]))
    errors = {c: relative_l2(v, np.asarray(ref["outlet"][c])) for c, v in _outlets(result).items()}
    assert max(errors.values()) < 1e-4, errors  # measured 2.5e-7 (salt) ... 8.0e-6 (lysozyme)


def test_mass_balance_closes_and_the_bound_phase_stays_at_equilibrium():
    """GRM, FV: fed = eluted + held for salt and proteins; q = q*(c) in every shell at every output time; the
    resin's ionic capacity is kept (q_salt + sum nu_i q_i = Lambda)."""
    case = _case()
    spec = case.column.spec
    times = np.linspace(0.0, 1500.0, 3001)
    result = case.simulate(times_s=times)
    states = case.column.model.unpack_states(result.states)
    n, shells = case.column.layout.axial_cells, case.column.layout.shells
    faces, _ = shell_geometry(shells)
    shell_weight = np.tile(faces[1:] ** 3 - faces[:-1] ** 3, n)  # volume fraction of each shell in its particle
    eps_c, eps_p = spec.column_porosity, spec.particle_porosity
    inlet = case.program.concentration_at(times)
    breaks = [10.0, 90.0]
    for k, comp in enumerate(case.column.components):
        fed = _piecewise_integral(times, eps_c * spec.interstitial_velocity_m_per_s * inlet[k], breaks)
        eluted = _piecewise_integral(times, eps_c * spec.interstitial_velocity_m_per_s
                                     * result.output(f"outlet_concentration_{comp}"), breaks)
        particle = eps_p * states[f"pore_concentration_{comp}"] + (1 - eps_p) * states[f"bound_concentration_{comp}"]
        held = spec.length_m / n * (eps_c * np.sum(states[f"bulk_concentration_{comp}"], axis=0)
                                    + (1 - eps_c) * (shell_weight @ particle))
        initial_held = held[0]
        assert eluted[-1] > 0
        assert eluted[-1] + held[-1] - initial_held == pytest.approx(fed[-1], rel=1e-4, abs=1e-9), comp
    values = case.column.declaration.parameter_values()
    pore = [states[f"pore_concentration_{c}"] for c in case.column.components]
    expected = sma_equilibrium_bound(pore, values, case.column.components)
    worst = max(float(np.max(np.abs(states[f"bound_concentration_{c}"] - q)))
                for c, q in zip(PROTEINS, expected[1:], strict=True))
    assert worst < 1e-6 * 1200.0, worst
    assert np.max(states["bound_concentration_lysozyme"]) > 1.0  # protein was bound: the check is not vacuous
    total = states["bound_concentration_salt"] + sum(
        nu * states[f"bound_concentration_{c}"] for c, nu in zip(PROTEINS, (4.7, 5.29, 3.7), strict=True))
    np.testing.assert_allclose(total, 1200.0, rtol=1e-9)


def _piecewise_integral(times: np.ndarray, values: np.ndarray, breaks: list[float]) -> np.ndarray:
    """Cumulative trapezoid, the integrand's jumps at ``breaks`` taken as the left limit up to the break."""
    increments = 0.5 * (values[1:] + values[:-1]) * np.diff(times)
    for b in breaks:
        i = int(np.searchsorted(times, b))  # times[i] == b: the new step's value applies from b on
        increments[i - 1] = values[i - 1] * (times[i] - times[i - 1])
    return np.concatenate([[0.0], np.cumsum(increments)])


@pytest.mark.parametrize("transport, changes", [
    ("equilibrium_dispersive", {"method": "fv", "axial_cells": 8}),
    ("lumped_rate_with_pores", {"method": "fv", "axial_cells": 8}),
    ("lumped_rate_with_pores", {"method": "dg", "polynomial_degree": 3, "elements": 2}),
    ("general_rate", {"method": "dg", "polynomial_degree": 3, "elements": 2, "particle_cells": 2}),
])
def test_every_transport_and_scheme_agrees_with_fast_kinetic_binding(transport, changes):
    """ED, LRMP and GRM with FV and DG: rapid equilibrium against kinetic SMA at the LWE rates (k_d = 1000 with
    c_ref = 1 mM is far past the rates where the two differ; CADET's two runs of LWE differ by < 2e-7). Measured:
    1e-7 (salt) ... 1.7e-5 (LRMP FV lysozyme), the time integrator's tolerance."""
    table = _model_table(transport=transport)
    if transport == "equilibrium_dispersive":
        eps_t = table["column_porosity"] + (1 - table["column_porosity"]) * table["particle_porosity"]
        for key in ("column_porosity", "particle_porosity", "particle_radius_m", "film_diffusion_m_per_s",
                    "pore_diffusion_m2_per_s"):
            table.pop(key)
        table["total_porosity"] = eps_t
        table["axial_dispersion_m2_per_s"] = 1e-7
    elif transport == "lumped_rate_with_pores":
        table.pop("pore_diffusion_m2_per_s")
        table["film_diffusion_m_per_s"] = [2e-6] * 4
    table["discretisation"] = {k: v for k, v in changes.items() if k != "particle_cells"}
    if "particle_cells" in changes:
        table["discretisation"]["particle_cells"] = changes["particle_cells"]
    times = np.linspace(0.0, 1500.0, 151)
    outlets = {}
    for binding in ("rapid_equilibrium", "kinetic"):
        column = build_column_from(table, binding)
        liquid = [50.0, 0.0, 0.0, 0.0]
        program = load_case(CASE, discretisation_overrides=COARSE).program
        result = simulate_column(column, program, times, initial_state=column.initial_state(liquid))
        outlets[binding] = _outlets(result)
        assert "bound_concentration_lysozyme" in column.layout.state_sizes
    rapid, kinetic = outlets["rapid_equilibrium"], outlets["kinetic"]
    assert max(np.max(rapid[c]) for c in PROTEINS) > 0.01  # the proteins elute in the gradient
    errors = {c: relative_l2(rapid[c], kinetic[c]) for c in rapid}
    assert max(errors.values()) < 1e-4, errors


def build_column_from(table: dict, binding: str):
    return column_from_options({**table, "binding": binding}, name="column")


# ----------------------------------------------------------------------------------------------
def test_what_it_does_not_support_is_refused_with_a_clear_error(tmp_path):
    base = (CASES_DIR / f"chromatography_{CASE}.toml").read_text().replace(
        "axial_cells = 32", "axial_cells = 4").replace("particle_cells = 8", "particle_cells = 1")  # quick to build
    cases = {
        "no_salt": (base.replace("bulk_concentration_salt = 50.0", "bulk_concentration_salt = 0.0"),
                    "'bulk_concentration_salt' = 0 mol/m3: rapid_equilibrium SMA needs the salt > 0"),
        "salt_runs_out": (base.replace("salt = [100.0, 0.2]", "salt = [100.0, -0.2]"),
                          "salt 'salt' > 0 in the inlet.*'elute' goes down to -182"),
        "off_equilibrium": (base.replace("pore_concentration_lysozyme = 0.0", "pore_concentration_lysozyme = 0.1"),
                            "'bound_concentration_lysozyme' = 0 .*not in SMA equilibrium.*expected 49.55"),
        "no_desorption": (base.replace("desorption_rate = [0.0, 1000.0,", "desorption_rate = [0.0, 0.0,"),
                          "'desorption_rate' of \\['lysozyme'\\] = 0; rapid_equilibrium binding needs k_d > 0"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        with pytest.raises(ChromatographyCaseError, match=message):
            load_case(path)
    case = load_case(CASE, discretisation_overrides={"axial_cells": 4, "particle_cells": 1})
    off = dict(case.initial_state, bound_concentration_salt=1000.0)
    with pytest.raises(SimulationError, match="'bound_concentration_salt' = 1000 .*expected 1200"):
        simulate_column(case.column, case.program, [0.0, 1.0], initial_state=off)
    no_salt = InletProgram(case.column.components, (InletSection("water", 0.0, (0.0, 0.0, 0.0, 0.0)),), 10.0)
    with pytest.raises(SimulationError, match="'water' goes down to 0"):
        simulate_column(case.column, no_salt, [0.0, 1.0], initial_state=case.initial_state)
    ed_table = _model_table(transport="equilibrium_dispersive", total_porosity=0.8, discretisation={"axial_cells": 4})
    for key in ("column_porosity", "particle_porosity", "particle_radius_m", "film_diffusion_m_per_s",
                "pore_diffusion_m2_per_s"):
        ed_table.pop(key)
    ed = column_from_options(ed_table)
    with pytest.raises(SimulationError, match="'bulk_concentration_salt' = 0 mol/m3") as refused:
        simulate_column(ed, case.program, [0.0, 1.0], initial_state=ed.initial_state([0.0] * 4))
    assert str(refused.value).count("bulk_concentration_salt") == 1  # ED: the bulk is the liquid, named once
    sma = case.column.isotherm
    with pytest.raises(IsothermError, match="implicit"):
        sma.rapid_equilibrium_derivatives([ca.SX(1.0)] * 4, [ca.SX(0.0)] * 4, ca.SX(1.0), {}, case.column.components)
    with pytest.raises(IsothermError, match="salt concentration 'salt' > 0"):
        sma.equilibrium_bound([0.0, 1.0, 0.0, 0.0], case.column.components)
    with pytest.raises(ColumnError, match="needs the isotherm"):
        column_layout(case.column.spec, case.column.discretisation)
    assert BindingMode(case.column.spec.binding) is BindingMode.RAPID_EQUILIBRIUM and EQUILIBRIUM_RELAXATION_S < 0.1
    built = build_column(case.column.spec, sma, Discretisation(axial_cells=4, particle_cells=1))
    assert built.layout.implicit_equilibrium and math.isfinite(built.model.nx)


def test_the_shipped_case_runs_under_linetwin_simulate(tmp_path, capsys):
    from linetwin_cli.simulate import cli_simulate

    out = tmp_path / "run.csv"
    assert cli_simulate([str(CASES_DIR / f"chromatography_{CASE}.toml"), "--until", "200", "--out", str(out),
                         "--quiet"]) == 0
    header = out.read_text().splitlines()[0]
    assert "outlet_concentration_lysozyme [mol/m3]" in header
    assert len(out.read_text().splitlines()) == 1 + 101  # 0 .. 200 s every 2 s
    assert "outlet_concentration_salt" in capsys.readouterr().out
