"""The plant clock: wall-paced (plant time = wall time × speed) and stepped (advances only when told)."""

from __future__ import annotations

import asyncio
import math

import pytest

from process_models.plant_clock import PlantClock, SteppedClock, WallPacedClock


class FakeWall:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_wall_paced_clock_counts_plant_seconds_at_its_speed() -> None:
    wall = FakeWall()
    clock = WallPacedClock(speed=400.0, wall=wall)
    assert isinstance(clock, PlantClock)
    assert clock.now() == 0.0
    wall.t += 0.5
    assert clock.now() == pytest.approx(200.0)
    assert clock.wall_seconds(120.0) == pytest.approx(0.3)


@pytest.mark.parametrize("speed", [0.0, -1.0, math.inf, math.nan])
def test_wall_paced_clock_refuses_a_speed_that_is_not_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be a finite number > 0"):
        WallPacedClock(speed=speed)


async def test_wall_paced_sleep_until_returns_once_plant_time_is_reached() -> None:
    clock = WallPacedClock(speed=1000.0)
    await asyncio.wait_for(clock.sleep_until(20.0), timeout=5.0)  # 20 plant s = 20 ms wall
    assert clock.now() >= 20.0


async def test_stepped_clock_moves_only_when_advanced_and_wakes_its_sleepers() -> None:
    clock = SteppedClock()
    assert isinstance(clock, PlantClock)
    assert clock.wall_seconds(60.0) == math.inf
    sleeper = asyncio.create_task(clock.sleep_until(60.0))
    await asyncio.sleep(0)
    clock.advance(30.0)
    await asyncio.sleep(0)
    assert not sleeper.done() and clock.now() == 30.0
    clock.advance_to(60.0)
    await asyncio.wait_for(sleeper, timeout=1.0)
    await asyncio.wait_for(clock.sleep_until(10.0), timeout=1.0)  # already past: returns at once
    with pytest.raises(ValueError, match="cannot go back from 60 s to 59"):
        clock.advance_to(59.0)
    assert clock.now() == 60.0
