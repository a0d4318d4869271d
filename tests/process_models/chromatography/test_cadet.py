"""Chromatography column models against CADET-Core reference chromatograms.

The references in ``tests/reference/chromatography/<case>.json`` were computed by CADET-Core 5.1 (PyPI wheel
``cadet-core``, driven by ``cadet-python``) with ``tools/cadet_reference.py`` from the same case files as the
model here (``examples/cases/chromatography_<case>.toml``).

Matched discretisation: both sides use the *same* scheme at the same resolution — cell-centred finite volumes,
WENO with k = 2 (third order, ``WENO_ORDER = 2``, ``BOUNDARY_MODEL = 0``, eps = 1e-10) for axial convection,
central dispersion, equidistant spherical shells in the particle with the film and the outer half shell in
series, and the same BDF tolerances (rtol 1e-6, atol 1e-8). The remaining difference is time-integration error
(measured ~1e-5 relative L2); the brief's bound, relative L2 <= 1e-3 per component, is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from process_models.chromatography.column import load_case

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference" / "chromatography"
CASES = ["ed_linear_pulse", "langmuir_lrmp_breakthrough", "grm_langmuir_pulse", "sma_load_wash_elute"]
TOLERANCE = 1e-3


def _reference(case: str) -> dict:
    return json.loads((REFERENCE_DIR / f"{case}.json").read_text())


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


@pytest.mark.parametrize("case_name", CASES)
def test_outlet_curves_match_cadet_at_matched_discretisation(case_name):
    ref = _reference(case_name)
    case = load_case(case_name)
    disc = case.column.discretisation
    # the stored curves must belong to this case file's discretisation (regenerate with tools/cadet_reference.py)
    assert (ref["axial_cells"], ref["weno_order"]) == (disc.axial_cells, disc.weno_order)
    if case.column.layout.shells > 1:
        assert ref["particle_cells"] == disc.particle_cells
    assert ref["transport"] == case.column.spec.transport.value
    result = case.simulate(times_s=np.asarray(ref["times_s"]))
    errors = {c: relative_l2(result.output(f"outlet_concentration_{c}"), np.asarray(ref["outlet"][c]))
              for c in case.column.components}
    assert set(errors) == set(ref["outlet"])
    assert max(errors.values()) <= TOLERANCE, errors


def test_sma_case_elutes_proteins_in_cadet_order_during_the_gradient():
    """The LWE benchmark's qualitative result: ribonuclease, then cytochrome, then lysozyme, all in the gradient."""
    ref = _reference("sma_load_wash_elute")
    times = np.asarray(ref["times_s"])
    peaks = {c: times[int(np.argmax(ref["outlet"][c]))] for c in ("lysozyme", "cytochrome", "ribonuclease")}
    assert 90.0 < peaks["ribonuclease"] < peaks["cytochrome"] < peaks["lysozyme"] < 1500.0


def _cadet_tool():
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "tools" / "cadet_reference.py"
    spec = importlib.util.spec_from_file_location("cadet_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cadet_input_describes_the_same_column_and_inlet():
    """The CADET translation (tools/cadet_reference.py) carries the case file's model, discretisation and program."""
    case = load_case("sma_load_wash_elute")
    cadet = _cadet_tool().cadet_input(case)
    unit = cadet["model"]["unit_000"]
    assert unit["unit_type"] == "GENERAL_RATE_MODEL"
    assert unit["adsorption_model"] == "STERIC_MASS_ACTION"
    assert unit["adsorption"]["sma_nu"] == [0.0, 4.7, 5.29, 3.7]
    assert unit["init_c"] == [50.0, 0.0, 0.0, 0.0] and unit["init_q"] == [1200.0, 0.0, 0.0, 0.0]
    disc = unit["discretization"]
    assert (disc["ncol"], disc["npar"], disc["weno"]["weno_order"]) == (32, 8, 2)
    flow = cadet["model"]["connections"]["switch_000"]["connections"][-1]
    assert flow / (unit["cross_section_area"] * unit["col_porosity"]) == pytest.approx(5.75e-4)
    sections = cadet["solver"]["sections"]
    assert sections["section_times"][0] == 0.0 and sections["section_times"][-1] == 1500.0
    last = cadet["model"]["unit_001"][f"sec_{sections['nsec'] - 1:03d}"]
    assert last["const_coeff"][0] == pytest.approx(100.0) and last["lin_coeff"][0] == pytest.approx(0.2)
    assert cadet["solver"]["time_integrator"]["reltol"] == case.rtol


def test_process_steps_with_flow_changes_match_cadet():
    """Five steps at 1 / 2 / 1 / 1 / 2 mL/min, a gradient as polynomial coefficients: CADET-Core runs the same
    programme as one connection switch per step (tools/cadet_reference.py), at the stored reference's grid."""
    ref = _reference("sma_process_steps")
    case = load_case("sma_process_steps", discretisation_overrides={"axial_cells": ref["axial_cells"],
                                                                    "particle_cells": ref["particle_cells"]})
    result = case.simulate(times_s=np.asarray(ref["times_s"]))
    errors = {c: relative_l2(result.output(f"outlet_concentration_{c}"), np.asarray(ref["outlet"][c]))
              for c in case.column.components}
    assert max(errors.values()) <= TOLERANCE, errors
    cadet = _cadet_tool().cadet_input(case)
    switches = cadet["model"]["connections"]
    flows = [switches[f"switch_{k:03d}"]["connections"][-1] for k in range(switches["nswitches"])]
    assert switches["nswitches"] == 5
    assert flows[1] == pytest.approx(2 * flows[0]) and flows[2] == pytest.approx(flows[0])
    assert cadet["model"]["unit_001"]["sec_002"]["lin_coeff"][0] == pytest.approx(0.2)


def test_dg_case_matches_cadet_dg_and_both_match_the_exact_outlet():
    """The shipped DG case (GRM, linear, pulse) against CADET-Core's own DG run of it (tools/cadet_reference.py:
    SPATIAL_METHOD = DG, same POLYDEG / NELEM, a DG particle of PAR_POLYDEG = the collocation points) and both
    against the exact (Laplace) outlet: three independent answers within 1e-5 of each other."""
    from process_models.chromatography.laplace_reference import linear_component, pulse_response

    ref = _reference("grm_linear_pulse_dg")
    assert ref["method"] == "dg"
    case = load_case("grm_linear_pulse_dg")
    every = 10  # the exact outlet at every 10th output time (51 of 501): the inverse transform is the slow part
    times = np.asarray(ref["times_s"])[::every]
    ours = case.simulate(times_s=times).output("outlet_concentration_product")
    cadet = np.asarray(ref["outlet"]["product"])[::every]
    exact = pulse_response(linear_component(case.column.spec, case.column.isotherm, "product"), times, 1.0, 10.0,
                           method="talbot")
    assert relative_l2(ours, exact) < 1e-5 and relative_l2(cadet, exact) < 1e-5
    assert relative_l2(ours, cadet) < 1e-5
