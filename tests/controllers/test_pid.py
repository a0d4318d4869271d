"""PID fallback loop: closed-loop tracking on the tank, clamping, anti-windup, bad measurements."""

from __future__ import annotations

import math

import pytest

from controllers import PidConfigError, PidController, PidTuning
from process_models.simulator import simulate
from tests.controllers.models import thermal_tank

SAMPLE_S = 10.0


def _loop(pid: PidController, setpoints: list[float], start_k: float = 293.15):
    model = thermal_tank()
    x = start_k
    trace = []
    for k, sp in enumerate(setpoints):
        u = pid.update(sp, x)
        x = float(simulate(model, {"temperature": x}, [k * SAMPLE_S, (k + 1) * SAMPLE_S],
                           {"jacket_temperature": u, "ambient_temperature": 293.15}).states[0, -1])
        trace.append((u, x))
    return trace


def test_tracks_setpoint_on_the_tank():
    pid = PidController(PidTuning(gain=3.0, integral_time_s=120.0), 280.0, 380.0, SAMPLE_S, initial_output=300.0)
    trace = _loop(pid, [323.15] * 120)
    assert trace[-1][1] == pytest.approx(323.15, abs=0.1)
    assert all(280.0 <= u <= 380.0 for u, _ in trace)


def test_anti_windup_recovers_quickly_after_saturation():
    tuning = PidTuning(gain=3.0, integral_time_s=120.0)
    pid = PidController(tuning, 280.0, 330.0, SAMPLE_S, initial_output=300.0)
    # unreachable setpoint (the jacket tops out at 330 K) for 100 samples, then a reachable one
    trace = _loop(pid, [373.15] * 100 + [303.15] * 30)
    assert trace[99][0] == 330.0
    # without anti-windup the integrator would hold the output at the limit for many samples after the change
    leaves_saturation = next(i for i, (u, _) in enumerate(trace[100:]) if u < 330.0)
    assert leaves_saturation <= 1


def test_bad_measurement_holds_output_and_bad_tuning_is_refused():
    pid = PidController(PidTuning(gain=2.0, integral_time_s=60.0), 0.0, 100.0, 1.0, initial_output=40.0)
    pid.update(50.0, 45.0)
    held = pid.update(50.0, math.nan)
    assert 0.0 <= held <= 100.0 and math.isfinite(held)
    with pytest.raises(PidConfigError, match="limits"):
        PidController(PidTuning(gain=1.0), 10.0, 0.0, 1.0)
    with pytest.raises(PidConfigError, match="gain"):
        PidController(PidTuning(gain=0.0), 0.0, 1.0, 1.0)
