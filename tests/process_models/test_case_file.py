"""Case files name a unit kind, its model options, initial state and input programs; bad files list every error."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from linetwin_cli.simulate import cli_simulate
from process_models.case_file import CaseFileError, load_case, simulate_case
from process_models.declaration import Equations, ModelDeclaration, Parameter, Variable
from process_models.registry import UNIT_KINDS, UnitKind, UnknownModelKindError, known_kinds, model_for_kind
from process_models.simulator import InputProgram

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cases" / "mixing_tank.toml"


def test_example_case_runs_and_writes_a_csv(tmp_path):
    out = tmp_path / "tank.csv"
    result = simulate_case(EXAMPLE, until_s=1200.0, out_csv=out, progress=False)
    assert result.times_s[-1] == 1200.0 and result.times_s[1] - result.times_s[0] == 10.0
    temperature = result.state("temperature")
    assert temperature[-1] > temperature[0] + 5.0               # jacket setpoint went to 60 degC at 600 s
    assert result.state("level")[-1] == pytest.approx(1.0, rel=1e-6)   # feed unchanged before 1800 s
    rows = list(csv.reader(out.open()))
    assert rows[0][:3] == ["time [s]", "level [m]", "concentration [kg/m3]"]
    assert len(rows) == 1 + 121


def test_case_programs_and_defaults_are_loaded():
    case = load_case(EXAMPLE)
    assert case.kind == "mixing_tank" and case.until_s == 3600.0
    assert isinstance(case.inputs["inlet_flow"], InputProgram)
    assert case.inputs["feed_concentration"].interpolation == "linear"
    assert case.defaulted_inputs == ("feed_temperature",)
    assert case.inputs["feed_temperature"] == pytest.approx(293.15)
    assert case.times_s(25.0) == pytest.approx([0.0, 10.0, 20.0, 25.0])


def test_every_error_is_listed_with_its_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("""
[case]
name = "bad"
kind = "mixing_tank"
until_s = -5
output_interval_s = 10
colour = "red"

[model]
jacket_area_m2 = 4.0

[initial_state]
level = 1.0
concentration = "high"
temperature = 300.0
jacket_temperatur = 300.0

[inputs.inlet_flow]
times_s = [0, 100]
values = [0.001]

[inputs.agitator_speed]
value = 2.0
interpolation = "zoh"

[inputs.stirrer]
value = 1.0
""")
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    text = str(info.value)
    assert str(path) in text
    expected = [
        "[case] 'colour': unknown key",
        "[case] 'until_s': expected a number of seconds > start_s",
        "[initial_state] 'concentration': expected a number in kg/m3",
        "[initial_state] 'jacket_temperatur': not a state of 'mixing_tank'",
        "[initial_state] 'jacket_temperature': missing",
        "[inputs.inlet_flow] 'values': expected 2 values",
        "[inputs.agitator_speed]: give either 'value' or 'times_s'/'values', not both",
        "[inputs.stirrer]: not an input of 'mixing_tank'",
        "[inputs.jacket_temperature_setpoint]: missing",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert len(info.value.errors) == len(expected)


def test_unknown_kind_and_bad_model_options_are_reported(tmp_path):
    path = tmp_path / "kind.toml"
    path.write_text('[case]\nkind = "mixing_tonk"\nuntil_s = 10\noutput_interval_s = 1\n[initial_state]\n')
    with pytest.raises(CaseFileError, match=r"\[case\] 'kind': unknown model kind 'mixing_tonk'"):
        load_case(path)
    path.write_text('[case]\nkind = "mixing_tank"\nuntil_s = 10\noutput_interval_s = 1\n'
                    '[model]\njacket_area = 3.0\n[initial_state]\n')
    with pytest.raises(CaseFileError, match=r"\[model\]: mixing_tank: unknown option\(s\) \['jacket_area'\]"):
        load_case(path)
    path.write_text("[case\n")
    with pytest.raises(CaseFileError, match="not valid TOML"):
        load_case(path)


def test_cli_prints_final_values_with_units(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert cli_simulate([str(EXAMPLE), "--until", "300", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "case 'feed_tank_heat_up' (mixing_tank): simulated 300 s" in printed
    assert "temperature" in printed and " K" in printed and "agitator_power" in printed
    assert out.exists()


def test_cli_returns_2_and_lists_errors_for_a_bad_file(tmp_path, capsys):
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert cli_simulate([str(path)]) == 2
    err = capsys.readouterr().err
    assert "[case]: missing table" in err and "[initial_state]: missing table" in err


def _decay_factory(options):
    rate = float(options.get("rate_per_s", 0.1))
    return ModelDeclaration(
        name="decay", description="first-order decay", states=(Variable("amount", "kg", "amount"),), inputs=(),
        parameters=(Parameter("rate", "1/s", rate, "decay rate", lower=0.0),), outputs=(),
        equations=lambda s: Equations(derivatives={"amount": -s.p["rate"] * s.x["amount"]}),
    )


@pytest.fixture
def decay_kind(monkeypatch):
    """A kind is one entry of the declared table, naming its factory by module path."""
    entry = UnitKind("test_decay", "first-order decay (test)", model=f"{__name__}:_decay_factory", line_unit=False)
    monkeypatch.setitem(UNIT_KINDS, "test_decay", entry)  # type: ignore[index]
    return "test_decay"


def test_registered_kind_is_usable_from_a_case_file(tmp_path, decay_kind):
    assert "test_decay" in known_kinds()
    assert model_for_kind("test_decay", {"rate_per_s": 0.5}).parameter_values()["rate"] == 0.5
    path = tmp_path / "decay.toml"
    path.write_text('[case]\nkind = "test_decay"\nuntil_s = 10\noutput_interval_s = 1\n'
                    '[model]\nrate_per_s = 0.2\n[initial_state]\namount = 2.0\n')
    result = simulate_case(path, progress=False)
    assert result.state("amount") == pytest.approx(2.0 * np.exp(-0.2 * result.times_s), rel=1e-6)


def test_registry_refuses_unknown_kinds_and_names_unimportable_parts(monkeypatch):
    with pytest.raises(UnknownModelKindError, match="unknown model kind 'boiler'"):
        model_for_kind("boiler", {})
    monkeypatch.setitem(UNIT_KINDS, "broken", UnitKind("broken", "x", model="process_models.nowhere:factory"))
    with pytest.raises(UnknownModelKindError, match="'process_models.nowhere:factory', which could not be imported"):
        model_for_kind("broken", {})


def test_every_declared_kind_resolves_its_model_control_plan_and_hil_plants():
    from controllers.plan_registry import control_plan_for_kind
    from hil.plant import plant_models

    stated = {"chromatography_column": {"case": "sma_load_wash_elute"}}  # a column's model must be stated
    for kind, entry in UNIT_KINDS.items():
        assert model_for_kind(kind, stated.get(kind, {})).states, kind
        if entry.control_plan is not None:
            assert control_plan_for_kind(kind).kind == kind
        if entry.hil_plants is not None:
            assert plant_models(kind), kind
