"""A campaign's results: one Parquet table of every run, a summary JSON and a summary PNG.

* ``campaign.parquet``: one row per (plant, strategy): the sampled values (column = target, e.g.
  ``plant.growth_rate_factor``), status, error, wall time s and the KPIs (:data:`hil.campaign.strategies.KPI_COLUMNS`:
  d43 µm and its error µm / %, CV, yield, fines mass fraction, supersaturation violation, solve counters), and any
  strategy's own columns (``mpc_fitted``: ``fitted.<parameter>``, ``fitted_se.<parameter>``, ``fit.parameter_set``,
  ``fit.wall_s``, ``previous_batch_seed``: :mod:`linetwin_cli.fitted_strategy`; empty in other strategies' rows);
* ``summary.json``: per strategy the run counts and the 5 / 50 / 95 % quantiles of |d43 error| %, CV and fines;
  paired per plant, ``mpc − linear_cooling`` and ``mpc − oracle`` of the same KPIs (and ``<strategy> − mpc`` of
  every other closed-loop strategy: ``mpc_fitted``, ``mpc_online_solubility``), with the share of plants where the
  first is no worse; issue 18's robustness-target figures (``robustness_targets``: the MPC's;
  ``robustness_targets_by_strategy``: every closed-loop strategy's) and each sampled dimension's effect on the MPC's
  |d43 error| and on MPC − oracle (:mod:`hil.campaign.analysis`);
* ``summary.png``: KPI distributions per strategy, the paired differences, and the MPC's |d43 error| and MPC −
  oracle |d43 error| against each numeric sampled dimension.

A parameter sweep of a simulation case (strategy ``simulate``) has its own KPI columns (``final.<output>``,
``min.<output>``, ``max.<output>``: :mod:`hil.campaign.case_runs`): its summary gives their quantiles and the line of
each final value against each sampled dimension, its PNG each final value against each dimension.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hil.campaign.analysis import (
    controllers_of,
    dimension_effects,
    per_plant,
    robustness_targets,
    sampled_dimensions,
    sweep_effects,
)
from hil.campaign.case_runs import SWEEP_STRATEGY
from hil.campaign.run_task import KPI_COLUMNS

SUMMARY_KPIS = ("abs_d43_error_percent", "final_cv", "fines_fraction")
PAIRS = (("mpc", "linear_cooling"), ("mpc", "oracle"))


def write_results(rows: list[dict[str, Any]], out_dir: Path, name: str) -> dict[str, Any]:
    """Write ``campaign.parquet``, ``summary.json`` and ``summary.png`` into ``out_dir``; returns the summary."""
    import pandas as pd

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "traceback"} for r in rows])
    if set(table["strategy"]) == {SWEEP_STRATEGY}:
        return _write_sweep(table, out_dir, name)
    for column in KPI_COLUMNS:
        if column not in table:
            table[column] = math.nan
    table["abs_d43_error_percent"] = pd.to_numeric(table["d43_error_percent"], errors="coerce").abs()
    _normalise_columns(table)
    table.to_parquet(out_dir / "campaign.parquet", index=False)
    summary = _summary(table, name)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_number))
    _plot(table, summary, out_dir / "summary.png")
    return summary


def _normalise_columns(table: Any) -> None:
    """Mixed object columns (a choice of strings and numbers) as numbers where all are, else as text."""
    import pandas as pd

    for column in table.columns:
        if table[column].dtype == object and column not in ("error", "status", "strategy", "key"):
            converted = pd.to_numeric(table[column], errors="coerce")
            table[column] = converted if converted.notna().sum() == table[column].notna().sum() \
                else table[column].astype(str)


def _write_sweep(table: Any, out_dir: Path, name: str) -> dict[str, Any]:
    _normalise_columns(table)
    table.to_parquet(out_dir / "campaign.parquet", index=False)
    ok = table[table["status"] == "ok"]
    wall = ok["wall_s"].dropna() if "wall_s" in ok else []
    outputs = [c for c in table.columns if c.startswith(("final.", "min.", "max."))]
    summary = {"campaign": name, "runs": int(len(table)), "failed": int((table["status"] != "ok").sum()),
               "mean_wall_s_per_run": float(wall.mean()) if len(wall) else None,
               "outputs": {c: _quantiles(ok[c]) for c in outputs}, "dimension_effects": sweep_effects(table)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_number))
    _plot_sweep(table, summary, out_dir / "summary.png")
    return summary


def _plot_sweep(table: Any, summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    dims = sampled_dimensions(table)
    finals = [c for c in table.columns if c.startswith("final.")][:6]
    fig, axes = plt.subplots(max(1, len(finals)), max(1, len(dims)), figsize=(4 * max(1, len(dims)),
                             3 * max(1, len(finals))), squeeze=False)
    for row, output in zip(axes, finals, strict=False):
        for ax, dim in zip(row, dims, strict=False):
            ax.scatter(ok[dim], ok[output], s=10)
            ax.set_xlabel(dim)
            ax.set_ylabel(output)
    fig.suptitle(f"sweep {summary['campaign']}: {summary['runs']} runs, {summary['failed']} failed")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _json_number(value: object) -> object:
    return float(value) if hasattr(value, "__float__") else str(value)


def _quantiles(series: Any) -> dict[str, float | None]:
    s = series.dropna()
    if s.empty:
        return {"p5": None, "median": None, "p95": None}
    return {"p5": float(s.quantile(0.05)), "median": float(s.median()), "p95": float(s.quantile(0.95))}


def _summary(table: Any, name: str) -> dict[str, Any]:
    ok = table[table["status"] == "ok"]
    strategies: dict[str, Any] = {}
    for strategy, group in table.groupby("strategy", sort=False):
        good = group[group["status"] == "ok"]
        strategies[str(strategy)] = {"runs": int(len(group)), "failed": int((group["status"] != "ok").sum()),
                                     **{k: _quantiles(good[k]) for k in SUMMARY_KPIS}}
    pairs: dict[str, Any] = {}
    for a, b in (*PAIRS, *((c, "mpc") for c in controllers_of(table) if c != "mpc")):
        left = ok[ok["strategy"] == a].set_index("plant")
        right = ok[ok["strategy"] == b].set_index("plant")
        common = left.index.intersection(right.index)
        if common.empty:
            continue
        entry: dict[str, Any] = {"plants": int(len(common))}
        for k in SUMMARY_KPIS:
            diff = (left.loc[common, k] - right.loc[common, k]).astype(float)
            entry[k] = {**_quantiles(diff), "share_no_worse": float((diff.dropna() <= 1e-12).mean())
                        if diff.notna().any() else None}
        pairs[f"{a} - {b}"] = entry
    wall = ok["wall_s"].dropna() if "wall_s" in ok else []
    return {"campaign": name, "runs": int(len(table)), "failed": int((table["status"] != "ok").sum()),
            "mean_wall_s_per_run": float(wall.mean()) if len(wall) else None,
            "strategies": strategies, "differences": pairs, "robustness_targets": robustness_targets(table),
            "robustness_targets_by_strategy": {c: t for c in controllers_of(table)
                                               if (t := robustness_targets(table, c)) is not None},
            "dimension_effects": dimension_effects(table)}


def _plot(table: Any, summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    strategies = list(summary["strategies"])
    dims = sampled_dimensions(table)
    plants = per_plant(table)
    n_cols = max(3, len(dims), 3 * len(summary["differences"]))
    fig, axes = plt.subplots(4, n_cols, figsize=(4 * n_cols, 13), squeeze=False)
    for ax, kpi in zip(axes[0], SUMMARY_KPIS, strict=False):
        data = [ok[ok["strategy"] == s][kpi].dropna().to_numpy() for s in strategies]
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [math.nan] for d in data], tick_labels=strategies)
        ax.set_title(kpi)
    # one axes per (pair, KPI): |d43 error| in % and CV / fines (dimensionless) have scales 100x apart
    panels = [(label, entry, k, name) for label, entry in summary["differences"].items()
              for k, name in zip(SUMMARY_KPIS, ("|d43 err| %", "CV", "fines"), strict=True)]
    for ax, (label, entry, kpi, name) in zip(axes[1], panels, strict=False):
        a, b = label.split(" - ")
        left = ok[ok["strategy"] == a].set_index("plant")
        right = ok[ok["strategy"] == b].set_index("plant")
        common = left.index.intersection(right.index)
        diff = (left.loc[common, kpi] - right.loc[common, kpi]).dropna().to_numpy()
        ax.boxplot([diff if len(diff) else [math.nan]], tick_labels=[name])
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{label}: {name} (n={entry['plants']})", fontsize=9)
    for row, column, label in ((2, "abs_d43_error_percent_mpc", "|d43 error| % (mpc)"),
                               (3, "mpc_minus_oracle_pp", "mpc - oracle |d43 error|, pp")):
        if column not in plants:
            continue
        for ax, dim in zip(axes[row], dims, strict=False):
            ax.scatter(plants[dim], plants[column], s=10)
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_xlabel(dim)
            ax.set_ylabel(label)
    for row in axes:
        for ax in row:
            if not ax.has_data() and not ax.get_title():
                ax.axis("off")
    fig.suptitle(f"campaign {summary['campaign']}: {summary['runs']} runs, {summary['failed']} failed")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
