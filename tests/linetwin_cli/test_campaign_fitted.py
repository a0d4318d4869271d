"""The campaign strategies ``mpc_fitted`` (the NMPC on a set fitted from one recorded batch of the plant:
linetwin_cli/fitted_strategy.py) and ``mpc_online_solubility`` (hil/campaign/strategies.py) through ``linetwin
campaign`` on the embedded LocalCluster: the fitted run's row has its batch's KPIs and the fitted values with their
standard errors; a fit the recorded batch cannot support is that run's error and the plant's other runs go on.

Half-hour (and ten-minute) batches on the twin's own method-of-moments plant, so the fit's truth is the twin's
nominal set and the module stays well under a minute of CPU; one worker process (the four runs one after another, a
second worker's start-up and plan builds saved; campaigns spread over two workers: tests/hil/test_campaign.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hil.campaign.runner import campaign_tasks
from hil.campaign.spec import CampaignError, load_campaign
from linetwin_cli.fitted_strategy import CAMPAIGN_STRATEGIES, FittedNmpcStrategy
from linetwin_cli.main import main
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.dask, pytest.mark.timeout(600)]  # a loaded 2-core machine: ~5 min wall

SCENARIO = REPO_ROOT / "examples" / "scenarios" / "nominal_mpc.toml"
NOMINAL = {"growth_rate_constant": 1.221e-5, "secondary_nucleation_rate_constant": 7.49e10,
           "solubility_coefficient_0": 0.2087}
"""The KDP declaration's values (docs/fitting.md): the moments plant's truth here."""

# plant 0: a 30-minute batch, from which the three parameters are identifiable; plant 1: 10 minutes, too short to
# pin down the secondary nucleation rate constant: `linetwin fit` refuses (exit 1, no set stored)
CAMPAIGN = f"""[campaign]
name = "fitted"
scenario = "{SCENARIO}"
plants = 2
sampling = "sobol"
seed = 3
strategies = ["mpc", "mpc_fitted"]

[fixed]
"scenario.target_d43_um" = 230
"plant.plant_resolution" = "moments"

[dimensions.duration]
target = "scenario.batch_duration_s"
distribution = "choice"
values = [1800, 600]
"""


def test_mpc_fitted_row_has_kpis_and_fitted_values_and_a_failing_fit_is_isolated(tmp_path: Path, capsys) -> None:
    path = tmp_path / "fitted.toml"
    path.write_text(CAMPAIGN)
    out = tmp_path / "out"
    assert main(["campaign", str(path), "--workers", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "[4/4]" in captured.err and "1 failed" in captured.out
    import pandas as pd

    table = pd.read_parquet(out / "campaign.parquet")
    by = {(int(r["scenario.batch_duration_s"]), r["strategy"]): r for r in table.to_dict("records")}
    assert set(by) == {(d, s) for d in (1800, 600) for s in ("mpc", "mpc_fitted")}

    fitted = by[(1800, "mpc_fitted")]
    assert fitted["status"] == "ok", fitted["error"]
    assert fitted["solves"] > 0 and fitted["failed_solves"] == 0 and math.isfinite(fitted["final_d43_um"])
    assert fitted["plant_seed"] == by[(1800, "mpc")]["plant_seed"] != fitted["previous_batch_seed"]
    for name, nominal in NOMINAL.items():
        value, se = fitted[f"fitted.{name}"], fitted[f"fitted_se.{name}"]
        assert 0 < se < 0.2 * abs(value), f"{name}: {value} +- {se}"
        assert abs(value - nominal) < 4 * se, f"{name}: fitted {value} +- {se}, truth {nominal}"
    assert len(fitted["fit.parameter_set"]) == 16
    assert math.isnan(by[(1800, "mpc")]["fitted.growth_rate_constant"]), "only mpc_fitted rows carry fits"

    failed = by[(600, "mpc_fitted")]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("CommissioningError: linetwin fit on batch ")
    assert "cannot identify secondary_nucleation_rate_constant" in failed["error"]
    assert by[(600, "mpc")]["status"] == "ok" and by[(600, "mpc")]["solves"] > 0, "the plant's other run goes on"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategies"]["mpc_fitted"] == {**summary["strategies"]["mpc_fitted"], "runs": 2, "failed": 1}
    assert "mpc_fitted - mpc" in summary["differences"]


def test_mpc_online_solubility_runs_the_nmpc_with_the_solubility_constant_estimated_online() -> None:
    from controllers.plan_registry import control_plan_for_kind
    from hil.campaign.strategies import BUILTIN_STRATEGIES, SteppedStrategy
    from hil.line_unit import read_line_unit
    from hil.scenario import load_scenario

    strategy = BUILTIN_STRATEGIES["mpc_online_solubility"]
    assert isinstance(strategy, SteppedStrategy)
    scenario = strategy.scenario_for(load_scenario(SCENARIO).with_strategy("linear_cooling"))
    assert scenario.strategy == "mpc"
    unit = read_line_unit(scenario.line_path, scenario.unit)
    plan = control_plan_for_kind(unit.kind).build_plan(unit.model, scenario.control_options(), "c",
                                                       {t.name for t in unit.tags})
    assert set(plan.estimated_parameters) == {"growth_rate_constant", "secondary_nucleation_rate_constant",
                                              "solubility_coefficient_0"}
    solubility = next(p for p in plan.online_parameters if p.name == "solubility_coefficient_0")
    assert solubility.lower < NOMINAL["solubility_coefficient_0"] < solubility.upper


def test_mpc_fitted_is_the_cli_s_strategy_and_its_settings_are_in_the_run_key(tmp_path: Path) -> None:
    path = tmp_path / "fitted.toml"
    path.write_text(CAMPAIGN)
    with pytest.raises(CampaignError) as refused:
        load_campaign(path)  # hil alone does not know it: the CLI hands it over
    assert "campaign.strategies" in refused.value.errors[0] and "mpc_online_solubility" in refused.value.errors[0]

    keys = {t.strategy: t.key for t in campaign_tasks(load_campaign(path, strategies=CAMPAIGN_STRATEGIES))
            if t.plant == 0}
    assert len(set(keys.values())) == 2
    other = load_campaign(path, strategies={"mpc_fitted": FittedNmpcStrategy(method="wls")})
    other_keys = {t.strategy: t.key for t in campaign_tasks(other) if t.plant == 0}
    assert other_keys["mpc_fitted"] != keys["mpc_fitted"], "the fit's settings are part of the key"
    assert other_keys["mpc"] == keys["mpc"]
