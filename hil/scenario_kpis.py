"""Batch KPIs of a HIL scenario, computed from its timeline (plant truth + what the twin showed).

Definitions (all from the TRUE plant state, never from the twin's estimates, unless named ``estimated_``):

* ``final_d43_um``: volume-weighted mean size mu4/mu3 at batch end; ``d43_error_um`` = |d43 - target| and
  ``d43_error_percent`` = 100 |d43 - target| / target;
* ``final_cv``: number-based coefficient of variation sqrt(mu2 mu0/mu1² - 1) at batch end;
* ``yield``: crystallized fraction of the solute dissolved at the start, (c0 - c_end)/c0;
* ``fines_fraction``: crystal mass fraction below the plant's ``fines_size_um`` at batch end (None for a
  moments plant); ``nucleated_number_fraction``: 1 - mu0(start)/mu0(end), the share of crystals born in the batch;
* constraint violations: the true relative supersaturation above ``max_supersaturation`` — time fraction of the
  batch (sample-and-hold over the timeline), its maximum, and the number of excursions;
* solve time median / p95 / max (ms) over the NMPC solves seen (one value per increment of ``solves``);
* counters read from the twin at batch end (``setpoints_written``, ``fallbacks_used``, ``solves``,
  ``failed_solves``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TimelineSample:
    """One sample of a scenario run.

    ``batch_time_s``: plant seconds since StartBatch; ``truth``: the plant's ``truth()``; ``twin``: control and
    estimate values read over OPC UA by node name (None where unreadable); ``jacket_setpoint_c``: the setpoint
    register of the virtual PLC (what the twin wrote); ``active_faults``: descriptions of the faults active.
    """

    batch_time_s: float
    wall_time_s: float
    truth: Mapping[str, Any]
    twin: Mapping[str, Any] = field(default_factory=dict)
    jacket_setpoint_c: float = math.nan
    active_faults: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"batch_time_s": self.batch_time_s, "wall_time_s": self.wall_time_s, "truth": dict(self.truth),
                "twin": dict(self.twin), "jacket_setpoint_c": self.jacket_setpoint_c,
                "active_faults": list(self.active_faults)}


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def supersaturation_violation(timeline: Sequence[TimelineSample], limit: float,
                              batch_duration_s: float) -> dict[str, float | int]:
    """Time fraction above ``limit`` (each sample's value held until the next sample, the last until batch end),
    the maximum true supersaturation and the number of excursions above the limit."""
    if not timeline:
        return {"time_fraction": 0.0, "max_supersaturation": math.nan, "excursions": 0}
    times = [s.batch_time_s for s in timeline] + [max(batch_duration_s, timeline[-1].batch_time_s)]
    values = [float(s.truth["supersaturation"]) for s in timeline]
    above = 0.0
    excursions = 0
    previous = False
    for i, value in enumerate(values):
        is_above = value > limit
        if is_above:
            above += max(times[i + 1] - times[i], 0.0)
            if not previous:
                excursions += 1
        previous = is_above
    span = times[-1] - times[0]
    return {"time_fraction": above / span if span > 0 else float(previous), "max_supersaturation": max(values),
            "excursions": excursions}


def compute_kpis(timeline: Sequence[TimelineSample], target_d43_um: float, max_supersaturation: float,
                 batch_duration_s: float, solve_times_ms: Sequence[float] = (),
                 counters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The KPI dictionary of a run (see the module docstring). ``timeline`` must not be empty."""
    if not timeline:
        raise ValueError("compute_kpis: empty timeline (the batch produced no samples)")
    first, last = timeline[0].truth, timeline[-1].truth
    d43 = float(last["d43_um"])
    error = abs(d43 - target_d43_um)
    estimated = timeline[-1].twin.get("estimated_d43")
    estimated_std = timeline[-1].twin.get("estimated_d43_std")
    mu0_start, mu0_end = float(first["mu0"]), float(last["mu0"])
    kpis: dict[str, Any] = {
        "target_d43_um": target_d43_um,
        "final_d43_um": d43,
        "d43_error_um": error,
        "d43_error_percent": 100.0 * error / target_d43_um,
        "estimated_final_d43_um": estimated,
        "estimated_final_d43_std_um": estimated_std,
        "final_cv": float(last["cv"]),
        "yield": float(last["yield"]),
        "fines_fraction": last.get("fines_fraction"),
        "nucleated_number_fraction": 1.0 - mu0_start / mu0_end if mu0_end > 0 else 0.0,
        "final_temperature_c": float(last["temperature_c"]),
        "batch_time_covered_s": timeline[-1].batch_time_s - timeline[0].batch_time_s,
        "supersaturation_limit": max_supersaturation,
        "supersaturation_violation": supersaturation_violation(timeline, max_supersaturation, batch_duration_s),
        "solve_time_ms": {
            "count": len(solve_times_ms),
            "median": _percentile(solve_times_ms, 50.0),
            "p95": _percentile(solve_times_ms, 95.0),
            "max": max(solve_times_ms) if solve_times_ms else None,
        },
    }
    counters = dict(counters or {})
    for name in ("setpoints_written", "fallbacks_used", "solves", "failed_solves"):
        kpis[name] = counters.get(name)
    return kpis
