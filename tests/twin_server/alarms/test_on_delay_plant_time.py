"""Alarm on-delays count plant seconds: on a HIL bench running N× real time an on-delay is the same plant time
(N× less wall time), read from the line's plant clock (TwinServer.plant_clock)."""

from __future__ import annotations

from linetwin_cli.bench_launcher import with_time_scale
from process_models.plant_clock import WallPacedClock
from tests.twin_server.line_fixture import PILOT
from twin_server.alarms.limits import LimitAlarmConfig, LimitEvaluator, LimitState
from twin_server.config import load_line_config
from twin_server.server import TwinServer, bench_speed


class FakeWall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_30_s_on_delay_is_30_plant_seconds_on_a_400x_bench() -> None:
    wall = FakeWall()
    clock = WallPacedClock(speed=400.0, wall=wall)
    ev = LimitEvaluator(LimitAlarmConfig(high=70.0, on_delay_s=30.0))
    assert ev.update(75.0, clock.now()) is None
    wall.t = 0.07  # 28 plant s
    assert ev.update(75.0, clock.now()) is None
    wall.t = 0.076  # 30.4 plant s
    assert ev.update(75.0, clock.now()) is LimitState.HIGH


def test_the_twin_reads_plant_time_at_the_bench_speed() -> None:
    config = load_line_config(PILOT)
    assert bench_speed(config) == 1.0  # a real plant: plant seconds are wall seconds
    bench = with_time_scale(config, 400.0)
    assert bench_speed(bench) == 400.0
    assert TwinServer(bench).plant_clock.wall_seconds(30.0) == 30.0 / 400.0
