"""Chromatography column model: declaration, factory, simulators, physical checks."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.chromatography.column import (
    CASES_DIR,
    ChromatographyCaseError,
    build_column,
    chromatography_model,
    load_case,
    simulate_column,
)
from process_models.chromatography.inlet import InletProgram, InletSection
from process_models.chromatography.isotherms import IsothermError, LinearIsotherm, StericMassActionIsotherm
from process_models.chromatography.transport import (
    BindingMode,
    ColumnError,
    ColumnSpec,
    Discretisation,
    TransportModel,
)
from process_models.simulator import SimulationError, simulate


def _ed_column(binding: BindingMode = BindingMode.RAPID_EQUILIBRIUM, cells: int = 60):
    spec = ColumnSpec(TransportModel.EQUILIBRIUM_DISPERSIVE, ("tracer",), length_m=0.1,
                      interstitial_velocity_m_per_s=1e-3, axial_dispersion_m2_per_s=1e-7, total_porosity=0.6,
                      binding=binding)
    return build_column(spec, LinearIsotherm((2.0,), (1.0,)), Discretisation(axial_cells=cells))


def test_declaration_names_outputs_inputs_and_states_per_component():
    case = load_case("sma_load_wash_elute")
    d = case.column.declaration
    comps = ("salt", "lysozyme", "cytochrome", "ribonuclease")
    assert case.column.components == comps
    assert [o.name for o in d.outputs] == [f"outlet_concentration_{c}" for c in comps] + [
        "outlet_uv_absorbance", "outlet_conductivity", "column_pressure_drop"]
    assert [i.name for i in d.inputs] == [f"inlet_concentration_{c}" for c in comps]
    n, shells = case.column.discretisation.axial_cells, case.column.discretisation.particle_cells
    sizes = {s.name: s.size for s in d.states}
    assert sizes["bulk_concentration_salt"] == n
    assert sizes["pore_concentration_lysozyme"] == n * shells
    assert sizes["bound_concentration_ribonuclease"] == n * shells
    assert case.column.model.nx == 4 * n + 2 * 4 * n * shells
    names = set(case.column.model.parameter_names)
    assert {"characteristic_charge_lysozyme", "pore_diffusion_salt", "ionic_capacity"} <= names
    assert all(o.unit == "mol/m3" for o in d.outputs[:4])


def test_detector_outputs_follow_beer_lambert_kohlrausch_and_blake_kozeny():
    case = load_case("sma_load_wash_elute", discretisation_overrides={"axial_cells": 8, "particle_cells": 2})
    result = case.simulate(times_s=np.linspace(0.0, 1500.0, 76))
    outlet = {c: result.output(f"outlet_concentration_{c}") for c in case.column.components}
    uv = 0.002 * (3797.0 * outlet["lysozyme"] + 2300.0 * outlet["cytochrome"] + 980.0 * outlet["ribonuclease"])
    np.testing.assert_allclose(result.output("outlet_uv_absorbance"), uv, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.output("outlet_conductivity"), 0.01264 * outlet["salt"], rtol=1e-12)
    # Blake-Kozeny by hand for the LWE column: v_s = 0.37 * 5.75e-4 m/s, d_p = 90 um, L = 14 mm
    dp = 150 * 1e-3 * 0.37 * 5.75e-4 * 0.014 * 0.63**2 / (9e-5**2 * 0.37**3)
    np.testing.assert_allclose(result.output("column_pressure_drop"), dp, rtol=1e-12)
    assert np.max(result.output("outlet_uv_absorbance")) > 0.05  # the three protein peaks show on the UV trace


def test_sma_column_keeps_ionic_capacity_during_load_wash_elute():
    """Electroneutrality of the SMA resin: bound salt + sum nu_i q_i = Lambda in every shell at all times."""
    case = load_case("sma_load_wash_elute", discretisation_overrides={"axial_cells": 8, "particle_cells": 2})
    result = case.simulate(times_s=np.linspace(0.0, 600.0, 31))
    charges = {"lysozyme": 4.7, "cytochrome": 5.29, "ribonuclease": 3.7}
    total = result.state("bound_concentration_salt") + sum(
        nu * result.state(f"bound_concentration_{c}") for c, nu in charges.items())
    np.testing.assert_allclose(total, 1200.0, rtol=1e-6)
    assert np.max(result.state("bound_concentration_lysozyme")) > 1.0  # protein was bound during the load


def test_pulse_mass_is_conserved_and_peak_time_matches_retention_theory():
    """ED, linear isotherm: all injected mass leaves; the first moment is t0 (1 + F H) + t_pulse / 2
    (Guiochon et al. 2006, ch. 2; moment analysis)."""
    column = _ed_column()
    program = InletProgram(("tracer",), (InletSection("load", 0.0, (1.0,)), InletSection("wash", 20.0, (0.0,))),
                           900.0)
    times = np.linspace(0.0, 900.0, 901)
    result = simulate_column(column, program, times)
    c = result.output("outlet_concentration_tracer")
    eluted = np.trapezoid(c, times)
    assert eluted == pytest.approx(20.0, rel=1e-3)
    first_moment = np.trapezoid(c * times, times) / eluted
    t0 = 0.1 / 1e-3
    expected = t0 * (1.0 + (0.4 / 0.6) * 2.0) + 10.0
    assert first_moment == pytest.approx(expected, rel=5e-3)


def test_kinetic_binding_with_fast_rates_approaches_rapid_equilibrium():
    program = InletProgram(("tracer",), (InletSection("load", 0.0, (1.0,)), InletSection("wash", 20.0, (0.0,))),
                           600.0)
    times = np.linspace(0.0, 600.0, 301)
    rapid = simulate_column(_ed_column(BindingMode.RAPID_EQUILIBRIUM, 40), program, times)
    column = _ed_column(BindingMode.KINETIC, 40)
    kinetic = simulate_column(column, program, times, initial_state=column.initial_state([0.0]),
                              parameters={"adsorption_rate_tracer": 2000.0, "desorption_rate_tracer": 1000.0})
    a, b = rapid.output("outlet_concentration_tracer"), kinetic.output("outlet_concentration_tracer")
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-2


def test_generic_simulator_runs_the_same_declaration_with_a_gradient():
    """process_models.simulator.simulate (inputs held per output interval, a ramp sampled at interval midpoints) on
    the same compiled model agrees with the section-wise simulator (exact ramp) to the second-order hold error."""
    case = load_case("sma_load_wash_elute", discretisation_overrides={"axial_cells": 8, "particle_cells": 2})
    times = case.output_times()[:301]  # 0 .. 600 s, through load, wash and the start of the gradient
    ours = case.simulate(times_s=times)
    generic = simulate(case.column.model, case.initial_state, times, case.column.input_functions(case.program),
                       rtol=1e-6, atol=1e-8)
    for comp in ("salt", "ribonuclease"):
        a = ours.output(f"outlet_concentration_{comp}")
        b = generic.output(f"outlet_concentration_{comp}")
        assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-3


def test_registry_factory_builds_declarations_and_rejects_bad_options():
    d = chromatography_model({"case": "grm_langmuir_pulse", "axial_cells": 10, "particle_cells": 3,
                              "column_volume_ml": 1.0, "parameters": {"column_porosity": 0.4}})
    assert d.parameter_values()["column_porosity"] == 0.4
    assert next(s for s in d.states if s.name == "bulk_concentration_product").size == 10
    shipped = chromatography_model({"case": "sma_load_wash_elute", "column_volume_ml": 1.0})  # the pilot line's
    assert "outlet_concentration_lysozyme" in [o.name for o in shipped.outputs]
    with pytest.raises(ChromatographyCaseError, match="not stated.*case ="):
        chromatography_model({"column_volume_ml": 1.0})  # nothing taken silently from an example case
    with pytest.raises(ChromatographyCaseError, match="unknown key"):
        chromatography_model({"colum_volume_ml": 1.0})
    with pytest.raises(ChromatographyCaseError, match="available"):
        chromatography_model({"case": "no_such_case"})
    with pytest.raises(ChromatographyCaseError, match="column_porosity"):
        chromatography_model({"case": "grm_langmuir_pulse", "parameters": {"column_porosity": 1.5}})
    with pytest.raises(ChromatographyCaseError, match="transport"):
        chromatography_model({"case": "grm_langmuir_pulse", "transport": "plug_flow"})


def test_registry_serves_the_chromatography_kind():
    from process_models.registry import known_kinds, model_for_kind

    assert "chromatography_column" in known_kinds()
    d = model_for_kind("chromatography_column", {"case": "ed_linear_pulse", "axial_cells": 12})
    assert next(s for s in d.states if s.name == "bulk_concentration_impurity").size == 12


def test_case_files_are_generic_case_files_too(tmp_path):
    """`linetwin simulate` (process_models.case_file) loads the chromatography case files and its generic simulator
    reproduces the section-wise simulation."""
    from process_models.case_file import load_case as load_generic_case

    generic = load_generic_case(CASES_DIR / "chromatography_langmuir_lrmp_breakthrough.toml")
    assert generic.kind == "chromatography_column"
    ours = load_case("langmuir_lrmp_breakthrough")
    times = np.linspace(0.0, 700.0, 71)
    a = ours.simulate(times_s=times).output("outlet_concentration_protein")
    b = simulate(generic.model, generic.initial_state, times, generic.inputs, rtol=1e-7,
                 atol=1e-9).output("outlet_concentration_protein")
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-4
    for path in sorted(CASES_DIR.glob("chromatography_*.toml")):
        assert load_generic_case(path).model.nx > 0


def test_bad_column_values_raise_naming_the_key():
    with pytest.raises(ColumnError, match="column_porosity"):
        ColumnSpec(TransportModel.GENERAL_RATE, ("a",), 0.1, 1e-3, 1e-7, column_porosity=1.2, particle_porosity=0.5,
                   particle_radius_m=1e-5, film_diffusion_m_per_s=(1e-5,), pore_diffusion_m2_per_s=(1e-11,)).check()
    with pytest.raises(ColumnError, match="pore_diffusion_m2_per_s"):
        ColumnSpec(TransportModel.GENERAL_RATE, ("a",), 0.1, 1e-3, 1e-7, column_porosity=0.4, particle_porosity=0.5,
                   particle_radius_m=1e-5, film_diffusion_m_per_s=(1e-5,)).check()
    with pytest.raises(ColumnError, match="axial_cells"):
        Discretisation(axial_cells=2).check(TransportModel.EQUILIBRIUM_DISPERSIVE)
    spec = ColumnSpec(TransportModel.LUMPED_RATE_WITH_PORES, ("salt", "p"), 0.1, 1e-3, 1e-7, column_porosity=0.4,
                      particle_porosity=0.5, particle_radius_m=1e-5, film_diffusion_m_per_s=(1e-5, 1e-5),
                      binding=BindingMode.RAPID_EQUILIBRIUM)
    sma = StericMassActionIsotherm((0, 4), (0, 10), (0, 1), (0, 0), 1200.0)  # K = k_a / k_d undefined
    with pytest.raises(IsothermError, match="rapid_equilibrium binding needs k_d > 0"):
        build_column(spec, sma, Discretisation(axial_cells=5))


def test_simulate_column_rejects_times_outside_the_program():
    column = _ed_column(cells=10)
    program = InletProgram(("tracer",), (InletSection("load", 0.0, (1.0,)),), 100.0)
    with pytest.raises(SimulationError, match="outside the inlet program"):
        simulate_column(column, program, [0.0, 50.0, 150.0])


def test_result_exports_csv_with_outlet_columns(tmp_path):
    column = _ed_column(cells=5)
    program = InletProgram(("tracer",), (InletSection("load", 0.0, (1.0,)),), 10.0)
    result = simulate_column(column, program, np.linspace(0.0, 10.0, 6))
    path = tmp_path / "run.csv"
    result.to_csv(path)
    header = path.read_text().splitlines()[0]
    assert "outlet_concentration_tracer [mol/m3]" in header
    assert len(path.read_text().splitlines()) == 7


def test_pooling_a_simulated_load_wash_elute_run():
    """Each protein loaded (1 mol/m3 for 10 s) leaves the column; a 10 %-of-peak cut of ribonuclease collects most
    of it, with the neighbouring cytochrome peak lowering the purity (pooling on a SimulationResult)."""
    from process_models.chromatography.pooling import cut_points_by_threshold, outlet_curves, pool_result

    case = load_case("sma_load_wash_elute", discretisation_overrides={"axial_cells": 8, "particle_cells": 2})
    result = case.simulate()
    comps = case.column.components
    eluted = {c: np.trapezoid(v, result.times_s) for c, v in outlet_curves(result, comps).items()}
    assert eluted["ribonuclease"] == pytest.approx(10.0, rel=1e-3)
    assert eluted["cytochrome"] == pytest.approx(10.0, rel=1e-3)
    start, end = cut_points_by_threshold(result.times_s, result.output("outlet_concentration_ribonuclease"), 0.1)
    pool = pool_result(result, comps, "ribonuclease", start, end, ignore=("salt",),
                       reference_amounts={"ribonuclease": 10.0})
    assert 0.9 < pool.yield_fraction < 1.0
    assert 0.3 < pool.purity_fraction < 1.0
    assert pool.amounts_mol["cytochrome"] > 0.0


def test_a_run_of_the_same_sections_on_the_same_grid_reuses_their_integrators_and_gives_the_same_outlet():
    """Section integrators are made once per (model, thread, section span and grid, options): a second run with
    other parameters (what the pooling estimator's fit does) builds none and integrates as a new one would."""
    from process_models.chromatography import column as column_module

    case = load_case("ed_linear_pulse")
    first = case.simulate()
    def held() -> dict:
        return column_module._SECTION_INTEGRATORS.held(case.column.model)

    built = held()
    assert len(built) == len(case.program.sections) >= 2
    again = case.simulate()
    assert held().keys() == built.keys() and all(held()[k] is f for k, f in built.items())  # none added or rebuilt
    np.testing.assert_array_equal(again.outputs, first.outputs)
    slower = case.simulate(parameters={"interstitial_velocity": 0.5 * first.parameters["interstitial_velocity"]})
    assert held().keys() == built.keys() and not np.array_equal(slower.outputs, first.outputs)  # parameters: inputs
