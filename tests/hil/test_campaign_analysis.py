"""Issue 18's robustness-target figures and the per-dimension effects of a campaign table (hil/campaign/analysis.py),
on a hand-built table whose verdicts are known."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hil.campaign.analysis import controllers_of, dimension_effects, robustness_targets


def _table() -> pd.DataFrame:
    # plant: (oracle |err| %, mpc |err| %, mpc CV, recipe CV, mpc fines, recipe fines)
    plants = {
        0: (0.5, 1.5, 0.30, 0.35, 0.01, 0.02),   # oracle reached, mpc <= 2 %: met; CV/fines no worse
        1: (0.5, 2.5, 0.30, 0.35, 0.03, 0.02),   # oracle reached, mpc > 2 %: missed; fines worse
        2: (6.0, 6.8, 0.40, 0.35, 0.01, 0.02),   # oracle missed, within 1 pp: met; CV worse
        3: (6.0, 7.5, 0.30, 0.35, 0.01, 0.02),   # oracle missed, 1.5 pp off: missed
        4: (1.0, None, None, 0.35, None, 0.02),  # mpc failed: a miss of every target
        5: (None, 1.0, 0.30, 0.35, 0.01, 0.02),  # oracle failed: d43 not judged
    }
    rows = []
    for plant, (oracle, mpc, cv, cv_recipe, fines, fines_recipe) in plants.items():
        growth = 0.7 + 0.1 * plant
        for strategy, err, c, f in (("oracle", oracle, 0.3, 0.01), ("mpc", mpc, cv, fines),
                                    ("linear_cooling", 15.0, cv_recipe, fines_recipe)):
            rows.append({"plant": plant, "strategy": strategy, "status": "ok" if err is not None else "failed",
                         "abs_d43_error_percent": err if err is not None else math.nan,
                         "final_cv": c if err is not None else math.nan,
                         "fines_fraction": f if err is not None else math.nan,
                         "plant.growth_rate_factor": growth, "scenario.target_d43_um": 400.0})
    return pd.DataFrame(rows)


def test_robustness_targets_count_each_rule_and_failures_honestly() -> None:
    figures = robustness_targets(_table())
    assert figures is not None
    assert (figures["plants"], figures["mpc_failed"], figures["oracle_failed"]) == (6, 1, 1)
    d43 = figures["d43"]
    assert d43["judged_plants"] == 5  # plant 5 (oracle failed) left out
    assert d43["share_met"] == pytest.approx(2 / 5)
    assert (d43["oracle_reached_plants"], d43["share_met_where_oracle_reached"]) == (3, pytest.approx(1 / 3))
    assert (d43["oracle_missed_plants"], d43["share_met_where_oracle_missed"]) == (2, pytest.approx(1 / 2))
    cv = figures["cv_fines"]
    assert cv["judged_plants"] == 6
    assert cv["share_cv_no_worse"] == pytest.approx(4 / 6)  # plant 2 worse, plant 4 failed
    assert cv["share_fines_no_worse"] == pytest.approx(4 / 6)  # plant 1 worse, plant 4 failed
    assert cv["share_both_no_worse"] == pytest.approx(3 / 6)
    # the oracle: CV 0.3 and fines 0.01 beat the recipe's on every plant but plant 5, whose oracle run failed
    assert cv["oracle_share_both_no_worse"] == pytest.approx(5 / 6)


def test_dimension_effects_fit_the_mpc_error_against_each_varied_dimension() -> None:
    effects = dimension_effects(_table())
    assert list(effects) == ["plant.growth_rate_factor"], "a dimension that does not vary has no effect to fit"
    growth = effects["plant.growth_rate_factor"]
    assert growth["range"] == [pytest.approx(0.7), pytest.approx(1.2)]
    assert growth["mpc_abs_d43_error_percent"]["plants"] == 5 and growth["mpc_minus_oracle_pp"]["plants"] == 4
    assert growth["mpc_abs_d43_error_percent"]["slope_per_unit"] > 0  # errors grow with the plant index here
    assert sum(b["plants"] for b in growth["bins"]) == 6


def test_no_oracle_no_robustness_figures() -> None:
    table = _table()
    assert robustness_targets(table[table["strategy"] != "oracle"]) is None


def test_every_closed_loop_strategy_is_judged_by_the_same_rules_on_the_same_plants() -> None:
    table = _table()
    fitted = table[table["strategy"] == "mpc"].assign(strategy="mpc_fitted")
    fitted.loc[fitted["plant"] == 1, "abs_d43_error_percent"] = 0.8  # the fitted NMPC meets the rule on plant 1
    both = pd.concat([table, fitted], ignore_index=True)
    assert controllers_of(both) == ["mpc", "mpc_fitted"]
    mpc, other = robustness_targets(both), robustness_targets(both, "mpc_fitted")
    assert mpc is not None and other is not None
    assert (mpc["controller"], other["controller"]) == ("mpc", "mpc_fitted")
    assert mpc["d43"]["share_met"] == pytest.approx(2 / 5) and other["d43"]["share_met"] == pytest.approx(3 / 5)
    assert other["cv_fines"]["share_both_no_worse"] == mpc["cv_fines"]["share_both_no_worse"]
    assert other["d43"]["rule"].startswith("mpc_fitted <= 2.0 %")
