"""A chromatography unit's pooling table is read once, every problem named; a run turns decisions into cut
setpoints the skid's PLC executes."""

from __future__ import annotations

import math

import pytest

from controllers.chromatography.pooling_plan import (
    REQUIRED_TAGS,
    build_pooling_plan,
    check_pooling_plan,
    parse_pooling_options,
)
from controllers.chromatography.pooling_run import PoolingRun, fast_column
from controllers.plan_registry import control_plan_for_kind

TABLE = {"strategy": "threshold", "target": "cytochrome", "impurities": ["ribonuclease", "lysozyme"],
         "window_start_s": 450.0, "window_end_s": 1000.0, "uv_start_level_mau": 80.0, "uv_stop_level_mau": 35.0,
         "method": {"feed_mol_per_m3": {"cytochrome": 1.0, "ribonuclease": 0.3, "lysozyme": 0.3}}}
TAGS = set(REQUIRED_TAGS)
MODEL = {"case": "sma_load_wash_elute", "column_volume_ml": 1.0}


def test_the_column_kind_has_the_pooling_plan() -> None:
    spec = control_plan_for_kind("chromatography_column")
    plan = spec.build_plan(MODEL, TABLE, "units.capture_column.control", TAGS)
    assert plan.strategy == "threshold" and plan.spec.purity_min == 0.95 and plan.spec.confidence == 0.95
    assert plan.model_options["case"] == "sma_load_wash_elute" and plan.model_options["method"] == "dg"
    assert plan.times_s()[-1] == 1000.0 and plan.times_s()[1] == 1.0
    check_pooling_plan(MODEL, TABLE, "units.capture_column.control", TAGS)
    assert plan.loop.update_interval_s is None  # optional: no linearised updates unless the table asks
    updating = spec.build_plan(MODEL, {**TABLE, "update_interval_s": 2.0}, "units.capture_column.control", TAGS)
    assert updating.loop.update_interval_s == 2.0


def test_every_problem_is_named_with_its_key() -> None:
    bad = {**TABLE, "strategy": "best", "purity_min": "high", "replan_interval_s": -1.0, "colour": "red",
           "model": {"elements": 0}, "estimation": {"ensemble_size": 0}}
    del bad["target"]
    plan, issues = parse_pooling_options(bad, "units.c.control", TAGS - {"run_time"})
    keys = {key for key, _, _ in issues}
    assert plan is None
    assert {"units.c.control.strategy", "units.c.control.purity_min", "units.c.control.replan_interval_s",
            "units.c.control.colour", "units.c.control.target", "units.c.control.model.elements",
            "units.c.control.estimation"} <= keys
    assert any("run_time" in expected for _, _, expected in issues)


def test_an_inconsistent_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        build_pooling_plan(MODEL, {**TABLE, "window_start_s": 1000.0, "window_end_s": 450.0}, "c", TAGS)
    with pytest.raises(ValueError, match="insulin"):
        check_pooling_plan(MODEL, {**TABLE, "target": "insulin"}, "c", TAGS)
    with pytest.raises(ValueError, match="update_interval_s = 60.0"):
        build_pooling_plan(MODEL, {**TABLE, "update_interval_s": 60.0}, "c", TAGS)


def test_threshold_run_arms_nothing_then_cuts_where_the_uv_crossed() -> None:
    plan = build_pooling_plan(MODEL, TABLE, "c", TAGS)
    run = PoolingRun(plan, "threshold", fast_column(plan))
    assert run.setpoints() == (0.0, 0.0) and math.isnan(run.status().planned_start_s)
    uv = {t: (10.0 if t < 500 else 120.0 if t < 700 else 20.0) for t in range(0, 1001, 5)}
    opened = None
    for t, value in uv.items():
        assert run.step(float(t), value, 20.0)
        if opened is None and run.setpoints() != (0.0, 0.0):
            opened = run.setpoints()
    assert opened == (500.0, 1000.0)  # open until the rule stops (the window's end closes it at the latest)
    assert run.setpoints() == (500.0, 700.0) and run.done
    assert not run.step(700.0, 0.0, 0.0)  # not after the last sample: skipped
    assert run.status().source == "fixed_thresholds"
