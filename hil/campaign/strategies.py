"""Campaign strategies: what one run of a sampled plant does, and what its result depends on.

A strategy has a ``name`` (the campaign file's ``strategies`` entry and the table's ``strategy`` column), a
``run(scenario)`` that runs the sampled plant's batch(es) and returns the row's columns (the KPIs of
:data:`KPI_COLUMNS`, ``plant_seed``, and any columns of its own), and a ``key_content()``: everything its result
depends on beyond the scenario, the point, the noise seed and the loop's code (:mod:`hil.campaign.run_key`).
Strategies are plain picklable objects: the run task carries its strategy to the Dask worker.

Built in (:data:`BUILTIN_STRATEGIES`), each one stepped batch (:func:`hil.stepped_batch.run_stepped_batch`):

* the scenario strategies ``natural_cooling``, ``linear_cooling``, ``mpc``, ``oracle`` (:data:`hil.scenario
  .STRATEGIES`);
* ``mpc_online_solubility``: the NMPC with the estimator also adapting the solubility constant online
  (``solubility_coefficient_0``, the solubility polynomial's ``a0``, as an online parameter beside the growth and
  nucleation rate constants: :data:`ONLINE_SOLUBILITY_CONTROL`, docs/forecast.md "Online parameters").

Strategies that need more than the HIL bench are given by the layer that has it: ``linetwin campaign`` adds
``mpc_fitted`` (the NMPC on a parameter set fitted from one recorded batch of the plant, which needs the twin's
historian and ``linetwin fit``: :mod:`linetwin_cli.fitted_strategy`) through ``load_campaign(..., strategies=)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from hil.scenario import STRATEGIES, Scenario

KPI_COLUMNS = ("final_d43_um", "d43_error_um", "d43_error_percent", "final_cv", "yield", "fines_fraction",
               "supersaturation_violation", "solves", "failed_solves", "fallbacks_used")
"""The KPIs (hil.scenario_kpis) a campaign keeps per run."""

ONLINE_SOLUBILITY_PARAMETER = "solubility_coefficient_0"
ONLINE_SOLUBILITY_CONTROL: dict[str, Any] = {"online_parameters": {ONLINE_SOLUBILITY_PARAMETER: {
    "lower": 0.2047, "upper": 0.2127, "initial_std": 0.002, "random_walk_std": 1e-5}}}
"""``[control]`` options of the twin estimating the solubility offset online (kg/kg water): the KDP declaration's
``a0`` (0.2087, process_models/crystallization) ± 0.004 as bounds (twice the issue's ±0.002 offset range), a 1 σ
prior of 0.002 and a 1e-5 random walk per estimator period — the settings of ``benchmarks/forecast.py
--online-solubility`` (docs/forecast.md)."""


@runtime_checkable
class CampaignStrategy(Protocol):
    """One campaign strategy (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def key_content(self) -> Mapping[str, Any]:
        """What the strategy's result depends on beyond scenario, point, seed and the loop's code (JSON-able)."""
        ...

    def run(self, scenario: Scenario) -> dict[str, Any]:
        """Run the sampled plant (``scenario``, the point applied) and return the row's columns."""
        ...


@dataclass(frozen=True)
class SteppedStrategy:
    """One stepped batch under the scenario strategy ``scenario_strategy``, with ``control`` options over the
    scenario's ``[control]`` table."""

    name: str
    scenario_strategy: str
    control: Mapping[str, Any] = field(default_factory=dict)

    def key_content(self) -> Mapping[str, Any]:
        return {"scenario_strategy": self.scenario_strategy, "control": dict(self.control)}

    def scenario_for(self, scenario: Scenario) -> Scenario:
        """The sampled plant's scenario as this strategy runs it: its scenario strategy, its control options over
        the scenario's."""
        scenario = scenario.with_strategy(self.scenario_strategy)
        return replace(scenario, control={**scenario.control, **self.control}) if self.control else scenario

    def run(self, scenario: Scenario) -> dict[str, Any]:
        from hil.stepped_batch import run_stepped_batch

        scenario = self.scenario_for(scenario)
        report = run_stepped_batch(scenario)
        return {**kpi_columns(report.kpis), "plant_seed": scenario.seed}


def kpi_columns(kpis: Mapping[str, Any]) -> dict[str, Any]:
    """The campaign's KPI columns (:data:`KPI_COLUMNS`) of a batch's KPIs (None where absent)."""
    return {k: kpis.get(k) for k in KPI_COLUMNS}


BUILTIN_STRATEGIES: dict[str, CampaignStrategy] = {
    **{s: SteppedStrategy(s, s) for s in STRATEGIES},
    "mpc_online_solubility": SteppedStrategy("mpc_online_solubility", "mpc", ONLINE_SOLUBILITY_CONTROL),
}
"""The strategies every campaign may name (module docstring)."""
