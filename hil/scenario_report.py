"""A HIL scenario's result: the report object, its JSON file and its PNG trajectory plot.

JSON layout: ``{"scenario": {...}, "kpis": {...}, "counters": {...}, "fault_events": [...], "run": {...},
"timeline": [sample, ...], "final_csd": {...} | null}``; non-finite floats are written as null (strict JSON).

Plot (a matplotlib ``Figure`` without pyplot), four panels over batch time in minutes: slurry and jacket
temperature with the jacket setpoint; solute concentration vs solubility (true) and the twin's estimate;
d43 true vs the twin's estimate with its ±1σ band and the target; true vs estimated relative supersaturation
with the constraint limit. Fault intervals are shaded on every panel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.scenario_kpis import TimelineSample


@dataclass(frozen=True)
class ScenarioReport:
    """Everything a scenario run produced. ``fault_events``: dicts with fault, action, plant_time_s."""

    scenario: Mapping[str, Any]
    kpis: Mapping[str, Any]
    timeline: Sequence[TimelineSample]
    counters: Mapping[str, Any] = field(default_factory=dict)
    fault_events: Sequence[Mapping[str, Any]] = ()
    run: Mapping[str, Any] = field(default_factory=dict)
    final_csd: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({
            "scenario": dict(self.scenario), "kpis": dict(self.kpis), "counters": dict(self.counters),
            "fault_events": [dict(e) for e in self.fault_events], "run": dict(self.run),
            "timeline": [s.to_dict() for s in self.timeline],
            "final_csd": None if self.final_csd is None else dict(self.final_csd),
        })


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _json_safe(value.item())
    return value


def write_report(report: ScenarioReport, path: Path) -> None:
    """Write the report as indented JSON (parent directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")


def _series(timeline: Sequence[TimelineSample], source: str, name: str) -> list[float]:
    out = []
    for s in timeline:
        value = (s.truth if source == "truth" else s.twin).get(name)
        out.append(float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan)
    return out


def plot_report(report: ScenarioReport, path: Path) -> None:
    """Write the four-panel trajectory PNG (see the module docstring)."""
    from matplotlib.figure import Figure  # here, not at import: batches run without a plot (campaigns, benches)

    timeline = report.timeline
    minutes = [s.batch_time_s / 60.0 for s in timeline]
    fig = Figure(figsize=(9, 11))  # no pyplot: no global backend or figure state is touched
    axes = fig.subplots(4, 1, sharex=True)
    title = f"{report.scenario.get('name', '')} ({report.scenario.get('strategy', '')})"
    fig.suptitle(title)
    ax = axes[0]
    ax.plot(minutes, _series(timeline, "truth", "temperature_c"), label="slurry T (true)")
    ax.plot(minutes, _series(timeline, "truth", "jacket_temperature_c"), label="jacket T (true)")
    ax.step(minutes, [s.jacket_setpoint_c for s in timeline], where="post", linestyle="--", label="jacket setpoint")
    ax.set_ylabel("temperature [°C]")
    ax = axes[1]
    ax.plot(minutes, _series(timeline, "truth", "solute_concentration_kg_per_m3"), label="concentration (true)")
    ax.plot(minutes, _series(timeline, "truth", "saturation_concentration_kg_per_m3"), label="solubility (true)")
    ax.plot(minutes, _series(timeline, "twin", "estimated_solute_concentration"), linestyle=":",
            label="concentration (twin estimate)")
    ax.set_ylabel("solute [kg/m³]")
    ax = axes[2]
    estimate = _series(timeline, "twin", "estimated_d43")
    std = _series(timeline, "twin", "estimated_d43_std")
    ax.plot(minutes, _series(timeline, "truth", "d43_um"), label="d43 (true)")
    ax.plot(minutes, estimate, linestyle=":", label="d43 (twin estimate)")
    ax.fill_between(minutes, [e - s for e, s in zip(estimate, std, strict=True)],
                    [e + s for e, s in zip(estimate, std, strict=True)], alpha=0.25, label="estimate ±1σ")
    target = report.kpis.get("target_d43_um")
    if isinstance(target, int | float):
        ax.axhline(target, color="k", linewidth=0.8, linestyle="--", label="target")
    ax.set_ylabel("d43 [µm]")
    ax = axes[3]
    ax.plot(minutes, _series(timeline, "truth", "supersaturation"), label="S (true)")
    ax.plot(minutes, _series(timeline, "twin", "estimated_supersaturation"), linestyle=":", label="S (twin estimate)")
    limit = report.kpis.get("supersaturation_limit")
    if isinstance(limit, int | float):
        ax.axhline(limit, color="r", linewidth=0.8, linestyle="--", label="limit")
    ax.set_ylabel("rel. supersaturation [1]")
    ax.set_xlabel("batch time [min]")
    for start, end in _fault_spans(report.fault_events, timeline):
        for ax in axes:
            ax.axvspan(start / 60.0, end / 60.0, color="grey", alpha=0.15)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def _fault_spans(events: Sequence[Mapping[str, Any]], timeline: Sequence[TimelineSample]) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    open_at: dict[str, float] = {}
    for e in events:
        key = str(e.get("fault"))
        if e.get("action") == "start":
            open_at[key] = float(e["plant_time_s"])
        elif key in open_at:
            spans.append((open_at.pop(key), float(e["plant_time_s"])))
    end = timeline[-1].batch_time_s if timeline else 0.0
    spans.extend((start, end) for start in open_at.values())
    return spans
