"""What a campaign's table says: issue 18's robustness targets and each sampled dimension's effect on the MPC.

Both work on the campaign table (one row per plant and strategy, ``abs_d43_error_percent`` in %, ``final_cv`` and
``fines_fraction`` dimensionless) and are pure functions of it, so a summary can be recomputed from stored runs.

**Robustness targets** (issue 18 item 6), per plant that ran all of ``mpc``, ``oracle`` and ``linear_cooling``:

* d43: where the oracle's |d43 error| ≤ 1 %, the MPC's ≤ 2 %; elsewhere the MPC's ≤ the oracle's + 1 percentage
  point. Required in ≥ 95 % of plants.
* CV and fines: the MPC's final CV and fines mass fraction each ≤ linear cooling's (no tolerance). Required in
  ≥ 90 % of plants. The oracle's shares beside them tell what the NMPC's objective gives on the true plant (a
  trade-off of d43 against CV and fines) from what estimation loses.

The same figures for any other closed-loop strategy of the campaign (``mpc_fitted``, ``mpc_online_solubility``:
``robustness_targets(table, controller=...)``, the summary's ``robustness_targets_by_strategy``), judged by the same
rules against the same plants' oracle and linear cooling.

A plant whose MPC run failed counts as a miss of every target; a plant whose oracle run failed cannot be judged on
d43 and is left out of that share (counted in ``oracle_failed``); one whose linear-cooling run failed is left out of
the CV/fines share (counted in ``recipe_failed``).

**Dimension effects**, per numeric sampled dimension that varies: the least-squares line of the MPC's |d43 error| %
and of MPC − oracle |d43 error| (percentage points) against the dimension (slope per unit of the dimension, the
change over the sampled range, Pearson r), and the same two quantities in four equal-count bins of the dimension
(bounds: the smallest and largest sampled value in the bin; median and 95 % quantile, with the share of plants
meeting the d43 target in each bin).

**Sweep effects** (a parameter sweep of a simulation case): the same least-squares line of every ``final.<output>``
against every sampled dimension.
"""

from __future__ import annotations

import math
from typing import Any

D43_ORACLE_REACHED_PERCENT = 1.0
D43_MPC_WHERE_REACHED_PERCENT = 2.0
D43_WITHIN_ORACLE_PP = 1.0
D43_REQUIRED_SHARE = 0.95
CV_FINES_REQUIRED_SHARE = 0.90
BINS = 4


def sampled_dimensions(table: Any) -> list[str]:
    """The table's numeric sampled-target columns (``plant.*``, ``scenario.*``, ``control.*``, ``model.*``,
    ``initial_state.*``, ``inputs.*``, ``case.*``) that take more than one value."""
    prefixes = ("plant", "scenario", "control", "model", "initial_state", "inputs", "case")
    return [c for c in table.columns if "." in c and c.split(".")[0] in prefixes
            and table[c].dtype.kind in "if" and table[c].nunique(dropna=True) > 1]


REFERENCE_STRATEGIES = ("oracle", "linear_cooling", "natural_cooling")
"""Strategies that are references, not controllers judged by the robustness targets."""


def controllers_of(table: Any) -> list[str]:
    """The closed-loop strategies of ``table`` the robustness targets judge: ``mpc`` first, then the others in table
    order (every strategy but the references, :data:`REFERENCE_STRATEGIES`)."""
    found = [str(s) for s in table["strategy"].unique() if s not in REFERENCE_STRATEGIES]
    return sorted(found, key=lambda s: s != "mpc")


def per_plant(table: Any, controller: str = "mpc") -> Any:
    """One row per plant: ``<kpi>_<strategy>`` columns of |d43 error| %, CV and fines (NaN where that run failed
    or did not run), ``failed_<strategy>`` flags, the sampled dimensions and the d43 target verdict ``d43_met`` of
    ``controller`` (True / False / NaN where it cannot be judged), and ``<controller>_minus_oracle_pp``."""
    import pandas as pd

    dims = sampled_dimensions(table)
    plants = pd.DataFrame(index=sorted(table["plant"].unique()))
    for strategy, group in table.groupby("strategy", sort=False):
        g = group.set_index("plant")
        ok = g["status"] == "ok"
        plants[f"failed_{strategy}"] = ~ok.reindex(plants.index, fill_value=False)
        plants[f"ran_{strategy}"] = plants.index.isin(g.index)
        for kpi in ("abs_d43_error_percent", "final_cv", "fines_fraction"):
            plants[f"{kpi}_{strategy}"] = pd.to_numeric(g[kpi].where(ok), errors="coerce").reindex(plants.index)
    first = table.drop_duplicates("plant").set_index("plant")
    for dim in dims:
        plants[dim] = first[dim].reindex(plants.index)
    c = controller
    if {f"ran_{c}", "ran_oracle"} <= set(plants.columns):
        mpc, oracle = plants[f"abs_d43_error_percent_{c}"], plants["abs_d43_error_percent_oracle"]
        reached = oracle <= D43_ORACLE_REACHED_PERCENT
        met = ((reached & (mpc <= D43_MPC_WHERE_REACHED_PERCENT))
               | (~reached & (mpc <= oracle + D43_WITHIN_ORACLE_PP)))
        verdict = met.astype(object)
        verdict[mpc.isna() & plants[f"ran_{c}"]] = False  # the controller failed: a miss
        verdict[oracle.isna() | ~plants["ran_oracle"] | ~plants[f"ran_{c}"]] = math.nan  # cannot be judged
        plants["d43_met"] = verdict
        plants[f"{c}_minus_oracle_pp"] = mpc - oracle
    return plants


def robustness_targets(table: Any, controller: str = "mpc") -> dict[str, Any] | None:
    """Issue 18 item 6's figures for ``controller`` (see the module docstring); None unless the campaign ran it and
    the oracle. The counts of failed controller runs are under ``mpc_failed`` whichever the controller."""
    c = controller
    plants = per_plant(table, c)
    if "d43_met" not in plants:
        return None
    judged = plants[plants["d43_met"].notna()]
    reached = judged["abs_d43_error_percent_oracle"] <= D43_ORACLE_REACHED_PERCENT
    out: dict[str, Any] = {
        "controller": c,
        "plants": int(len(plants)),
        "mpc_failed": int(plants[f"failed_{c}"].sum()),
        "oracle_failed": int((plants["failed_oracle"] & plants["ran_oracle"]).sum()),
        "d43": {
            "rule": f"{c} <= {D43_MPC_WHERE_REACHED_PERCENT} % where oracle <= {D43_ORACLE_REACHED_PERCENT} %, "
                    f"else {c} <= oracle + {D43_WITHIN_ORACLE_PP} pp",
            "judged_plants": int(len(judged)),
            "share_met": _share(judged["d43_met"].astype(bool)),
            "required_share": D43_REQUIRED_SHARE,
            "oracle_reached_plants": int(reached.sum()),
            "share_met_where_oracle_reached": _share(judged["d43_met"][reached].astype(bool)),
            "oracle_missed_plants": int((~reached).sum()),
            "share_met_where_oracle_missed": _share(judged["d43_met"][~reached].astype(bool)),
        },
    }
    if "ran_linear_cooling" in plants:
        both = plants[plants[f"ran_{c}"] & plants["ran_linear_cooling"] & ~plants["failed_linear_cooling"]]
        cv_ok = both[f"final_cv_{c}"] <= both["final_cv_linear_cooling"]  # NaN (run failed) compares False
        fines_ok = both[f"fines_fraction_{c}"] <= both["fines_fraction_linear_cooling"]
        out["cv_fines"] = {
            "rule": f"{c}'s final CV and fines fraction each <= linear cooling's (no tolerance)",
            "judged_plants": int(len(both)),
            "recipe_failed": int((plants["ran_linear_cooling"] & plants["failed_linear_cooling"]).sum()),
            "share_cv_no_worse": _share(cv_ok),
            "share_fines_no_worse": _share(fines_ok),
            "share_both_no_worse": _share(cv_ok & fines_ok),
            "required_share": CV_FINES_REQUIRED_SHARE,
            "cv_excess_p95": _quantile((both[f"final_cv_{c}"] - both["final_cv_linear_cooling"]).dropna(), 0.95),
            "fines_excess_p95": _quantile((both[f"fines_fraction_{c}"] - both["fines_fraction_linear_cooling"])
                                          .dropna(), 0.95),
        }
        if "ran_oracle" in plants:  # what the objective itself gives on the true plant: the CV/fines trade-off
            cv_oracle = both["final_cv_oracle"] <= both["final_cv_linear_cooling"]
            fines_oracle = both["fines_fraction_oracle"] <= both["fines_fraction_linear_cooling"]
            out["cv_fines"].update(oracle_share_cv_no_worse=_share(cv_oracle),
                                   oracle_share_fines_no_worse=_share(fines_oracle),
                                   oracle_share_both_no_worse=_share(cv_oracle & fines_oracle))
    return out


def dimension_effects(table: Any) -> dict[str, Any]:
    """Per sampled dimension: the MPC's |d43 error| % and MPC − oracle (pp) against it (module docstring)."""
    import pandas as pd

    plants = per_plant(table)
    if "abs_d43_error_percent_mpc" not in plants:
        return {}
    quantities = {"mpc_abs_d43_error_percent": plants["abs_d43_error_percent_mpc"]}
    if "mpc_minus_oracle_pp" in plants:
        quantities["mpc_minus_oracle_pp"] = plants["mpc_minus_oracle_pp"]
    effects: dict[str, Any] = {}
    for dim in sampled_dimensions(table):
        x = pd.to_numeric(plants[dim], errors="coerce")
        entry: dict[str, Any] = {"range": [float(x.min()), float(x.max())]}
        for name, y in quantities.items():
            valid = x.notna() & y.notna()
            entry[name] = {"plants": int(valid.sum()), **_line(x[valid].to_numpy(float), y[valid].to_numpy(float))}
        entry["bins"] = _bins(x, plants, quantities)
        effects[dim] = entry
    return effects


def sweep_effects(table: Any) -> dict[str, Any]:
    """Per sampled dimension of a case sweep: the line of every ``final.<output>`` against it (module docstring)."""
    import pandas as pd

    ok = table[table["status"] == "ok"]
    outputs = [c for c in table.columns if c.startswith("final.")]
    effects: dict[str, Any] = {}
    for dim in sampled_dimensions(table):
        x = pd.to_numeric(ok[dim], errors="coerce")
        entry: dict[str, Any] = {"range": [float(x.min()), float(x.max())]}
        for output in outputs:
            y = pd.to_numeric(ok[output], errors="coerce")
            valid = x.notna() & y.notna()
            entry[output] = {"runs": int(valid.sum()), **_line(x[valid].to_numpy(float), y[valid].to_numpy(float))}
        effects[dim] = entry
    return effects


def _line(xs: Any, ys: Any) -> dict[str, float]:
    """Least-squares line: slope per unit of x, its change over x's range, Pearson r (empty under 3 points)."""
    import numpy as np

    if len(xs) < 3 or np.ptp(xs) == 0:
        return {}
    slope, _intercept = np.polyfit(xs, ys, 1)
    r = float(np.corrcoef(xs, ys)[0, 1]) if np.std(ys) > 0 else 0.0
    return {"slope_per_unit": float(slope), "change_over_range": float(slope * np.ptp(xs)), "pearson_r": r}


def _bins(x: Any, plants: Any, quantities: dict[str, Any]) -> list[dict[str, Any]]:
    import pandas as pd

    valid = x.notna()
    if valid.sum() < BINS:
        return []
    codes = pd.qcut(x[valid], BINS, labels=False, duplicates="drop")  # labels would round the edges to 3 digits
    out = []
    for _code, index in x[valid].groupby(codes).groups.items():
        values = x.loc[index]
        entry: dict[str, Any] = {"low": float(values.min()), "high": float(values.max()), "plants": len(index)}
        for name, y in quantities.items():
            ys = y.loc[index].dropna()
            entry[name] = {"median": _quantile(ys, 0.5), "p95": _quantile(ys, 0.95)}
        if "d43_met" in plants:
            entry["share_d43_met"] = _share(plants.loc[index, "d43_met"].dropna().astype(bool))
        out.append(entry)
    return out


def _share(mask: Any) -> float | None:
    return float(mask.mean()) if len(mask) else None


def _quantile(series: Any, q: float) -> float | None:
    return float(series.quantile(q)) if len(series) else None
