"""The chromatography skid runs its method as process steps from the config (the case files' step vocabulary, one
step parser): the plant's flow and inlet follow each step, the skid's PLC publishes the step and the time left in
it, the twin's mirror reads them over Modbus; bad step tables are refused with the key named, nothing built."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from controllers.chromatography.pooling_plan import parse_pooling_options
from hil.plant import make_plant
from hil.plants.parameters import PlantParameterError
from hil.virtual_plc import VirtualPlc
from plc_adapters.modbus_adapter import ModbusAdapter
from plc_adapters.quality import Quality
from plc_adapters.tag_map import ModbusConnection
from process_models.chromatography.elution_method import ElutionMethod, elution_method_from_table
from process_models.chromatography.inlet import InletProgramError
from tests.conftest import wait_until
from tests.hil.hil_helpers import loopback, pilot_line_unit

DIAMETER_M = 0.009537
"""The pilot skid's bed: 1 mL over the case's 14 mm column length."""
STEPS: list[dict[str, Any]] = [
    {"name": "load", "duration_s": 20.0, "flow_rate_ml_per_min": 1.0,
     "inlet": {"salt": 50.0, "cytochrome": 1.0}},
    {"name": "wash", "duration_s": 30.0, "flow_rate_ml_per_min": 2.0, "inlet": {"salt": 50.0}},
    {"name": "elute", "duration_s": 40.0, "flow_rate_ml_per_min": 0.5, "inlet": {"salt": [100.0, 2.0]}},
]
METHOD = {"salt": "salt", "column_diameter_m": DIAMETER_M, "steps": STEPS}
COARSE = {"polynomial_degree": 1, "elements": 2, "particle_cells": 1}
"""A coarse grid: the test is about the steps, not the column's accuracy."""


def _plant(method: dict[str, Any] = METHOD, **extra: Any) -> Any:
    _, model, _ = pilot_line_unit("capture_column")
    return make_plant("chromatography_column", {**model, "plant_model": "physics", **COARSE, "method": method,
                                                "flow_rate_noise_std_ml_per_min": 0.0, **extra}, seed=0)


def _with_step(k: int, **changes: Any) -> dict[str, Any]:
    steps = [dict(s) for s in STEPS]
    steps[k] = {**steps[k], **changes}
    return {**METHOD, "steps": steps}


@pytest.mark.parametrize(("method", "message"), [
    (_with_step(1, kind="wash"), r"method\.steps step 2 \('wash'\): unknown key\(s\) \['kind'\]"),
    (_with_step(1, flow_rate_ml_per_min=-1.0), r"step 2 \('wash'\): 'flow_rate_ml_per_min' expected a number > 0"),
    (_with_step(0, duration_s=0.0), r"step 1 \('load'\): 'duration_s' expected a number of seconds > 0"),
    (_with_step(2, name="load"), r"step 3 \('load'\): 'name' repeats an earlier step's name"),
    ({"steps": STEPS}, r"'flow_rate_ml_per_min' needs the column's 'column_diameter_m' in the method"),
    ({**METHOD, "gradient_duration_s": 100.0}, r"\['gradient_duration_s'\] with 'steps'; expected the method either"),
    ({**METHOD, "steps": []}, r"method\.steps: expected a non-empty list of step tables"),
    ({**METHOD, "column_diameter_m": -0.01}, r"method\.column_diameter_m: expected a number of metres > 0"),
])
def test_bad_step_tables_are_refused_naming_the_step_and_key(method: dict[str, Any], message: str) -> None:
    with pytest.raises(InletProgramError, match=message):
        elution_method_from_table(method, "method")
    with pytest.raises(PlantParameterError, match=message):  # the skid is not built
        _plant(method)


def test_a_step_naming_a_component_the_column_lacks_and_a_wrong_diameter_are_refused() -> None:
    with pytest.raises(PlantParameterError, match=r"step 1 \('load'\): 'inlet' names unknown component 'insulin'"):
        _plant(_with_step(0, inlet={"insulin": 1.0}))
    with pytest.raises(PlantParameterError, match=r"column_diameter_m = 0.02 m is a bed of 4.398 mL .* expected this "
                                                  r"skid's column_volume_ml = 1 mL \(a diameter of 0.0095365 m\)"):
        _plant({**METHOD, "column_diameter_m": 0.02})


def test_steps_that_end_before_the_fractionation_window_are_refused() -> None:
    control = {"target": "cytochrome", "impurities": ["lysozyme"], "window_start_s": 10.0, "window_end_s": 100.0,
               "uv_start_level_mau": 50.0, "uv_stop_level_mau": 30.0, "method": METHOD}
    tags = {"run_time", "outlet_uv_absorbance", "outlet_conductivity", "cut_start_time", "cut_stop_time"}
    plan, issues = parse_pooling_options(control, "units.capture_column.control", tags)
    assert plan is None
    assert issues == [("units.capture_column.control.method.steps", "steps ending at 90 s of run time",
                       "steps that cover the run: to the fractionation window's end (window_end_s = 100 s)")]
    plan, issues = parse_pooling_options({**control, "window_end_s": 90.0}, "units.capture_column.control", tags)
    assert issues == [] and plan is not None and plan.method.step_names() == ("load", "wash", "elute")


def test_the_old_method_keys_are_the_same_programme_as_their_steps() -> None:
    components = ("salt", "lysozyme", "cytochrome", "ribonuclease")
    legacy = ElutionMethod(feed_mol_per_m3={"cytochrome": 1.0, "ribonuclease": 0.3, "lysozyme": 0.3})
    steps = elution_method_from_table({"steps": [
        {"name": "load", "duration_s": 10.0, "inlet": {"salt": 50.0, "cytochrome": 1.0, "ribonuclease": 0.3,
                                                       "lysozyme": 0.3}},
        {"name": "wash", "duration_s": 80.0, "inlet": {"salt": 50.0}},
        {"name": "elute", "duration_s": 1410.0, "inlet": {"salt": [100.0, 0.2]}}]}, "method")
    t = [0.0, 5.0, 10.0, 50.0, 90.0, 500.0, 999.0, 1600.0]
    for end in (1000.0, 2000.0):  # inside the steps, and held after them
        a, b = legacy.program(components, end), steps.program(components, end)
        assert [s.start_time_s for s in a.sections] == [s.start_time_s for s in b.sections]
        times = [x for x in t if x <= end]
        assert b.concentration_at(times) == pytest.approx(a.concentration_at(times), rel=1e-14, abs=1e-14)
    assert steps.elution_start_s == legacy.elution_start_s == 90.0


async def test_the_skid_runs_each_steps_flow_and_its_plc_publishes_the_step_as_the_mirror_reads_it() -> None:
    plant = _plant()
    area_eps = math.pi * DIAMETER_M ** 2 / 4.0 * plant.parameter_values["column_porosity"]
    _, _, tags = pilot_line_unit("capture_column")
    plc = VirtualPlc("capture_column", loopback(), tags, plant, speed=1.0, step_s=1.0)
    plc.lockstep = True
    await plc.start()
    adapter = ModbusAdapter("capture_column", ModbusConnection("127.0.0.1", plc.port, unit_id=1), tags, 0.02)
    await adapter.start()
    try:
        seen: list[tuple[float, float, float, float]] = []
        for target_s, step, left_s, flow in ((10.0, 1, 10.0, 1.0), (30.0, 2, 20.0, 2.0), (60.0, 3, 30.0, 0.5),
                                             (95.0, 3, 0.0, 0.5)):
            plc.advance(target_s - plc.plant_time_s)
            # the plant: the model's velocity is this step's flow through the bed, u = Q / (A eps)
            assert plant.interstitial_velocity_m_per_s == pytest.approx(flow * 1e-6 / 60.0 / area_eps, rel=2e-3)

            def mirrored(t: float = target_s) -> bool:
                sample = adapter.last_samples.get("run_time")
                return sample is not None and sample.quality is Quality.GOOD and sample.value == pytest.approx(t)

            await wait_until(mirrored, timeout_s=10.0, what=f"the mirror's sample at run time {target_s} s")
            got = {n: adapter.last_samples[n].value for n in ("method_step", "method_step_remaining_time",
                                                             "flow_rate")}
            assert got["method_step"] == step
            assert got["method_step_remaining_time"] == pytest.approx(left_s, abs=1e-3)
            assert got["flow_rate"] == pytest.approx(flow, rel=2e-3)
            seen.append((target_s, step, left_s, flow))
        assert len(seen) == 4
        assert plant.pumped_volume_ml == pytest.approx((20 * 1.0 + 30 * 2.0 + 45 * 0.5) / 60.0, rel=2e-3)
    finally:
        await adapter.stop()
        await plc.stop()


def test_a_line_configs_skid_method_is_checked_and_stated_once() -> None:
    import tomllib

    from linetwin_cli.bench_launcher import bench_issues
    from tests.hil.hil_helpers import PILOT_LINE
    from twin_server.config import parse_line_config, plant_parameters
    from twin_server.line_build import build_line

    data = tomllib.loads(PILOT_LINE.read_text())
    column = data["units"]["capture_column"]
    assert [s["name"] for s in column["plant"]["method"]["steps"]] == ["load", "wash", "elute", "strip",
                                                                       "re_equilibrate"]
    column["plant"]["method"]["steps"][3]["flow_rate_ml_per_min"] = -2.0
    issues = [str(i) for i in build_line(parse_line_config(data, source="line.toml"), make_plant).issues]
    assert len(issues) == 1 and "line.toml: units.capture_column.plant.method: got" in issues[0], issues
    assert "step 4 ('strip'): 'flow_rate_ml_per_min' expected a number > 0, got -2.0" in issues[0]
    # with a pooling table the skid runs [control.method]; a different [plant.method] beside it is refused
    plant, control = {"method": METHOD}, {"method": _with_step(1, duration_s=40.0)}
    assert plant_parameters({}, {}, control)["method"] == control["method"]
    assert plant_parameters({}, plant, {"method": METHOD})["method"] == METHOD
    with pytest.raises(ValueError, match=r"stated in \[plant.method\] and differently in \[control.method\]"):
        plant_parameters({}, plant, control)
    column["plant"]["method"]["steps"][3]["flow_rate_ml_per_min"] = 2.0
    config = parse_line_config(data, source="line.toml")
    assert bench_issues(config) == []
    both = dataclasses.replace(config, units=tuple(  # a pooling table's method beside the line's other one
        dataclasses.replace(u, control={"method": METHOD}) if u.name == "capture_column" else u
        for u in config.units))
    found = [str(i) for i in bench_issues(both)]
    assert any("units.capture_column.plant.method: got a second, different method" in i
               and "differently in [control.method]" in i for i in found), found
    # `check` builds the skid's plant as the bench does: from the pooling table's method
    bad = dataclasses.replace(config, units=tuple(
        dataclasses.replace(u, plant={}, control={"method": {**METHOD, "column_diameter_m": 0.02}})
        if u.name == "capture_column" else u for u in config.units))
    issues = [str(i) for i in build_line(bad, make_plant, with_plans=False).issues]
    assert any("units.capture_column" in i and "column_diameter_m = 0.02 m is a bed of 4.398 mL" in i
               for i in issues), issues
