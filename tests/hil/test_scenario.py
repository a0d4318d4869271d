"""Scenario files load and are validated all at once; KPIs, the JSON report and the PNG plot from a plant timeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hil.faults import FaultKind
from hil.plant import make_plant
from hil.scenario import STRATEGIES, ScenarioError, load_scenario
from hil.scenario_kpis import TimelineSample, compute_kpis, supersaturation_violation
from hil.scenario_report import ScenarioReport, plot_report, write_report
from hil.scenario_runner import scenario_summary
from tests.conftest import REPO_ROOT

SCENARIOS = REPO_ROOT / "examples" / "scenarios"
REQUIRED = ("nominal_mpc", "mismatch_plus20_mpc", "mismatch_minus20_mpc", "dropout_mpc", "nominal_linear_cooling",
            "nominal_natural_cooling", "mismatch_plus20_linear_cooling", "commissioning_1_nominal_mpc",
            "commissioning_2_fitted_mpc")


@pytest.mark.parametrize("name", REQUIRED)
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    assert scenario.name == name
    assert scenario.line_path == (REPO_ROOT / "examples" / "pilot_line.toml").resolve()
    assert scenario.unit == "crystallizer" and scenario.strategy in STRATEGIES
    assert scenario.mode == ("mpc" if scenario.strategy == "mpc" else "auto")
    assert scenario.batch_duration_s == 7200.0 and scenario.speed == 200.0
    assert scenario.recipe.initial_temperature_c > scenario.recipe.final_temperature_c


def test_mismatch_and_dropout_scenarios_say_what_they_change() -> None:
    plus = load_scenario(SCENARIOS / "mismatch_plus20_mpc.toml")
    minus = load_scenario(SCENARIOS / "mismatch_minus20_mpc.toml")
    assert plus.plant["growth_rate_factor"] == 1.2 and minus.plant["growth_rate_factor"] == 0.8
    dropout = load_scenario(SCENARIOS / "dropout_mpc.toml")
    (fault,) = dropout.faults
    assert fault.kind is FaultKind.MEASUREMENT_DROPOUT and fault.tag == "solute_concentration"
    assert 0 < fault.start_s < fault.end_s < dropout.batch_duration_s
    assert load_scenario(SCENARIOS / "nominal_mpc.toml").with_speed(50).speed == 50.0


BAD = """
[scenario]
name = "broken"
line = "{line}"
unit = "crystallizer"
strategy = "fuzzy_logic"
batch_duration_s = -5
target_d43_um = 400
colour = "blue"

[plant]
growth_factor = 1.2

[recipe]
initial_temperature_c = 20
final_temperature_c = 40

[[faults]]
kind = "measurement_dropout"
tag = "ph"
start_s = 100
end_s = 50

[[faults]]
kind = "earthquake"
start_s = 0
end_s = 10
"""


def test_every_error_is_reported_with_file_key_got_and_expected(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BAD.format(line=(REPO_ROOT / "examples" / "pilot_line.toml").as_posix()))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    errors = info.value.errors
    expected_keys = ["scenario.colour", "scenario.strategy", "scenario.batch_duration_s", "plant",
                     "recipe.final_temperature_c", "faults[0].end_s", "faults[0].tag", "faults[1].kind"]
    for key in expected_keys:
        assert any(e.startswith(f"{path}: {key}: got ") for e in errors), (key, errors)
    assert all("expected" in e for e in errors)
    assert any("'growth_factor'" in e and "growth_rate_factor" in e for e in errors)
    assert any("'fuzzy_logic'" in e and "natural_cooling" in e for e in errors)


def test_missing_line_unit_and_file_are_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[scenario]\nname = "x"\nline = "nowhere.toml"\nunit = "crystallizer"\nstrategy = "mpc"\n'
                    'batch_duration_s = 10\ntarget_d43_um = 300\n[recipe]\ninitial_temperature_c = 40\n'
                    'final_temperature_c = 25\n')
    with pytest.raises(ScenarioError, match=r"scenario\.line: got '.*nowhere\.toml'; expected a readable line"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")
    path.write_text("[scenario\n")
    with pytest.raises(ScenarioError, match="TOML syntax"):
        load_scenario(path)


def test_the_commissioning_pair_runs_one_plant_the_second_batch_on_a_set_fitted_from_the_first() -> None:
    nominal = load_scenario(SCENARIOS / "commissioning_1_nominal_mpc.toml")
    fitted = load_scenario(SCENARIOS / "commissioning_2_fitted_mpc.toml")
    assert nominal.parameter_set == "nominal" and fitted.parameter_set == "latest" and nominal.fit is None
    assert fitted.fit is not None and fitted.fit.batch_of == nominal.path.resolve()
    assert dict(nominal.plant) == dict(fitted.plant) and nominal.plant["solubility_offset_kg_per_kg"] == -0.002
    assert fitted.fit.method == "ml" and "solubility_coefficient_0" in fitted.fit.estimate
    assert fitted.fit.delay_s == {tag: nominal.plant["measurement_delay_s"] for tag in
                                  ("solute_concentration", "chord_count_rate", "mean_chord_length")}
    summary = scenario_summary(fitted)
    assert summary["parameter_set"] == "latest" and summary["fit"]["estimate"] == list(fitted.fit.estimate)
    assert fitted.with_parameter_set("0123456789abcdef").parameter_set == "0123456789abcdef"


def commissioning_pair(tmp_path: Path, first_extra: str = "", fit: str = "") -> Path:
    """The shipped pair copied to ``tmp_path`` (line made absolute), ``first_extra`` appended to batch 1 and
    ``fit`` replacing batch 2's [fit] table; batch 2's path."""
    line = (REPO_ROOT / "examples" / "pilot_line.toml").as_posix()
    for name, extra in (("commissioning_1_nominal_mpc", first_extra), ("commissioning_2_fitted_mpc", "")):
        text = (SCENARIOS / f"{name}.toml").read_text().replace('line = "../pilot_line.toml"', f'line = "{line}"')
        if fit and name.startswith("commissioning_2"):
            text = text[:text.index("[fit]")] + fit
        (tmp_path / f"{name}.toml").write_text(text + extra)
    return tmp_path / "commissioning_2_fitted_mpc.toml"


def test_fit_and_parameter_set_keys_are_checked_with_the_rest(tmp_path: Path) -> None:
    path = commissioning_pair(tmp_path, fit='[fit]\nbatch_of = "commissioning_1_nominal_mpc.toml"\nestimate = []\n'
                              'method = "guess"\ndelay_s = { ph = 3, chord_count_rate = -1 }\nprofile = "yes"\n'
                              'colour = 1\n')
    path.write_text(path.read_text().replace('parameter_set = "latest"', 'parameter_set = "newest"'))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    errors = info.value.errors
    for key in ("scenario.parameter_set", "fit.estimate", "fit.method", "fit.delay_s.ph",
                "fit.delay_s.chord_count_rate", "fit.profile", "fit.colour"):
        assert any(e.startswith(f"{path}: {key}: got ") for e in errors), (key, errors)
    assert any("'newest'" in e and "nominal, latest or a parameter set id" in e for e in errors)
    assert any("a measured tag of the unit (chord_count_rate" in e for e in errors)


def test_a_fit_names_another_scenario_of_the_same_plant_that_is_not_fitted_itself(tmp_path: Path) -> None:
    path = commissioning_pair(tmp_path, first_extra="\n[fit]\nbatch_of = \"x.toml\"\nestimate = [\"a\"]\n")
    with pytest.raises(ScenarioError, match=r"fit\.batch_of: got 'commissioning_1_nominal_mpc\.toml'; expected a "
                                            r"valid scenario \(.*: fit: got 'a \[fit\] table'; expected none"):
        load_scenario(path)
    path = commissioning_pair(tmp_path)
    first = tmp_path / "commissioning_1_nominal_mpc.toml"
    first.write_text(first.read_text().replace("growth_rate_factor = 1.4", "growth_rate_factor = 1.3"))
    with pytest.raises(ScenarioError, match=r"same line, unit and \[plant\] as this one .*its \[plant\] differ"):
        load_scenario(path)
    path.write_text(path.read_text().replace('batch_of = "commissioning_1_nominal_mpc.toml"',
                                             'batch_of = "commissioning_2_fitted_mpc.toml"'))
    with pytest.raises(ScenarioError, match=r"fit\.batch_of: got .*; expected another scenario"):
        load_scenario(path)


# ---------------------------------------------------------------- KPIs, report, plot from a real plant timeline
def linear_cooling_timeline(duration_s: float = 3600.0, sample_s: float = 60.0) -> list[TimelineSample]:
    plant = make_plant("crystallizer", {"volume_m3": 0.02}, seed=2)
    timeline = []
    t = 0.0
    while True:
        setpoint = 40.0 - 15.0 * min(t / duration_s, 1.0)
        twin = {"estimated_d43": plant.truth()["d43_um"] * 1.02, "estimated_d43_std": 5.0,
                "estimated_supersaturation": plant.truth()["supersaturation"], "solve_time_ms": 40.0 + t / 100.0}
        timeline.append(TimelineSample(t, t / 200.0, plant.truth(), twin, setpoint,
                                       ("dropout",) if 600 <= t < 900 else ()))
        if t >= duration_s:
            return timeline
        for _ in range(int(sample_s / 5.0)):
            plant.step(5.0, {"jacket_temperature_setpoint": setpoint, "agitator_speed_setpoint": 300.0})
        t += sample_s


@pytest.fixture(scope="module")
def timeline() -> list[TimelineSample]:
    return linear_cooling_timeline()


def test_kpis_come_from_the_true_final_state(timeline) -> None:
    last = timeline[-1].truth
    kpis = compute_kpis(timeline, target_d43_um=400.0, max_supersaturation=0.05, batch_duration_s=3600.0,
                        solve_times_ms=[10.0, 20.0, 30.0, 40.0, 1000.0],
                        counters={"setpoints_written": 60, "fallbacks_used": 1, "solves": 5, "failed_solves": 0})
    assert kpis["final_d43_um"] == last["d43_um"]
    assert kpis["d43_error_um"] == pytest.approx(abs(last["d43_um"] - 400.0))
    assert kpis["d43_error_percent"] == pytest.approx(kpis["d43_error_um"] / 4.0)
    assert kpis["estimated_final_d43_um"] == pytest.approx(1.02 * last["d43_um"])
    assert kpis["final_cv"] == last["cv"] and kpis["yield"] == last["yield"] > 0.1
    assert 0.0 < kpis["fines_fraction"] < 0.2
    assert 0.0 < kpis["nucleated_number_fraction"] < 1.0
    assert kpis["solve_time_ms"] == {"count": 5, "median": 30.0, "p95": pytest.approx(808.0), "max": 1000.0}
    assert (kpis["setpoints_written"], kpis["fallbacks_used"]) == (60, 1)
    assert kpis["supersaturation_violation"]["max_supersaturation"] == pytest.approx(
        max(s.truth["supersaturation"] for s in timeline))


def test_supersaturation_violation_is_time_weighted() -> None:
    truths = [{"supersaturation": s} for s in (0.01, 0.08, 0.09, 0.02, 0.07)]
    timeline = [TimelineSample(t, 0.0, truth) for t, truth in zip((0, 100, 200, 300, 400), truths, strict=True)]
    violation = supersaturation_violation(timeline, limit=0.05, batch_duration_s=500.0)
    # above from 100 to 300 and from 400 to the batch end at 500: 300 of 500 s, two excursions
    assert violation == {"time_fraction": pytest.approx(0.6), "max_supersaturation": 0.09, "excursions": 2}


def test_report_json_and_png_are_written(timeline, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "dropout_mpc.toml")
    kpis = compute_kpis(timeline, 400.0, 0.05, 3600.0)
    timeline = [*timeline[:-1], TimelineSample(timeline[-1].batch_time_s, 1.0, timeline[-1].truth,
                                               {"estimated_d43": math.nan, "solve_status": "none"})]
    report = ScenarioReport(scenario_summary(scenario), kpis, timeline, counters={"fallbacks_used": 2},
                            fault_events=[{"fault": "dropout", "action": "start", "plant_time_s": 600.0},
                                          {"fault": "dropout", "action": "end", "plant_time_s": 900.0}])
    json_path, png_path = tmp_path / "out" / "report.json", tmp_path / "out" / "report.png"
    write_report(report, json_path)
    plot_report(report, png_path)
    data = json.loads(json_path.read_text())
    assert data["scenario"]["name"] == "dropout_mpc" and data["scenario"]["faults"]
    assert data["kpis"]["final_d43_um"] == pytest.approx(kpis["final_d43_um"])
    assert data["timeline"][-1]["twin"]["estimated_d43"] is None  # NaN written as null (strict JSON)
    assert len(data["timeline"]) == len(timeline)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_path.stat().st_size > 20_000
