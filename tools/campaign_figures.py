"""Summarise the stored runs of a campaign directory — a finished one, or one still running or cut short — and print
the figures the README quotes (issue 18: MPC vs recipe vs oracle, the robustness targets, per-dimension effects).

    python tools/campaign_figures.py OUT [--out SUMMARY_DIR] [--plants N] [--from OTHER_OUT:STRATEGY ...]
                                         [--strategies S,S,...]

Reads ``OUT/runs/*.json`` (:mod:`hil.campaign.runner`), keeps only plants that ran every strategy found (a partial
campaign counts whole plants: say "n of N"), and writes ``campaign.parquet``, ``summary.json`` and ``summary.png``
into ``SUMMARY_DIR`` (default ``OUT/partial``) with :func:`hil.campaign.results.write_results`. ``--from
OTHER:linear_cooling`` takes that strategy's rows from another campaign directory of the same plants (a
before/after sub-campaign that re-ran only the strategies a change affects). ``--plants N``: plants 0 .. N-1 only.
``--strategies``: only these strategies' runs (a strategy that ran on a few plants would otherwise leave only those
whole).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hil.campaign.results import write_results  # noqa: E402


def stored_rows(out: Path) -> list[dict[str, Any]]:
    """Every stored run row of a campaign directory."""
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]


def whole_plants(rows: list[dict[str, Any]], plants: int | None) -> list[dict[str, Any]]:
    """Rows of the plants (below ``plants``) that ran every strategy present."""
    strategies = {r["strategy"] for r in rows}
    by: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if plants is None or r["plant"] < plants:
            by.setdefault(r["plant"], {})[r["strategy"]] = r
    return [by[p][s] for p in sorted(by) if set(by[p]) == strategies for s in sorted(strategies)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--out", dest="summary", type=Path)
    parser.add_argument("--plants", type=int)
    parser.add_argument("--from", dest="others", action="append", default=[], metavar="OTHER_OUT:STRATEGY")
    parser.add_argument("--name", default=None)
    parser.add_argument("--strategies", default=None, metavar="S,S,...")
    args = parser.parse_args(argv)
    rows = stored_rows(args.out)
    for other in args.others:
        directory, _, strategy = other.rpartition(":")
        rows += [r for r in stored_rows(Path(directory)) if r["strategy"] == strategy]
    if args.strategies:
        wanted = set(args.strategies.split(","))
        rows = [r for r in rows if r["strategy"] in wanted]
    rows = whole_plants(rows, args.plants)
    if not rows:
        print(f"{args.out}: no plant with every strategy stored yet", file=sys.stderr)
        return 1
    summary = write_results(rows, args.summary or args.out / "partial", args.name or args.out.name)
    n_plants = len({r["plant"] for r in rows})
    print(f"{args.out}: {n_plants} whole plants, {len(rows)} runs, {summary['failed']} failed")
    for strategy, s in summary["strategies"].items():
        q = {k: s[k] for k in ("abs_d43_error_percent", "final_cv", "fines_fraction")}
        print(f"  {strategy:15s} |d43 err| % p5/median/p95 " + " / ".join(_f(q["abs_d43_error_percent"][k]) for k in
                                                                          ("p5", "median", "p95"))
              + f"; CV median {_f(q['final_cv']['median'], 3)}; fines median {_f(q['fines_fraction']['median'], 4)}")
    for pair, d in summary["differences"].items():
        print(f"  {pair}: " + "; ".join(f"{k} median {_f(d[k]['median'], 3)} no worse in {_f(d[k]['share_no_worse'])}"
                                        for k in ("abs_d43_error_percent", "final_cv", "fines_fraction")))
    print(json.dumps(summary["robustness_targets_by_strategy"] or summary["robustness_targets"], indent=1))
    for controller, t in summary["robustness_targets_by_strategy"].items():
        d43, cv = t["d43"], t.get("cv_fines", {})
        print(f"  {controller}: d43 rule met {_f(d43['share_met'])} of {d43['judged_plants']} (oracle reached "
              f"{d43['oracle_reached_plants']}: {_f(d43['share_met_where_oracle_reached'])}; missed: "
              f"{_f(d43['share_met_where_oracle_missed'])}); CV/fines no worse than linear cooling "
              f"{_f(cv.get('share_both_no_worse'))} (CV {_f(cv.get('share_cv_no_worse'))}, fines "
              f"{_f(cv.get('share_fines_no_worse'))}; oracle {_f(cv.get('oracle_share_both_no_worse'))})")
    for dim, e in summary["dimension_effects"].items():
        line = e.get("mpc_abs_d43_error_percent", {})
        gap = e.get("mpc_minus_oracle_pp", {})
        print(f"  {dim:40s} mpc |err| change over range {_f(line.get('change_over_range'))} pp "
              f"(r {_f(line.get('pearson_r'))}); mpc-oracle {_f(gap.get('change_over_range'))} pp "
              f"(r {_f(gap.get('pearson_r'))})")
    return 0


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
