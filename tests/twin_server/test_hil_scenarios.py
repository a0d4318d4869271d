"""A HIL scenario end to end over real sockets, as `linetwin hil run` runs it (physics plant with mismatched "true"
kinetics behind a virtual PLC, the twin's EKF + NMPC + supervisor, the runner as operator over OPC UA), against
the same scenario in the stepped lockstep loop (hil/stepped_batch.py): both give the same batch KPIs within the
tolerance below. The KPI assertions of every shipped scenario run stepped: tests/hil/test_stepped_batch.py.

Tolerance (docs/hil.md, "Stepped or wall-paced"): on the socket bench the twin's adapter scans every 10 plant s
and its ticks land on wall deadlines, so the EKF sees measurements up to ~10 plant s old and a setpoint reaches
the plant up to a scan later; a busy machine also delays or skips plant steps, estimator ticks and NMPC solves
(a solve past its wall budget is replaced by the recipe). Measured on this machine (mismatch_plus20_mpc, 400×,
moderate load): |Δ final d43| 0.3 µm, |Δ CV| < 0.001, |Δ yield| 0.007, |Δ fines| 0.1 points; at 400× under a
load average of 13 on 2 cores the socket run skipped 7 of 60 solves and fell back twice: Δ d43 2.9 µm, Δ CV 0.06,
and at 200× beside the rest of the suite on 4 workers it still fell back now and then (Δ CV 0.054). At 100× (a wall
budget of 2.1 s per solve) the 1 h batch below never fell back, but a loaded machine's late scans and ticks still
cost up to 10 plant s each: beside the suite the socket run cooled further than the stepped one (Δ yield 0.002–0.013
in three runs, 0.0215 with the final temperature 2.5 °C lower in one CI run: a failure). So the socket run goes at
50× (a wall budget of 3.2 s per solve, and a quarter of the scenario's plant pace: the same CPU, as the plant steps,
scans and solves per plant second do not change with the speed, for four times the wall time): with five busy
processes on the 2 cores, Δ yield 0–0.005, Δ final d43 ≤ 0.5 µm, Δ CV ≤ 0.011 (three runs, 2026-12-07). The bounds
are: final d43 within 1 % of the target, CV within 0.05, yield within 0.02, fines within 0.5 percentage points.

By default the shipped scenario runs shortened to a 1 h batch (the same plant, mismatch, target and cooling range;
30 NMPC decisions instead of 60; the stepped loop reaches the 400 µm target within 0.1 % in 1 h as in 2 h): the same
socket path and scan delay, with the same tolerances, for half the wall time (72 s at 50×). The shipped 2 h batch
itself runs under the ``long`` marker (``make test-long``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.scenario import load_scenario
from hil.stepped_batch import run_stepped_batch
from linetwin_cli.main import main
from tests.conftest import free_tcp_port

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SPEED = "50"  # a quarter of the scenario's 200×: see the module docstring (late scans at 100× under load)
D43_TOLERANCE_OF_TARGET = 0.01
CV_TOLERANCE = 0.05
YIELD_TOLERANCE = 0.02
FINES_TOLERANCE = 0.005


def with_batch(name: str, batch_s: int, tmp_path: Path) -> Path:
    """The shipped scenario ``name`` with a ``batch_s`` batch (its line path made absolute), in ``tmp_path``."""
    text = (SCENARIOS / f"{name}.toml").read_text()
    for old, new in (("batch_duration_s = 7200", f"batch_duration_s = {batch_s}"),
                     ('line = "../pilot_line.toml"', f'line = "{SCENARIOS.parent / "pilot_line.toml"}"')):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}_{batch_s}s.toml"
    path.write_text(text)
    return path


def run_over_sockets(scenario: Path, tmp_path: Path) -> dict:
    report = tmp_path / f"{scenario.stem}.json"
    assert main(["hil", "run", str(scenario), "--speed", SPEED, "--report", str(report),
                 "--port", str(free_tcp_port())]) == 0
    assert report.with_suffix(".png").stat().st_size > 10_000
    return json.loads(report.read_text())


@pytest.mark.slow
@pytest.mark.serial  # a wall-paced socket batch: not beside another heavy test under xdist
@pytest.mark.parametrize("batch_s", [3600, pytest.param(7200, marks=pytest.mark.long(
    reason="the shipped 2 h batch; the 1 h run of the same scenario proves the same agreement by default"))])
def test_socket_and_stepped_loops_give_the_same_batch_kpis(tmp_path, batch_s: int):
    scenario = with_batch("mismatch_plus20_mpc", batch_s, tmp_path)
    socket = run_over_sockets(scenario, tmp_path)
    wire, run = socket["kpis"], socket["run"]
    stepped = run_stepped_batch(load_scenario(scenario)).kpis
    why = (f"socket {wire} (dropped plant steps {run['dropped_plant_steps']}, solves {wire['solves']}, fallbacks "
           f"{wire['fallbacks_used']}) vs stepped {stepped}")
    target = stepped["target_d43_um"]
    assert abs(wire["final_d43_um"] - stepped["final_d43_um"]) <= D43_TOLERANCE_OF_TARGET * target, why
    assert abs(wire["final_cv"] - stepped["final_cv"]) <= CV_TOLERANCE, why
    assert abs(wire["yield"] - stepped["yield"]) <= YIELD_TOLERANCE, why
    assert abs(wire["fines_fraction"] - stepped["fines_fraction"]) <= FINES_TOLERANCE, why
    assert wire["d43_error_percent"] < 2.0 and stepped["d43_error_percent"] < 2.0, why
    assert run["plant_time_s"] >= batch_s and stepped["solves"] == batch_s // 120, why  # one decision per 120 s
    decided = batch_s // 360  # a third of the decisions at least (a loaded machine skips solves)
    assert wire["setpoints_written"] > decided and wire["solves"] > decided and wire["solve_time_ms"]["median"] > 0, why


def test_hil_run_stepped_writes_the_report_and_plot_without_a_twin(tmp_path, capsys):
    text = (SCENARIOS / "nominal_mpc.toml").read_text()
    text = text.replace("batch_duration_s = 7200", "batch_duration_s = 1200")
    text = text.replace('line = "../pilot_line.toml"', f'line = "{SCENARIOS.parent / "pilot_line.toml"}"')
    scenario = tmp_path / "short_mpc.toml"
    scenario.write_text(text)
    report = tmp_path / "out" / "short_mpc.json"
    assert main(["hil", "run", str(scenario), "--stepped", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["run"]["clock"] == "stepped" and data["run"]["plant_time_s"] == 1200.0
    assert data["kpis"]["solves"] == 10 and data["kpis"]["setpoints_written"] == 10
    assert report.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "1200 s batch on the stepped plant clock" in out and "final d43" in out
