"""The exact (Laplace) reference and the DG / collocation scheme against it (issue 19, items 1 and 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from process_models.chromatography.column import (
    ChromatographyCaseError,
    build_column,
    column_from_options,
    load_case,
    simulate_column,
)
from process_models.chromatography.inlet import inlet_program_from_inputs
from process_models.chromatography.isotherms import LinearIsotherm
from process_models.chromatography.laplace_reference import (
    linear_component,
    mean_residence_time,
    pulse_response,
    transfer_moments,
)
from process_models.chromatography.transport import BindingMode, ColumnSpec, Discretisation, TransportModel
from process_models.simulator import InputProgram
from tests.process_models.chromatography.test_cadet import _cadet_tool

pytestmark = pytest.mark.shares_module_fixture  # its module-scoped fixture is built once, on one worker

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "chromatography"
PULSE_S = 10.0
TIMES = np.linspace(0.0, 2500.0, 51)
ISOTHERM = LinearIsotherm(adsorption_rate_per_s=(3.55,), desorption_rate_per_s=(0.1,))


def linear_spec(transport: TransportModel, binding: BindingMode = BindingMode.RAPID_EQUILIBRIUM) -> ColumnSpec:
    """CADET's LWE benchmark column (one component, linear binding, H = 35.5)."""
    common = dict(components=("a",), length_m=0.014, interstitial_velocity_m_per_s=5.75e-4,
                  axial_dispersion_m2_per_s=5.75e-8, binding=binding)
    if transport is TransportModel.EQUILIBRIUM_DISPERSIVE:
        return ColumnSpec(transport, total_porosity=0.6, **common)
    return ColumnSpec(transport, column_porosity=0.37, particle_porosity=0.75, particle_radius_m=4.5e-5,
                      film_diffusion_m_per_s=(6.9e-6,), pore_diffusion_m2_per_s=(6.07e-11,), **common)


@pytest.fixture(scope="module")
def exact() -> dict[TransportModel, np.ndarray]:
    # broad peaks: Talbot is exact here (agrees with de Hoog, tested below) and faster
    return {t: pulse_response(linear_component(linear_spec(t), ISOTHERM, "a"), TIMES, 1.0, PULSE_S, method="talbot")
            for t in TransportModel}


def dg_outlet(transport: TransportModel, degree: int, elements: int, points: int) -> np.ndarray:
    column = build_column(linear_spec(transport), ISOTHERM,
                          Discretisation(method="dg", polynomial_degree=degree, elements=elements,
                                         particle_cells=points))
    program = inlet_program_from_inputs(("a",), {"inlet_concentration_a": InputProgram((0.0, PULSE_S), (1.0, 0.0))},
                                        0.0, float(TIMES[-1]))
    return simulate_column(column, program, TIMES, rtol=1e-10, atol=1e-12).outputs[0]


def relative_l2(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("transport", list(TransportModel))
@pytest.mark.parametrize("binding", list(BindingMode))
def test_transfer_function_moments_match_closed_forms(transport, binding):
    col = linear_component(linear_spec(transport, binding), ISOTHERM, "a")
    mass, mean, variance = transfer_moments(col)
    assert mass == pytest.approx(1.0, abs=1e-12)
    assert mean == pytest.approx(mean_residence_time(col), rel=1e-8)
    assert variance > 0


def test_inverted_pulse_conserves_mass_and_has_the_transfer_functions_moments(exact):
    col = linear_component(linear_spec(TransportModel.GENERAL_RATE), ISOTHERM, "a")
    y = exact[TransportModel.GENERAL_RATE]
    _, mean, variance = transfer_moments(col)
    area = np.trapezoid(y, TIMES)
    first = np.trapezoid(y * TIMES, TIMES) / area
    second = np.trapezoid(y * (TIMES - first) ** 2, TIMES) / area
    assert area == pytest.approx(PULSE_S, rel=1e-4)                       # mass in = mass out
    assert first == pytest.approx(mean + PULSE_S / 2, rel=1e-4)
    assert second == pytest.approx(variance + PULSE_S ** 2 / 12, rel=1e-3)


def test_talbot_and_de_hoog_agree():
    col = linear_component(linear_spec(TransportModel.LUMPED_RATE_WITH_PORES), ISOTHERM, "a")
    times = np.array([300.0, 450.0, 700.0])
    talbot = pulse_response(col, times, 1.0, PULSE_S, method="talbot")
    de_hoog = pulse_response(col, times, 1.0, PULSE_S, method="dehoog")
    assert np.max(np.abs(talbot - de_hoog)) < 1e-8 * np.max(talbot)


@pytest.mark.parametrize("transport", list(TransportModel))
def test_dg_meets_the_exact_solution_to_1e_5(transport, exact):
    assert relative_l2(dg_outlet(transport, 6, 8, 6), exact[transport]) <= 1e-5


def test_dg_error_falls_with_degree_and_elements(exact):
    ref = exact[TransportModel.GENERAL_RATE]
    errors = [relative_l2(dg_outlet(TransportModel.GENERAL_RATE, p, e, q), ref) for p, e, q in
              [(2, 4, 2), (3, 4, 3), (4, 8, 4), (5, 8, 5)]]
    assert all(b < a / 3 for a, b in zip(errors, errors[1:], strict=False)), errors


def test_dg_langmuir_grm_agrees_with_the_fine_finite_volume_reference():
    ref = json.loads((REFERENCE / "grm_langmuir_pulse_fine.json").read_text())
    case = load_case("grm_langmuir_pulse", {"method": "dg", "polynomial_degree": 4, "elements": 8,
                                            "particle_cells": 4})
    result = case.simulate(times_s=np.asarray(ref["times_s"]))
    for k, c in enumerate(case.column.components):
        # the fine FV (128 x 16 cells) carries ~2e-3 discretisation error of its own
        assert relative_l2(result.outputs[k], np.asarray(ref["outlet"][c])) < 5e-3


@pytest.mark.parametrize("key, value, expected", [("method", "spectral", "'method'"),
                                                  ("polynomial_degree", 0, "'polynomial_degree'"),
                                                  ("elements", 1.5, "'elements'")])
def test_bad_dg_options_name_the_key(key, value, expected):
    options = {"case": "ed_linear_pulse", "method": "dg", key: value}
    with pytest.raises(ChromatographyCaseError, match=expected):
        column_from_options(options)


def test_reference_refuses_a_nonlinear_isotherm():
    case = load_case("grm_langmuir_pulse")
    with pytest.raises(ValueError, match="expected 'linear'"):
        linear_component(case.column.spec, case.column.isotherm, "product")


def test_dg_with_kinetic_binding_and_a_step_inlet_meets_the_exact_breakthrough():
    spec = linear_spec(TransportModel.EQUILIBRIUM_DISPERSIVE, BindingMode.KINETIC)
    times = np.linspace(0.0, 1500.0, 31)
    exact = pulse_response(linear_component(spec, ISOTHERM, "a"), times, 2.0, float("inf"), method="talbot")
    column = build_column(spec, ISOTHERM, Discretisation(method="dg", polynomial_degree=6, elements=8))
    program = inlet_program_from_inputs(("a",), {"inlet_concentration_a": 2.0}, 0.0, float(times[-1]))
    outlet = simulate_column(column, program, times, rtol=1e-10, atol=1e-12).outputs[0]
    assert exact[-1] == pytest.approx(2.0, rel=1e-3)                     # saturated: the inlet concentration
    assert relative_l2(outlet, exact) <= 1e-5


def test_cadet_mapping_carries_the_dg_scheme():
    """CADET's DG input: the same polynomial degree and elements along the column, a DG particle of
    PAR_POLYDEG = the collocation points (tools/cadet_reference.py)."""
    case = load_case("grm_linear_pulse_dg")
    disc = _cadet_tool().cadet_input(case)["model"]["unit_000"]["discretization"]
    assert disc["spatial_method"] == "DG"
    assert (disc["polydeg"], disc["nelem"], disc["par_polydeg"]) == (5, 8, 5)


def test_non_numeric_degree_names_the_key():
    with pytest.raises(ChromatographyCaseError, match="'polynomial_degree'"):
        column_from_options({"case": "ed_linear_pulse", "method": "dg", "polynomial_degree": "four"})


def test_dg_on_the_sharp_ed_case_beats_the_fine_finite_volumes_against_de_hoog():
    """ed_linear_pulse: Pe = 1000 and a rectangular inlet (a delay-dominated response, de Hoog's inversion)."""
    ref = json.loads((REFERENCE / "ed_linear_pulse_fine.json").read_text())
    times = np.asarray(ref["times_s"])
    window = np.flatnonzero((times >= 180.0) & (times <= 300.0))[::2]    # the product peak, every 4 s
    case = load_case("ed_linear_pulse", {"method": "dg", "polynomial_degree": 5, "elements": 32})
    dg = simulate_column(case.column, case.program, times[: window[-1] + 1], rtol=1e-9, atol=1e-12).outputs[0]
    exact = pulse_response(linear_component(case.column.spec, case.column.isotherm, "product"), times[window],
                           1.0, 20.0, digits=15)
    fine_fv = np.asarray(ref["outlet"]["product"])[window]              # 1600 cells, WENO3 (CADET)
    assert relative_l2(dg[window], exact) <= 2e-5 < relative_l2(fine_fv, exact)


def test_the_dg_case_file_runs_and_meets_the_exact_solution():
    case = load_case("grm_linear_pulse_dg")
    disc = case.column.discretisation
    assert disc.dg and case.column.layout.axial_cells == disc.elements * (disc.polynomial_degree + 1)
    times = np.linspace(0.0, 2500.0, 26)
    outlet = case.simulate(times_s=times).outputs[0]
    exact = pulse_response(linear_component(case.column.spec, case.column.isotherm, "product"), times, 1.0, 10.0,
                           method="talbot")
    assert relative_l2(outlet, exact) <= 1e-5


def test_dg_keys_without_the_dg_method_are_refused():
    with pytest.raises(ChromatographyCaseError, match=r"\['elements', 'polynomial_degree'\] apply only with method"):
        column_from_options({"case": "ed_linear_pulse", "polynomial_degree": 4, "elements": 8})
