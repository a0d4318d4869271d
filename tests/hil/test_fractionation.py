"""The skid's collection valve follows the two cut setpoints: one pool per run, a late cut acts at once."""

from __future__ import annotations

import pytest

from hil.plants.fractionation import CUT_START, CUT_STOP, FractionCollector


def cuts(start: float, stop: float) -> dict[str, float]:
    return {CUT_START: start, CUT_STOP: stop}


def test_the_valve_is_open_between_the_cuts_and_the_pool_is_what_left_meanwhile() -> None:
    f = FractionCollector()
    positions = []
    for t in range(10):
        positions.append(f.update(float(t), cuts(3.0, 6.0)))
        f.collect({"product": 2.0, "impurity": 0.5}, flow_m3_per_s=1e-6, dt_s=1.0)
    assert positions == [False, False, False, True, True, True, False, False, False, False]
    assert (f.opened_s, f.closed_s) == (3.0, 6.0)
    assert f.amounts_mol["product"] == pytest.approx(3 * 2.0 * 1e-6)
    assert f.purity("product", ("impurity",)) == pytest.approx(0.8)


def test_nothing_is_armed_at_power_up_and_a_late_start_opens_at_once() -> None:
    f = FractionCollector()
    assert not f.update(50.0, cuts(0.0, 0.0))
    assert f.update(60.0, cuts(40.0, 100.0))  # written at 60 s for 40 s: opens now
    assert f.opened_s == 60.0


def test_one_pool_per_run_and_a_start_moved_while_open_does_not_close_it() -> None:
    f = FractionCollector()
    assert f.update(10.0, cuts(10.0, 20.0))
    assert f.update(12.0, cuts(15.0, 20.0))  # the pool in progress keeps its start
    assert not f.update(20.0, cuts(15.0, 20.0))
    assert not f.update(25.0, cuts(24.0, 40.0))  # closed: no second pool in this run
    f.new_run()
    assert f.update(5.0, cuts(5.0, 10.0)) and f.amounts_mol == {}
