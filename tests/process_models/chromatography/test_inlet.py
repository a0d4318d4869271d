"""Inlet programs: load-wash-elute with step and linear gradients."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.chromatography.inlet import (
    InletProgram,
    InletProgramError,
    InletSection,
    inlet_program_from_inputs,
    load_wash_elute,
)

COMPS = ("salt", "protein")


def test_load_wash_linear_gradient_values():
    program = load_wash_elute(COMPS, {"protein": 1.0}, load_duration_s=10.0, wash_duration_s=80.0,
                              elution_end_s=1500.0, salt_component="salt", wash_salt_mol_per_m3=50.0,
                              elution_salt_start_mol_per_m3=100.0, elution_salt_end_mol_per_m3=382.0)
    assert [s.name for s in program.sections] == ["load", "wash", "elute_gradient"]
    np.testing.assert_allclose(program.concentration_at(5.0), [50.0, 1.0])
    np.testing.assert_allclose(program.concentration_at(10.0), [50.0, 0.0])  # right-continuous at the switch
    np.testing.assert_allclose(program.concentration_at(90.0), [100.0, 0.0])
    np.testing.assert_allclose(program.concentration_at(1500.0), [382.0, 0.0])
    assert program.sections[-1].slopes() == pytest.approx((0.2, 0.0))
    assert program.switching_times() == [10.0, 90.0]
    np.testing.assert_allclose(program.concentration_at(np.array([0.0, 795.0]))[0], [50.0, 241.0])


def test_step_elution_and_gradient_with_hold():
    step = load_wash_elute(COMPS, {"protein": 2.0}, 30.0, 60.0, 300.0, salt_component="salt",
                           wash_salt_mol_per_m3=20.0, elution_salt_start_mol_per_m3=500.0)
    assert [s.name for s in step.sections] == ["load", "wash", "elute"]
    assert step.component_function("salt")(200.0) == 500.0
    held = load_wash_elute(COMPS, {"protein": 2.0}, 30.0, 60.0, 600.0, salt_component="salt",
                           elution_salt_start_mol_per_m3=0.0, elution_salt_end_mol_per_m3=100.0,
                           gradient_duration_s=200.0)
    assert [s.name for s in held.sections][-1] == "elute_hold"
    assert held.concentration_at(590.0)[0] == pytest.approx(100.0)
    assert held.concentration_at(190.0)[0] == pytest.approx(50.0)


def test_malformed_programs_are_refused_with_the_section_named():
    with pytest.raises(InletProgramError, match="'wash'"):
        InletProgram(COMPS, (InletSection("load", 0.0, (1.0, 1.0)), InletSection("wash", 0.0, (1.0, 0.0))), 10.0)
    with pytest.raises(InletProgramError, match="'load'.*2 values"):
        InletProgram(COMPS, (InletSection("load", 0.0, (1.0,)),), 10.0)
    with pytest.raises(InletProgramError, match="end_time_s"):
        InletProgram(COMPS, (InletSection("load", 0.0, (1.0, 1.0)),), 0.0)
    with pytest.raises(InletProgramError, match="unknown component"):
        load_wash_elute(COMPS, {"proteinn": 1.0}, 10.0, 10.0, 100.0)
    with pytest.raises(InletProgramError, match="missing"):
        inlet_program_from_inputs(COMPS, {"inlet_concentration_salt": 1.0}, 0.0, 10.0)


def test_generic_input_programs_become_exact_sections():
    from process_models.simulator import InputProgram

    inputs = {
        "inlet_concentration_salt": InputProgram((0.0, 90.0, 1500.0), (50.0, 50.0, 332.0), "linear"),
        "inlet_concentration_protein": InputProgram((0.0, 10.0), (1.0, 0.0), "zoh"),
    }
    program = inlet_program_from_inputs(COMPS, inputs, 0.0, 1500.0)
    assert [s.start_time_s for s in program.sections] == [0.0, 10.0, 90.0]
    assert program.sections[2].slopes() == pytest.approx((0.2, 0.0))
    for t in (0.0, 5.0, 10.0, 50.0, 90.0, 700.0, 1500.0):
        expected = [inputs["inlet_concentration_salt"].at(t), inputs["inlet_concentration_protein"].at(t)]
        np.testing.assert_allclose(program.concentration_at(t), expected, rtol=1e-12)
