"""The campaign strategy ``mpc_fitted``: the NMPC on a parameter set fitted from one recorded batch of the plant —
what a plant gets after commissioning (issue 18 item 5).

For each sampled plant (a crystallizer scenario with the campaign's point applied), in a temporary data directory
of its own (history, parameter sets, fit report, audit; removed after the run), the commissioning workflow of
:func:`linetwin_cli.bench_commissioning.commission_on_bench`:

1. **the plant's previous batch**: the NMPC on the twin's nominal set, recorded into the temporary SQLite historian,
   with the plant's sensor-noise seed + :data:`PREVIOUS_BATCH_SEED_OFFSET` (another batch of the same plant: other
   noise, the same seed charge and start, which the bench's plant takes from the scenario);
2. ``linetwin fit`` on it: maximum likelihood of the growth and secondary nucleation rate constants and the
   solubility constant ``solubility_coefficient_0`` (:data:`linetwin_cli.bench_commissioning.ESTIMATED`), the
   analysers' delay declared (``--delay TAG=S``: the plant's ``measurement_delay_s``, which an engineer knows from
   the sampling line at commissioning), no profile intervals;
3. the set applied as ``ApplyParameterSet`` does; **the batch the campaign reports**: the NMPC on the fitted set,
   with the plant's own noise seed — the very batch the other strategies run on that plant, so ``mpc_fitted`` and
   ``mpc`` (and the oracle) compare one to one.

The row holds that batch's KPIs like every strategy's, ``plant_seed`` and ``previous_batch_seed``, and per fitted
parameter ``fitted.<parameter>`` and ``fitted_se.<parameter>`` (value and linearised standard error, the
parameter's SI unit: growth rate constant m/s, secondary nucleation rate constant its declared unit, solubility
constant kg/kg water), ``fit.parameter_set`` (the stored set's id) and ``fit.wall_s``. A fit that refuses (a
parameter the batch cannot identify) or fails raises :class:`~linetwin_cli.bench_commissioning.CommissioningError`:
the campaign records it as the run's error.

Here, not in ``hil``: the strategy needs the twin's historian and ``linetwin fit`` (``hil`` never imports
``twin_server``, docs/architecture.md); ``linetwin campaign`` hands it to the campaign
(``load_campaign(..., strategies=CAMPAIGN_STRATEGIES)``). Its run key includes its settings and the code of
``twin_server`` and ``linetwin_cli`` besides the loop's (:mod:`hil.campaign.run_key`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.campaign.strategies import CampaignStrategy, kpi_columns
from hil.scenario import Scenario
from linetwin_cli.bench_commissioning import ANALYSERS, ESTIMATED

__all__ = ["CAMPAIGN_STRATEGIES", "PREVIOUS_BATCH_SEED_OFFSET", "FittedNmpcStrategy"]

PREVIOUS_BATCH_SEED_OFFSET = 1000
"""The recorded (previous) batch's noise seed = the plant's seed + this."""
FIT_PACKAGES = ("twin_server", "linetwin_cli")
"""Packages the strategy runs beyond the loop's (historian, deployment, ``linetwin fit``): in its run key."""


@dataclass(frozen=True)
class FittedNmpcStrategy:
    """``mpc_fitted`` (module docstring): ``estimate`` (model parameters fitted), ``method`` (``linetwin fit
    --method``: ml | wls)."""

    name: str = "mpc_fitted"
    estimate: tuple[str, ...] = ESTIMATED
    method: str = "ml"

    def key_content(self) -> Mapping[str, Any]:
        from hil.campaign.run_key import code_version

        return {"estimate": list(self.estimate), "method": self.method, "delays": "the plant's measurement_delay_s",
                "previous_batch_seed_offset": PREVIOUS_BATCH_SEED_OFFSET, "profile": False,
                "code": code_version(FIT_PACKAGES)}

    def run(self, scenario: Scenario) -> dict[str, Any]:
        from linetwin_cli.bench_commissioning import commission_on_bench

        previous_seed = scenario.seed + PREVIOUS_BATCH_SEED_OFFSET
        delay = analyser_delay_s(scenario)
        with tempfile.TemporaryDirectory(prefix="linetwin-mpc-fitted-") as tmp:
            done = commission_on_bench(scenario, Path(tmp) / "data", (previous_seed, scenario.seed),
                                       estimate=self.estimate, method=self.method,
                                       delays={tag: delay for tag in ANALYSERS} if delay > 0 else None, quiet=True)
        row: dict[str, Any] = {**kpi_columns(done.fitted_report.kpis), "plant_seed": scenario.seed,
                               "previous_batch_seed": previous_seed, "fit.parameter_set": done.parameter_set,
                               "fit.wall_s": done.fit_wall_s}
        for name, e in done.estimates().items():
            row[f"fitted.{name}"] = e["value"]
            row[f"fitted_se.{name}"] = e["standard_error"]
        return row


def analyser_delay_s(scenario: Scenario) -> float:
    """The plant's analyser delay, s: its ``measurement_delay_s`` (the scenario's ``[plant]`` over the unit's
    ``[model]``; the bench plant's default 0)."""
    from hil.line_unit import read_line_unit

    model = read_line_unit(scenario.line_path, scenario.unit).model
    return float({**model, **scenario.plant}.get("measurement_delay_s", 0.0))


CAMPAIGN_STRATEGIES: dict[str, CampaignStrategy] = {"mpc_fitted": FittedNmpcStrategy()}
"""The strategies ``linetwin campaign`` adds to the built-in ones (:mod:`hil.campaign.strategies`)."""
