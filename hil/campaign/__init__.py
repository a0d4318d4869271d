"""Campaigns: many stepped-loop batches over sampled plants and strategies, on Dask distributed (issue 18).

``spec`` (campaign files), ``strategies`` (what one run of a plant does), ``points`` (sampling, a point applied to
the base scenario), ``run_key`` (content keys), ``run_task`` (one run on a worker), ``runner`` (the Dask client,
resume), ``results`` (Parquet, summary JSON/PNG).
Names are exported lazily (PEP 562): importing this package imports neither Dask nor the NMPC.
"""

from __future__ import annotations

from linetwin_lazy import lazy_exports

_EXPORTS = {
    "Campaign": "hil.campaign.spec", "CampaignError": "hil.campaign.spec", "load_campaign": "hil.campaign.spec",
    "sample_points": "hil.campaign.points", "apply_point": "hil.campaign.points",
    "run_key": "hil.campaign.run_key", "code_version": "hil.campaign.run_key",
    "RunTask": "hil.campaign.run_task", "run_task": "hil.campaign.run_task",
    "CampaignStrategy": "hil.campaign.strategies", "SteppedStrategy": "hil.campaign.strategies",
    "BUILTIN_STRATEGIES": "hil.campaign.strategies",
    "run_campaign": "hil.campaign.runner", "CampaignOutcome": "hil.campaign.runner",
    "write_results": "hil.campaign.results",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
