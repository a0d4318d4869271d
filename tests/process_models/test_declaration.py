"""A model declaration compiles to casadi functions with consistent index maps, or is refused clearly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from process_models.declaration import (
    DeclarationError,
    Equations,
    Input,
    ModelDeclaration,
    Parameter,
    Variable,
    compile_model,
)


def _tank(equations=None, states=None, outputs=None) -> ModelDeclaration:
    def default(s):
        return Equations(
            derivatives={
                "temperature": (s.u["jacket_temperature"] - s.x["temperature"]) / s.p["time_constant"],
                "profile": -s.x["profile"] * s.p["decay_rate"],
            },
            outputs={"temperature_celsius": s.x["temperature"] - 273.15, "profile_sum": s.x["profile"][0]
                     + s.x["profile"][1] + s.x["profile"][2]},
        )

    return ModelDeclaration(
        name="tank",
        description="first-order tank with a 3-bin profile",
        states=states or (Variable("temperature", "K", "liquid temperature", lower=0.0),
                          Variable("profile", "kg/m3", "axial profile", size=3)),
        inputs=(Input("jacket_temperature", "K", "jacket temperature"),),
        parameters=(Parameter("time_constant", "s", 120.0, "thermal time constant", lower=1.0, upper=1e4),
                    Parameter("decay_rate", "1/s", 0.01, "decay rate", lower=0.0)),
        outputs=outputs or (Variable("temperature_celsius", "degC", "liquid temperature"),
                            Variable("profile_sum", "kg/m3", "sum of the profile")),
        equations=equations or default,
    )


def test_compiled_functions_evaluate_the_declared_equations():
    model = compile_model(_tank())
    x = model.pack_states({"temperature": 300.0, "profile": [1.0, 2.0, 3.0]})
    u = model.pack_inputs({"jacket_temperature": 360.0})
    p = model.pack_parameters()
    xdot = np.asarray(model.rhs(x, u, p, 0.0)).ravel()
    assert xdot == pytest.approx([0.5, -0.01, -0.02, -0.03])
    y = np.asarray(model.output(x, u, p, 0.0)).ravel()
    assert y == pytest.approx([300.0 - 273.15, 6.0])
    assert (model.nx, model.nu, model.np, model.ny) == (4, 1, 2, 2)


def test_state_jacobian_matches_the_equations():
    model = compile_model(_tank())
    x = model.pack_states({"temperature": 300.0, "profile": 1.0})
    jac = np.asarray(model.state_jacobian(x, [350.0], model.pack_parameters(), 0.0).full())
    assert jac == pytest.approx(np.diag([-1 / 120.0, -0.01, -0.01, -0.01]))


def test_vector_state_unpacks_to_its_rows():
    model = compile_model(_tank())
    x = model.pack_states({"temperature": 300.0, "profile": [1.0, 2.0, 3.0]})
    parts = model.unpack_states(x)
    assert parts["profile"] == pytest.approx([1.0, 2.0, 3.0])
    assert parts["temperature"] == pytest.approx([300.0])


def test_parameter_overrides_are_checked_against_names_and_bounds():
    decl = _tank()
    assert decl.parameter_values({"time_constant": 60.0})["time_constant"] == 60.0
    with pytest.raises(DeclarationError, match="unknown parameter 'time_konstant'"):
        decl.parameter_values({"time_konstant": 60.0})
    with pytest.raises(DeclarationError, match="'time_constant' = 0.5 s outside"):
        decl.parameter_values({"time_constant": 0.5})


def test_missing_derivative_is_refused_naming_the_state():
    def eq(s):
        return Equations(derivatives={"temperature": -s.x["temperature"]},
                         outputs={"temperature_celsius": s.x["temperature"], "profile_sum": s.x["profile"][0]})

    with pytest.raises(DeclarationError, match=r"derivatives missing for states \['profile'\]"):
        compile_model(_tank(equations=eq))


def test_derivative_of_wrong_size_is_refused():
    def eq(s):
        return Equations(derivatives={"temperature": -s.x["temperature"], "profile": s.x["profile"][0]},
                         outputs={"temperature_celsius": s.x["temperature"], "profile_sum": s.x["profile"][0]})

    with pytest.raises(DeclarationError, match="derivative of 'profile' has 1 elements, expected 3"):
        compile_model(_tank(equations=eq))


def test_duplicate_state_names_are_refused():
    states = (Variable("temperature", "K", "a"), Variable("temperature", "K", "b"))
    with pytest.raises(DeclarationError, match="duplicate state name 'temperature'"):
        compile_model(_tank(states=states))


def test_missing_output_expression_is_refused():
    outputs = (Variable("temperature_celsius", "degC", "T"), Variable("pressure", "Pa", "p"))
    with pytest.raises(DeclarationError, match=r"no expression for outputs \['pressure'\]"):
        compile_model(_tank(outputs=outputs))


def test_packing_reports_missing_and_unknown_names():
    model = compile_model(_tank())
    with pytest.raises(DeclarationError, match=r"missing \['profile'\], unknown \['profil'\]"):
        model.pack_states({"temperature": 300.0, "profil": 1.0})
    with pytest.raises(DeclarationError, match="'profile' needs 3 values, got 2"):
        model.pack_states({"temperature": 300.0, "profile": [1.0, 2.0]})


def test_declaration_is_immutable():
    decl = _tank()
    with pytest.raises(AttributeError):
        decl.name = "other"  # type: ignore[misc]
    assert math.isinf(decl.states[1].upper)
