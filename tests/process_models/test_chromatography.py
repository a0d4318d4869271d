"""Chromatography column model: declaration, factory, simulators, physical checks."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.chromatography import (
    ChromatographyCaseError,
    build_column,
    chromatography_model,
    load_case,
    simulate_column,
)
from process_models.chromatography_inlet import InletProgram, InletSection
from process_models.chromatography_isotherms import IsothermError, LinearIsotherm, StericMassActionIsotherm
from process_models.chromatography_transport import (
    BindingMode,
    ColumnError,
    ColumnSpec,
    Discretisation,
    TransportModel,
)
from process_models.declaration import DeclarationError
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
    assert [o.name for o in d.outputs] == [f"outlet_concentration_{c}" for c in comps]
    assert [i.name for i in d.inputs] == [f"inlet_concentration_{c}" for c in comps]
    assert [s.name for s in d.states] == ["bulk_concentration", "pore_concentration", "bound_concentration"]
    n, shells = case.column.discretisation.axial_cells, case.column.discretisation.particle_cells
    assert case.column.model.nx == n * 4 + 2 * n * shells * 4
    names = set(case.column.model.parameter_names)
    assert {"characteristic_charge_lysozyme", "pore_diffusion_salt", "ionic_capacity"} <= names
    assert all(o.unit == "mol/m3" for o in d.outputs)


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
    kinetic = simulate_column(column, program, times, parameters={"adsorption_rate_tracer": 2000.0,
                                                                   "desorption_rate_tracer": 1000.0})
    a, b = rapid.output("outlet_concentration_tracer"), kinetic.output("outlet_concentration_tracer")
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-2


def test_generic_simulator_runs_the_same_declaration():
    """process_models.simulator.simulate (zero-order hold per output interval) on the same compiled model agrees with
    the section-wise simulator when the program's steps fall on output times."""
    case = load_case("langmuir_lrmp_breakthrough", discretisation_overrides={"axial_cells": 24})
    times = np.linspace(0.0, 600.0, 61)
    ours = case.simulate(times_s=times)
    initial = case.column.initial_state(case.initial_liquid)
    generic = simulate(case.column.model, initial, times, case.column.input_functions(case.program), rtol=1e-7,
                       atol=1e-9)
    a = ours.output("outlet_concentration_protein")
    b = generic.output("outlet_concentration_protein")
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-4


def test_registry_factory_builds_declarations_and_rejects_bad_options():
    d = chromatography_model({"case": "grm_langmuir_pulse", "axial_cells": 10, "particle_cells": 3,
                              "column_volume_ml": 1.0, "parameters": {"column_porosity": 0.4}})
    assert d.parameter_values()["column_porosity"] == 0.4
    assert next(s for s in d.states if s.name == "bulk_concentration").size == 10 * 2
    with pytest.raises(ChromatographyCaseError, match="unknown"):
        chromatography_model({"colum_volume_ml": 1.0})
    with pytest.raises(ChromatographyCaseError, match="available"):
        chromatography_model({"case": "no_such_case"})
    with pytest.raises(DeclarationError, match="column_porosity"):
        chromatography_model({"case": "grm_langmuir_pulse", "parameters": {"column_porosity": 1.5}})


def test_registry_entry_when_registry_exists():
    registry = pytest.importorskip("process_models.registry")
    import process_models.chromatography  # noqa: F401  (registers on import)

    names = [n for n in dir(registry) if not n.startswith("_")]
    getter = next((getattr(registry, n) for n in ("get_model", "model_factory", "lookup") if n in names), None)
    if getter is None:
        pytest.skip(f"registry has no lookup function among {names}")
    assert getter("chromatography_column") is not None


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
    sma = StericMassActionIsotherm((0, 4), (0, 10), (0, 1), (0, 1), 1200.0)
    with pytest.raises(IsothermError, match="rapid_equilibrium"):
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
