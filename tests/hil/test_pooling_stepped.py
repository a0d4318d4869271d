"""Online pooling on the chromatography skid in lockstep: the model loop meets the purity spec across seeded runs,
the oracle's yield bounds every strategy that meets the spec, and the bench refuses what it does not know."""

from __future__ import annotations

import dataclasses
import json

import pytest

from controllers.chromatography.elution_estimator import EstimationSpec
from controllers.chromatography.pooling_decision import pool_on_curves, threshold_cuts
from hil.pooling_stepped import (
    PoolingBench,
    PoolingSkid,
    ScenarioOutcome,
    StrategyKpis,
    kpi_table,
    outcomes_from_json,
    scenario_by_name,
    scenario_table,
    summarise,
)


@pytest.fixture(scope="module")
def bench() -> PoolingBench:
    # the shipped skid with a cheaper loop (full estimates every 120 s, linearised updates every sample as shipped,
    # fewer ensemble members) to keep the test short: ~7 s of CPU a run
    skid = dataclasses.replace(PoolingSkid(), replan_interval_s=120.0,
                               estimation=EstimationSpec(iterations=2, ensemble_size=100))
    return PoolingBench(skid)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a closed-loop run of ~5 model fits: under a minute alone, more on a loaded machine
@pytest.mark.parametrize("seed", [0, 1])  # one run per test, so parallel workers share them
def test_the_model_loop_meets_the_spec_across_seeds_and_the_oracle_bounds_every_yield(bench: PoolingBench,
                                                                                      seed: int) -> None:
    scenario = scenario_by_name("feed_titre_mismatch")
    outcomes = [bench.run(scenario, seed)]
    for outcome in outcomes:
        model, oracle, fixed = (outcome.kpis[k] for k in ("model", "oracle", "fixed_thresholds"))
        assert model.spec_met, kpi_table(outcomes)
        assert oracle.spec_met and oracle.purity_fraction == pytest.approx(0.95, abs=1e-6)
        for kpis in (model, fixed):
            if kpis.spec_met:
                assert kpis.yield_fraction <= oracle.yield_fraction + 1e-9
        assert model.fallback_share < 0.5  # the model, not the fallback, cut this pool
        assert 0.0 < model.productivity_mmol_per_l_h < oracle.productivity_mmol_per_l_h * 1.2
    summary = summarise(outcomes)
    assert summary["spec_met_model"] == 1 and summary["mean_yield_oracle"] >= summary["mean_yield_model"]


def test_the_fixed_thresholds_are_tuned_on_the_nominal_run(bench: PoolingBench) -> None:
    # the baseline's rule (docs/control.md): levels on a 5 mAU grid, the largest yield whose pool meets the spec
    # plus 0.5 points on the nominal run; a step lower on the stop level (more yield) misses that margin
    spec, truth = bench.skid.spec, bench.truth(scenario_by_name("nominal"))
    margin = spec.purity_min + bench.skid.threshold_purity_margin
    assert bench.skid.threshold_purity_margin == pytest.approx(0.005)

    def purity(start_mau: float, stop_mau: float) -> float:
        cuts = threshold_cuts(bench.plant_times_s, truth["uv_mau"], spec, start_mau, stop_mau)
        assert cuts is not None
        return pool_on_curves(bench.plant_times_s, truth, spec, *cuts)[1]

    assert purity(bench.start_level_mau, bench.stop_level_mau) >= margin
    assert purity(bench.start_level_mau, bench.stop_level_mau - 5.0) < margin
    nominal = bench.run(scenario_by_name("nominal"), 0, strategies=("fixed_thresholds", "oracle"))
    fixed, oracle = nominal.kpis["fixed_thresholds"], nominal.kpis["oracle"]
    assert fixed.spec_met and fixed.yield_fraction > 0.9 * oracle.yield_fraction
    assert "model" not in nominal.kpis


def test_unknown_scenario_and_strategy_are_refused(bench: PoolingBench) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'flooding'.*nominal"):
        scenario_by_name("flooding")
    with pytest.raises(ValueError, match=r"unknown strategy \['mpc'\]"):
        bench.run(scenario_by_name("nominal"), 0, strategies=("mpc",))


def test_summary_and_tables_read_back_from_the_benchmark_json() -> None:
    def kpis(strategy: str, y: float, p: float) -> StrategyKpis:
        return StrategyKpis(strategy, 500.0, 800.0, y, p, p >= 0.95, 0.3 * y)

    outcomes = [ScenarioOutcome("nominal", seed, {"fixed_thresholds": kpis("fixed_thresholds", 0.80, 0.96),
                                                  "model": kpis("model", 0.88, 0.951 - 0.002 * seed),
                                                  "oracle": kpis("oracle", 0.90, 0.95)}) for seed in (0, 1)]
    runs = json.loads(json.dumps([{"scenario": o.scenario, "seed": o.seed,
                                   "kpis": {k: dataclasses.asdict(v) for k, v in o.kpis.items()}} for o in outcomes]))
    back = outcomes_from_json(runs)
    assert back == outcomes
    summary = summarise(back)
    assert summary["model_gain_over_fixed"] == pytest.approx(0.88 / 0.80 - 1)
    assert summary["model_gap_to_oracle"] == pytest.approx(1 - 0.88 / 0.90)
    assert summary["spec_met_model"] == 1  # seed 1 pooled at 94.9 %
    assert summary["mean_on_spec_yield_model"] == pytest.approx(0.44)  # the off-spec pool counts as no product
    assert summary["model_gain_over_fixed_on_spec"] == pytest.approx(0.44 / 0.80 - 1)
    table = scenario_table(back)
    assert "| nominal | model | 2 | 88.0 | 94.90 | 1/2 |" in table
    assert "| nominal | 1 | model | 500 | 800 | 88.0 | 94.90 | NO |" in kpi_table(back)
