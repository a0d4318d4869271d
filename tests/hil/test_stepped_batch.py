"""The stepped lockstep closed loop (hil/stepped_batch.py): every shipped scenario run to batch end with the KPI
assertions the socket scenario tests made, deterministic for a seed, with its faults, in seconds per batch.

The plant (process_models population balance with mismatched "true" kinetics), its PLC image, the adapter's
decoding, the twin's EKF + NMPC + supervisor core advance together; no socket, no sleeping. The agreement with the
socket path is tested in tests/twin_server/test_hil_scenarios.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from controllers.batch_control import BatchControl, setpoint_source
from controllers.commands import ControlMode
from hil.scenario import ScenarioError, load_scenario
from hil.scenario_report import ScenarioReport
from hil.stepped_batch import run_stepped_batch
from tests.conftest import REPO_ROOT

SCENARIOS = REPO_ROOT / "examples" / "scenarios"
# the crystallizer batches (pooling_*.toml: hil/pooling_scenario.py, tests/hil/test_pooling_hil.py)
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.toml") if not p.stem.startswith("pooling_"))


def family(name: str) -> str:
    """The xdist group of a scenario's tests: the tests that share a batch run on one worker (the module's report
    cache is per worker), and the families spread over the workers."""
    for prefix in ("mismatch_plus20", "mismatch_minus20", "plc_disconnect", "commissioning"):
        if name.startswith(prefix):
            return f"stepped_{prefix}"
    return "stepped_nominal"  # nominal_*, dropout_mpc (the determinism test uses both)


def grouped(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.xdist_group(family(n))) for n in names]


NOMINAL_GROUP = pytest.mark.xdist_group("stepped_nominal")
SHORT_GROUP = pytest.mark.xdist_group("stepped_short")
"""The 600 s nominal MPC batches: one worker builds their plan (hil.stepped_batch caches it per process)."""
PLANT_KPIS = ("final_d43_um", "d43_error_percent", "final_cv", "yield", "fines_fraction", "nucleated_number_fraction",
              "final_temperature_c", "supersaturation_violation", "setpoints_written", "fallbacks_used", "solves",
              "failed_solves", "estimated_final_d43_um")
"""Every KPI except the NMPC's wall solve times."""


@pytest.fixture(scope="module")
def stepped() -> Callable[[str], ScenarioReport]:
    """Each shipped scenario's stepped report, run once per module."""
    reports: dict[str, ScenarioReport] = {}

    def report(name: str) -> ScenarioReport:
        if name not in reports:
            reports[name] = run_stepped_batch(load_scenario(SCENARIOS / f"{name}.toml"))
        return reports[name]

    return report


@pytest.mark.parametrize("name", grouped(SHIPPED))
def test_every_shipped_scenario_runs_to_batch_end(stepped, name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    report = stepped(name)
    kpis = report.kpis
    assert kpis["batch_time_covered_s"] == scenario.batch_duration_s
    assert report.timeline[-1].twin["batch_active"] is False  # the twin's batch clock ended the batch
    assert len(report.timeline) == int(scenario.batch_duration_s / scenario.sample_interval_s) + 1
    assert kpis["setpoints_written"] >= 58  # one decision per 120 s; a disconnect refuses at most one
    assert kpis["fallbacks_used"] == 0
    if scenario.strategy == "mpc":
        assert kpis["solves"] == 60 and kpis["failed_solves"] == 0
        assert kpis["solve_time_ms"]["count"] == 60 and kpis["solve_time_ms"]["median"] > 0
        assert kpis["d43_error_percent"] < 2.0
        assert abs(kpis["estimated_final_d43_um"] - kpis["final_d43_um"]) < 10.0  # the EKF tracked the truth
    else:
        assert kpis["solves"] == 0
    assert report.run["clock"] == "stepped" and report.run["plant_time_s"] == scenario.batch_duration_s


@pytest.mark.parametrize("case", grouped(["nominal", "mismatch_plus20", "mismatch_minus20"]))
def test_mpc_beats_linear_cooling(stepped, case: str) -> None:
    mpc = stepped(f"{case}_mpc").kpis
    linear = stepped(f"{case}_linear_cooling").kpis
    assert mpc["d43_error_percent"] < linear["d43_error_percent"]
    assert mpc["d43_error_percent"] < 2.0
    assert mpc["final_cv"] <= linear["final_cv"] + 0.01
    assert mpc["setpoints_written"] > 20 and mpc["solves"] > 20
    assert linear["setpoints_written"] > 20 and linear["fallbacks_used"] == 0


@NOMINAL_GROUP
def test_natural_cooling_misses_the_target_by_most(stepped) -> None:
    natural = stepped("nominal_natural_cooling").kpis
    assert natural["d43_error_percent"] > stepped("nominal_linear_cooling").kpis["d43_error_percent"]
    assert natural["d43_error_percent"] > stepped("nominal_mpc").kpis["d43_error_percent"]
    assert natural["final_temperature_c"] == pytest.approx(25.0, abs=0.5)  # the setpoint stepped to 25 °C


@NOMINAL_GROUP
def test_analyser_dropout_is_ridden_through(stepped) -> None:
    report = stepped("dropout_mpc")
    events = [(e["action"], e["plant_time_s"]) for e in report.fault_events]
    assert events == [("start", 3000.0), ("end", 3900.0)]
    during = [s for s in report.timeline if 3000.0 <= s.batch_time_s < 3900.0]
    assert during and all(any("measurement_dropout" in f for f in s.active_faults) for s in during)
    # the EKF predicted without the concentration: its estimate still follows the truth through the gap
    assert all(abs(s.twin["estimated_d43"] - s.truth["d43_um"]) < 25.0 for s in during)
    assert report.kpis["d43_error_percent"] < 2.0


@pytest.mark.parametrize("name", grouped(["plc_disconnect_mpc", "plc_disconnect_mpc_opcua"]))
def test_plc_disconnect_refuses_writes_then_resumes(stepped, name: str) -> None:
    report = stepped(name)
    assert [(e["action"], e["plant_time_s"]) for e in report.fault_events] == [("start", 3600.0), ("end", 3720.0)]
    refused = [e for e in report.run["events"] if "not written" in e]
    assert len(refused) == 1, refused
    assert refused[0].startswith("t=3600 s: setpoint jacket_temperature_setpoint = ")
    assert "PLC not connected" in refused[0]
    assert report.kpis["setpoints_written"] == 59  # every decision but the one during the outage
    assert report.kpis["d43_error_percent"] < 5.0
    assert report.kpis["final_temperature_c"] < 27.0


@NOMINAL_GROUP
def test_same_seed_same_kpis_and_strategy_override(stepped) -> None:
    """Deterministic for a seed: the API's strategy override of the linear cooling scenario reproduces the shipped
    MPC run (the two files differ only in name and strategy) to the last bit, solve times aside, although the
    plan's NMPC has solved other batches in between."""
    stepped("dropout_mpc")  # the same control options: the same plan, used by another batch first
    linear = load_scenario(SCENARIOS / "nominal_linear_cooling.toml")
    again = run_stepped_batch(linear, seed=linear.seed, strategy="mpc")
    reference = stepped("nominal_mpc")
    assert {k: again.kpis[k] for k in PLANT_KPIS} == {k: reference.kpis[k] for k in PLANT_KPIS}
    assert [s.truth for s in again.timeline] == [s.truth for s in reference.timeline]
    assert [s.jacket_setpoint_c for s in again.timeline] == [s.jacket_setpoint_c for s in reference.timeline]
    assert again.final_csd == reference.final_csd


def test_a_seed_changes_the_sensor_noise_not_the_plant() -> None:
    scenario = dataclasses.replace(load_scenario(SCENARIOS / "nominal_linear_cooling.toml"), batch_duration_s=1200.0)
    one, two = run_stepped_batch(scenario, seed=1), run_stepped_batch(scenario, seed=2)
    assert one.kpis["estimated_final_d43_um"] != two.kpis["estimated_final_d43_um"]
    assert one.kpis["final_d43_um"] == two.kpis["final_d43_um"]  # the recipe ignores the measurements


def test_bad_overrides_are_refused_naming_the_key() -> None:
    scenario = load_scenario(SCENARIOS / "nominal_mpc.toml")
    with pytest.raises(ScenarioError, match="strategy: got 'turbo'; expected one of natural_cooling"):
        run_stepped_batch(scenario, strategy="turbo")
    with pytest.raises(ScenarioError, match="seed: got -1; expected an integer >= 0"):
        run_stepped_batch(scenario, seed=-1)


@SHORT_GROUP
def test_a_deployed_parameter_set_is_what_the_estimator_and_nmpc_run_on() -> None:
    scenario = dataclasses.replace(load_scenario(SCENARIOS / "nominal_mpc.toml"), batch_duration_s=600.0)
    seen: list[tuple[str, float]] = []

    def observe(_t: float, core) -> None:
        seen.append((core.parameter_set_id, core.deployed_parameters()["growth_rate_constant"]))

    nominal = run_stepped_batch(scenario, on_tick=observe)
    nominal_growth = seen[0][1]
    seen.clear()
    fitted = run_stepped_batch(scenario, on_tick=observe,
                               parameter_set=("00000000000000aa", {"growth_rate_constant": 0.5 * nominal_growth}))
    assert seen and all(s == ("00000000000000aa", 0.5 * nominal_growth) for s in seen)
    assert fitted.kpis["estimated_final_d43_um"] != nominal.kpis["estimated_final_d43_um"]
    with pytest.raises(KeyError, match="not_a_parameter"):
        run_stepped_batch(scenario, parameter_set=("00000000000000bb", {"not_a_parameter": 1.0}))


class FirstScan:
    """A :class:`hil.batch_recording.BatchRecorder` keeping the unit's tags as scanned at StartBatch."""

    def __init__(self) -> None:
        self.tags: dict[str, float | None] | None = None

    def scan(self, _batch_time_s: float, tags) -> None:  # noqa: ANN001 - the protocol's Mapping
        if self.tags is None:
            self.tags = dict(tags)

    def setpoint(self, *_args: object) -> None:
        pass

    def event(self, *_args: object) -> None:
        pass


@SHORT_GROUP
def test_the_stepped_loop_never_judges_a_solve_late_by_wall_time() -> None:
    """The plant waits for a stepped solve: a result is not refused for the wall time a loaded machine took (the
    live loop's supervisor refuses it, as there the plant moved on). IPOPT's CPU-time limit bounds both."""
    scenario = dataclasses.replace(load_scenario(SCENARIOS / "nominal_mpc.toml"), batch_duration_s=600.0)
    cores: list[BatchControl] = []
    first = FirstScan()
    run_stepped_batch(scenario, recorder=first, on_tick=lambda _t, core: cores.append(core))
    assert cores and first.tags is not None and cores[0].wall_deadline is False
    plan, tags = cores[0].plan, first.tags
    live = BatchControl(plan, ControlMode.MPC)
    stepped = BatchControl(plan, ControlMode.MPC, wall_deadline=False)
    for core in (live, stepped):
        core.start(tags, core.clip_setpoints(tags)[0])
    result = stepped.solve(plan.controller_period_s)
    assert result is not None and result.success
    late = dataclasses.replace(result, solve_time_s=plan.solve_deadline_s + 1.0)
    refused = live.decide(plan.controller_period_s, tags, late)
    assert refused.events and "NMPC solve late" in refused.event_texts[0]
    assert all(setpoint_source(c) == "fallback" for c in refused.commands)
    used = stepped.decide(plan.controller_period_s, tags, late)
    assert used.events == () and used.commands and all(setpoint_source(c) == "mpc" for c in used.commands)
