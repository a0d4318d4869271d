"""The pooling decision core: chance-constrained cuts, the oracle, fixed UV thresholds and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.chromatography.pooling_decision import (
    PoolingError,
    PoolingSpec,
    UvThresholdRule,
    oracle_cuts,
    plan_cuts,
    pool_on_curves,
    threshold_cuts,
    tune_uv_thresholds,
)

TIMES = np.arange(0.0, 1200.0 + 1e-9, 2.0)
SPEC = PoolingSpec("product", ("early", "late"), purity_min=0.95, window_start_s=300.0, window_end_s=1100.0)


def peak(centre_s: float, width_s: float, height: float) -> np.ndarray:
    return height * np.exp(-0.5 * ((TIMES - centre_s) / width_s) ** 2)


def outlet(early_s: float = 480.0, product_s: float = 650.0, late_s: float = 830.0,
           product_height: float = 1.0) -> dict[str, np.ndarray]:
    """Three Gaussian peaks (mol/m3): an early impurity, the product, a late impurity."""
    return {"early": peak(early_s, 55.0, 0.4), "product": peak(product_s, 60.0, product_height),
            "late": peak(late_s, 60.0, 0.4)}


def ensemble(rng: np.random.Generator, members: int) -> dict[str, np.ndarray]:
    """Outlets with uncertain retention (s) and titre: the distribution the chance constraint refers to."""
    draws = [outlet(480.0 + rng.normal(0, 12), 650.0 + rng.normal(0, 12), 830.0 + rng.normal(0, 15),
                    float(np.exp(rng.normal(0, 0.1)))) for _ in range(members)]
    return {c: np.stack([d[c] for d in draws]) for c in ("early", "product", "late")}


def test_chance_constraint_holds_on_fresh_draws_for_every_seed() -> None:
    for seed in range(3):
        plan = plan_cuts(TIMES, ensemble(np.random.default_rng(seed), 300), SPEC)
        assert plan is not None and plan.probability_on_spec >= 0.95
        assert plan.purity_at_confidence >= SPEC.purity_min - 1e-9
        fresh = ensemble(np.random.default_rng(1000 + seed), 600)
        purities = [pool_on_curves(TIMES, {c: fresh[c][k] for c in fresh}, SPEC, plan.start_s, plan.stop_s)[1]
                    for k in range(600)]
        # sample-average approximation with 300 members: the true probability is 0.95 up to sampling error
        assert np.mean(np.asarray(purities) >= SPEC.purity_min) >= 0.92


def test_a_start_with_recourse_holds_the_chance_constraint_on_fresh_draws_and_binds_it() -> None:
    for seed in range(2):
        plan = plan_cuts(TIMES, ensemble(np.random.default_rng(seed), 300), SPEC, stop_with_recourse=True)
        assert plan is not None
        # the constraint binds: the start uses the 5 % the spec allows, it does not wait until every member is safe
        assert SPEC.confidence <= plan.probability_on_spec < 0.99
        fresh = ensemble(np.random.default_rng(1000 + seed), 400)
        # a fresh outlet meets the spec if some stop after the planned start does (the stop is re-planned later)
        feasible = [plan_cuts(TIMES, {c: fresh[c][k] for c in fresh}, SPEC, fixed_start_s=plan.start_s) is not None
                    for k in range(400)]
        assert np.mean(feasible) >= 0.92


def test_more_confidence_costs_yield_and_certainty_recovers_it() -> None:
    members = ensemble(np.random.default_rng(3), 200)
    loose = plan_cuts(TIMES, members, PoolingSpec(**{**SPEC.__dict__, "confidence": 0.5}))
    strict = plan_cuts(TIMES, members, PoolingSpec(**{**SPEC.__dict__, "confidence": 0.99}))
    certain = plan_cuts(TIMES, outlet(), SPEC)
    assert loose is not None and strict is not None and certain is not None
    assert strict.expected_yield < loose.expected_yield
    assert strict.stop_s - strict.start_s < loose.stop_s - loose.start_s
    assert certain.expected_yield > strict.expected_yield


def test_oracle_yield_is_at_least_every_on_spec_cut() -> None:
    truth = outlet(490.0, 650.0, 820.0, 0.8)
    best = oracle_cuts(TIMES, truth, SPEC)
    assert best.expected_purity >= SPEC.purity_min - 1e-9
    rng = np.random.default_rng(7)
    on_spec = 0
    for _ in range(3000):
        a, b = best.start_s + rng.uniform(-60.0, 60.0), best.stop_s + rng.uniform(-60.0, 60.0)
        assert a < b
        y, p = pool_on_curves(TIMES, truth, SPEC, a, b)
        if p >= SPEC.purity_min:
            on_spec += 1
            assert y <= best.expected_yield + 1e-12
    assert on_spec > 300
    # the refined cuts sit on the purity boundary: a little wider is off spec
    assert pool_on_curves(TIMES, truth, SPEC, best.start_s - 1.0, best.stop_s + 1.0)[1] < SPEC.purity_min


def test_pins_of_an_online_plan_are_honoured() -> None:
    members = ensemble(np.random.default_rng(5), 200)
    free = plan_cuts(TIMES, members, SPEC)
    assert free is not None
    late = plan_cuts(TIMES, members, SPEC, earliest_start_s=free.start_s + 21.0)
    assert late is not None and late.start_s >= free.start_s + 21.0
    opened = plan_cuts(TIMES, members, SPEC, fixed_start_s=free.start_s + 3.0, earliest_stop_s=free.start_s + 50)
    assert opened is not None and opened.start_s == free.start_s + 3.0 and opened.stop_s >= free.start_s + 50


def test_no_cut_meets_the_spec_gives_none_and_the_oracle_says_so() -> None:
    merged = outlet(640.0, 650.0, 660.0)
    assert plan_cuts(TIMES, merged, SPEC) is None
    with pytest.raises(PoolingError, match="no pool inside the window"):
        oracle_cuts(TIMES, merged, SPEC)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"purity_min": 1.0}, "'purity_min' = 1.0"),
    ({"confidence": 0.0}, "'confidence' = 0.0"),
    ({"impurities": ("product",)}, "must not include the target"),
    ({"window_start_s": 900.0, "window_end_s": 800.0}, "window"),
])
def test_bad_spec_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PoolingError, match=message):
        PoolingSpec(**{**SPEC.__dict__, **kwargs})


def test_malformed_ensemble_is_refused() -> None:
    good = outlet()
    with pytest.raises(PoolingError, match=r"no curve for \['late'\]"):
        plan_cuts(TIMES, {"early": good["early"], "product": good["product"]}, SPEC)
    with pytest.raises(PoolingError, match="curve 'product' has shape"):
        plan_cuts(TIMES, {**good, "product": good["product"][:-1]}, SPEC)
    with pytest.raises(PoolingError, match="non-finite"):
        plan_cuts(TIMES, {**good, "late": np.full(TIMES.size, np.nan)}, SPEC)
    with pytest.raises(PoolingError, match="outside the window"):
        plan_cuts(TIMES, good, SPEC, fixed_start_s=100.0)


def uv_of(curves: dict[str, np.ndarray]) -> np.ndarray:
    return 100.0 * (curves["early"] + curves["product"] + curves["late"])


def test_uv_threshold_rule_cuts_the_rising_and_falling_flank() -> None:
    curves = outlet()
    uv = uv_of(curves)
    start, stop = threshold_cuts(TIMES, uv, SPEC, 60.0, 50.0)
    assert 550.0 < start < 650.0 < stop < 760.0
    assert uv[np.searchsorted(TIMES, start)] >= 60.0 and uv[np.searchsorted(TIMES, stop)] <= 50.0
    # the early peak's tail is above the start level when the window opens: the pool starts only after the UV
    # has dipped below the level in the valley and risen through it again
    late_window = PoolingSpec(**{**SPEC.__dict__, "window_start_s": 500.0})
    level = 41.0
    valley = (TIMES > 500.0) & (TIMES < 650.0)
    valley_s = TIMES[valley][np.argmin(uv[valley])]
    assert uv[np.searchsorted(TIMES, 500.0)] > level > uv[valley].min()
    cut = threshold_cuts(TIMES, uv, late_window, level, 50.0)
    assert cut is not None and cut[0] > valley_s
    # a pool still open closes at the window's end
    short = PoolingSpec(**{**SPEC.__dict__, "window_end_s": 660.0})
    assert threshold_cuts(TIMES, uv, short, 60.0, 50.0) == (pytest.approx(start), 660.0)


def test_uv_threshold_rule_follows_a_valve_commanded_elsewhere() -> None:
    rule = UvThresholdRule(SPEC, 60.0, 50.0)
    assert rule.observe(600.0, 80.0, valve_open=True)  # opened by the model: a pool in progress
    assert rule.observe(620.0, 95.0, valve_open=True)
    assert not rule.observe(700.0, 45.0, valve_open=True)  # past the peak and below the stop level
    assert rule.cuts(1200.0) == (600.0, 700.0)
    with pytest.raises(PoolingError, match="start_level_mau"):
        UvThresholdRule(SPEC, float("nan"), 50.0)


def test_tuned_thresholds_meet_the_spec_on_every_reference_run() -> None:
    curves = outlet()
    start_level, stop_level = tune_uv_thresholds(TIMES, [(uv_of(curves), curves)], SPEC)
    cuts = threshold_cuts(TIMES, uv_of(curves), SPEC, start_level, stop_level)
    assert cuts is not None
    y, p = pool_on_curves(TIMES, curves, SPEC, *cuts)
    assert p >= SPEC.purity_min and y <= oracle_cuts(TIMES, curves, SPEC).expected_yield + 1e-12
    # a second reference (a weaker product peak) makes the levels robust: on spec in both, at some yield
    weak = outlet(product_height=0.6)
    levels = tune_uv_thresholds(TIMES, [(uv_of(curves), curves), (uv_of(weak), weak)], SPEC)
    for reference in (curves, weak):
        robust = threshold_cuts(TIMES, uv_of(reference), SPEC, *levels)
        assert robust is not None and pool_on_curves(TIMES, reference, SPEC, *robust)[1] >= SPEC.purity_min
    with pytest.raises(PoolingError, match="no start/stop levels"):
        tune_uv_thresholds(TIMES, [(uv_of(curves), curves)], SPEC, purity_margin=0.0499)
    with pytest.raises(PoolingError, match="at least one reference"):
        tune_uv_thresholds(TIMES, [], SPEC)
