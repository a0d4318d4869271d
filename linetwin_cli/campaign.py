"""``linetwin campaign CAMPAIGN.toml [--scheduler tcp://HOST:PORT] [--workers N] [--out DIR]``: a campaign of
stepped-loop batches, or a parameter sweep of a simulation case, on Dask (:mod:`hil.campaign`, docs/campaigns.md).

Runs every (sampled plant, strategy) of the campaign file that ``--out`` does not hold yet (resumable), on an
embedded LocalCluster of ``--workers`` processes or on the cluster at ``--scheduler``; progress on stderr; then
writes ``campaign.parquet``, ``summary.json`` and ``summary.png`` into ``--out``. Exit 0 when every run finished
(a failed run is a result: it is counted in the summary and printed), 2 for a bad campaign file or option, 1 when
the scheduler cannot be reached. No role: an offline command on the user's own files, no twin, nothing audited.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linetwin_cli.common import positive_int_arg
from linetwin_cli.failures import EXIT_FAILURE, CommandError, problems_text


def add_campaign_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``campaign`` command."""
    p = sub.add_parser("campaign", help="run a campaign of stepped HIL batches, or a parameter sweep of a "
                                       "simulation case, on Dask (docs/campaigns.md)")
    p.add_argument("campaign", help="campaign file (TOML): base scenario (or case), sampled dimensions, "
                                        "strategies")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                   help="an existing Dask scheduler (default: an embedded LocalCluster)")
    p.add_argument("--workers", type=positive_int_arg, metavar="N", default=2,
                   help="worker processes of the embedded LocalCluster (default 2; ignored with --scheduler)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="results directory (default: campaign-NAME beside the current directory); runs stored "
                        "there are not run again")


def run_campaign_command(args: argparse.Namespace) -> int:
    from hil.campaign.results import write_results
    from hil.campaign.runner import run_campaign
    from hil.campaign.spec import CampaignError, load_campaign
    from linetwin_cli.fitted_strategy import CAMPAIGN_STRATEGIES

    try:
        campaign = load_campaign(Path(args.campaign), strategies=CAMPAIGN_STRATEGIES)
    except CampaignError as exc:
        raise CommandError(problems_text(list(exc.errors), f"{len(exc.errors)} campaign file error(s):")) from None
    if args.scheduler is not None and not args.scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise CommandError(f"--scheduler: got {args.scheduler!r}; expected a scheduler address tcp://HOST:PORT")
    out = Path(args.out) if args.out else Path(f"campaign-{campaign.name}")
    _quiet_cluster_logs(verbose=bool(getattr(args, "verbose", False)))
    try:
        outcome = run_campaign(campaign, out, scheduler=args.scheduler, workers=args.workers, progress=sys.stderr)
    except (OSError, TimeoutError) as exc:
        if args.scheduler is None or getattr(exc, "filename", None) is not None:
            raise
        raise CommandError(f"--scheduler {args.scheduler}: cannot reach the scheduler ({exc})", EXIT_FAILURE) \
            from None
    summary = write_results(outcome.rows, out, campaign.name)
    print(f"campaign '{campaign.name}': {outcome.total} runs ({outcome.skipped} stored before, {outcome.submitted} "
          f"run now, {outcome.failed} failed) in {outcome.wall_s:.0f} s; results in {out}/campaign.parquet, "
          f"summary.json, summary.png")
    if "outputs" in summary:  # a parameter sweep of a simulation case
        print(f"  {len(summary['outputs'])} output KPIs against {len(summary['dimension_effects'])} sampled "
              f"dimensions: summary.json")
    for strategy, s in summary.get("strategies", {}).items():
        med = s["abs_d43_error_percent"]["median"]
        print(f"  {strategy}: {s['runs']} runs, {s['failed']} failed, median |d43 error| "
              f"{'-' if med is None else f'{med:.2f} %'}")
    for row in outcome.rows:
        if row.get("status") != "ok":
            print(f"  failed: plant {row['plant']} {row['strategy']}: {row.get('error')}", file=sys.stderr)
    return 0


def _quiet_cluster_logs(verbose: bool) -> None:
    """Dask configures its own loggers when imported: keep its start/stop chatter (INFO) off stderr unless -v, so
    stderr shows the campaign's progress."""
    import logging

    import distributed  # noqa: F401  (its import sets the levels this overrides)

    if not verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)
