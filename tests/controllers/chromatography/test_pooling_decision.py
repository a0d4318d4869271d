"""The pooling decision core: chance-constrained cuts, the oracle, fixed UV thresholds and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.chromatography import pooling_decision
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


GRID = np.arange(0.0, 400.0 + 1e-9, 2.0)


def gapped_ensemble(rng: np.random.Generator, members: int) -> dict[str, np.ndarray]:
    """Peaks with compact support (a Gaussian less 5 % of its top, clipped at 0) and zero gaps between them: many
    starts (stops) in a gap pool the very same amounts, ties that the earliest start (stop) must win."""
    def peaks(centre_s: float, width_s: float, height: float) -> np.ndarray:
        centres = centre_s + rng.normal(0.0, 4.0, (members, 1))
        heights = height * np.exp(rng.normal(0.0, 0.1, (members, 1)))
        return np.maximum(heights * (np.exp(-0.5 * ((GRID - centres) / width_s) ** 2) - 0.05), 0.0)

    return {"early": peaks(120.0, 12.0, 0.5), "product": peaks(200.0, 15.0, 1.0), "late": peaks(280.0, 12.0, 0.5)}


def cumulative_amounts(curves: dict[str, np.ndarray], spec: PoolingSpec) -> tuple[np.ndarray, np.ndarray]:
    """(S, T) trapezoid integrals from the first time of the product and of the impurities together."""
    amounts = np.stack([curves[c] for c in spec.components], axis=1)  # (S, C, T)
    steps = 0.5 * (amounts[..., 1:] + amounts[..., :-1]) * np.diff(GRID)
    cum = np.concatenate([np.zeros(amounts.shape[:-1] + (1,)), np.cumsum(steps, axis=-1)], axis=-1)
    return cum[:, 0, :], cum[:, 1:, :].sum(axis=1)


def per_start_cuts(curves: dict[str, np.ndarray], spec: PoolingSpec, earliest_start_s: float = -np.inf,
                   earliest_stop_s: float = -np.inf, stop_with_recourse: bool = False,
                   best_effort: bool = False) -> tuple[int, int, np.ndarray | None] | None:
    """plan_cuts written out one start at a time: (start index, stop index, with recourse each member's own stop
    or -1), None when no pool qualifies. Every member has a product peak (totals > 0)."""
    cum_product, cum_impurity = cumulative_amounts(curves, spec)
    inside = (GRID >= spec.window_start_s - 1e-9) & (GRID <= spec.window_end_s + 1e-9)
    best, fallback = None, None
    for i in np.flatnonzero(inside & (GRID >= earliest_start_s)):
        stops = np.flatnonzero(inside & (GRID >= earliest_stop_s)
                               & (GRID >= GRID[i] + max(spec.min_pool_duration_s, 1e-12)))
        if stops.size == 0:
            continue
        product = cum_product[:, stops] - cum_product[:, i, None]  # (S, J)
        impurity = cum_impurity[:, stops] - cum_impurity[:, i, None]
        on_spec = (product * (1.0 - spec.purity_min) >= spec.purity_min * impurity) & (product > 0)
        yields = product / cum_product[:, -1:]
        if stop_with_recourse:
            member_yields = np.where(on_spec, yields, -np.inf)
            feasible = on_spec.any(axis=1)
            if feasible.mean() >= spec.confidence - 1e-12:
                value = member_yields.max(axis=1)[feasible].mean()
                if best is None or value > best[0]:  # the earliest best start
                    own = np.where(feasible, stops[np.argmax(member_yields, axis=1)], -1)  # earliest best stop
                    best = (value, i, int(np.median(own[feasible])), own)
            continue
        probability = on_spec.mean(axis=0)
        objective = np.where(probability >= spec.confidence - 1e-12, yields.mean(axis=0), -np.inf)
        k = np.argmax(objective)  # the earliest best stop
        if np.isfinite(objective[k]) and (best is None or objective[k] > best[0]):  # the earliest best start
            best = (objective[k], i, stops[k], None)
        if best_effort and best is None:
            counted = product + impurity
            purity = np.where(counted > 0, product / np.where(counted > 0, counted, 1.0), 0.0).mean(axis=0)
            k = np.lexsort((purity, probability))[-1]  # the most probable, then the purest: its latest stop
            if fallback is None or (probability[k], purity[k]) > fallback[:2]:  # then the earliest start
                fallback = (probability[k], purity[k], i, stops[k], None)
    best = best if best is not None else fallback and fallback[1:]
    return None if best is None else tuple(best[-3:])


@pytest.mark.parametrize("chunk_entries", [None, 1, 5000])  # default chunks, one start per chunk, a few
def test_the_vectorised_plan_makes_the_per_start_choice_ties_included(monkeypatch: pytest.MonkeyPatch,
                                                                      chunk_entries: int | None) -> None:
    if chunk_entries is not None:
        monkeypatch.setattr(pooling_decision, "_CHUNK_ENTRIES", chunk_entries)
    spec = PoolingSpec("product", ("early", "late"), purity_min=0.97, window_start_s=60.0, window_end_s=360.0,
                       confidence=0.9)
    pinned = PoolingSpec(**{**spec.__dict__, "min_pool_duration_s": 50.0})  # binds: a stop at start + 50 s
    too_long = PoolingSpec(**{**spec.__dict__, "min_pool_duration_s": 200.0})  # takes in a whole impurity peak
    cases = [
        ({}, spec),
        ({"stop_with_recourse": True}, spec),
        ({"earliest_start_s": 200.0}, pinned),
        ({"earliest_start_s": 200.0, "stop_with_recourse": True}, pinned),
        ({"earliest_start_s": 150.0, "earliest_stop_s": 215.0, "stop_with_recourse": True}, spec),
        ({"best_effort": True}, too_long),  # nothing qualifies: the most probable, purest pool
        ({"best_effort": True, "earliest_stop_s": 355.0}, too_long),
        ({"stop_with_recourse": True}, too_long),
    ]
    fallbacks = 0
    for seed in range(3):
        curves = gapped_ensemble(np.random.default_rng(seed), 8 + 7 * seed)
        for kwargs, case_spec in cases:
            expected = per_start_cuts(curves, case_spec, **kwargs)
            plan = plan_cuts(GRID, curves, case_spec, **kwargs)
            assert (plan is None) == (expected is None), (seed, kwargs)
            if plan is None or expected is None:
                continue
            i, j, own = expected
            assert (plan.start_s, plan.stop_s) == (GRID[i], GRID[j]), (seed, kwargs)
            fallbacks += plan.probability_on_spec == 0.0
            if own is not None:  # recourse: each member pooled to its own stop (the plan's stop without one)
                cum_product = cumulative_amounts(curves, case_spec)[0]
                pooled = cum_product[np.arange(own.size), np.where(own >= 0, own, j)] - cum_product[:, i]
                assert plan.expected_yield == pytest.approx(np.mean(pooled / cum_product[:, -1]), rel=1e-12)
    assert fallbacks == 6  # best_effort answered each time nothing qualified
