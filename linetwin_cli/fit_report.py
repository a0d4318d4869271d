"""``linetwin fit``'s report: ``fit_report.json``, the human summary, and one PNG per measured output (model vs
plant over batch time, one panel per batch; matplotlib's ``Figure`` without pyplot, when matplotlib is installed)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["REPORT_FILE", "plot_fit", "summary_text", "write_report"]

REPORT_FILE = "fit_report.json"


def write_report(out: Path, report: Mapping[str, Any]) -> Path:
    """Write ``report`` as ``out/fit_report.json``; the path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT_FILE
    path.write_text(json.dumps(report, indent=1, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _g(x: float | None, fmt: str = ".5g") -> str:
    return "—" if x is None else format(x, fmt)


def summary_text(report: Mapping[str, Any]) -> str:
    """The human summary of a fit report: estimates with both intervals, correlations, identifiability, residuals."""
    lines = [f"fit of {report['unit']} ({report['model']}) by "
             f"{'maximum likelihood' if report['method'] == 'ml' else 'weighted least squares'} on "
             f"{len(report['batches'])} batch(es): {', '.join(b['id'] for b in report['batches'])}",
             "",
             f"{'parameter':<36}{'parent':>12}{'estimate':>12}{'std. err.':>11}{'95 % linearised':>28}"
             f"{'95 % profile':>28}"]
    for name, e in report["estimates"].items():
        lin = e["linearised_95"]
        prof = e["profile_95"]
        lines.append(f"{name:<36}{_g(e['parent_value']):>12}{_g(e['value']):>12}{_g(e['standard_error'], '.3g'):>11}"
                     f"{f'[{_g(lin[0])}, {_g(lin[1])}]':>28}"
                     f"{(f'[{_g(prof[0])}, {_g(prof[1])}]' if prof else 'not computed'):>28}  {e['unit']}")
    shares = {n: (e.get("standard_error_measurements"), e.get("standard_error_inputs"))
              for n, e in report["estimates"].items() if e.get("standard_error_inputs") is not None}
    if shares:
        lines += ["", "std. error = sqrt(measurements² + measured inputs²) (errors in variables):"]
        lines += [f"  {n:<36}{_g(m, '.3g'):>11}{_g(i, '.3g'):>11}" for n, (m, i) in shares.items()]
    names = list(report["estimates"])
    if len(names) > 1:
        lines += ["", "correlation:"]
        for name, row in zip(names, report["correlation"], strict=True):
            lines.append(f"  {name:<36}" + "".join(f"{_g(x, '+.3f'):>8}" for x in row))
    ident = report["identifiability"]
    lines += ["", "identifiability (most to least; orthogonalised relative sensitivity, relative std. error):"]
    for name in ident["ranking"]:
        rel = report["estimates"][name]["relative_standard_error"]
        flag = "  NOT IDENTIFIABLE: " + ident["not_identifiable"][name] if name in ident["not_identifiable"] else ""
        lines.append(f"  {name:<36}{ident['scores'][name]:>10.3g}{_g(None if rel is None else 100 * rel, '.3g'):>9} %"
                     f"{flag}")
    lines.append(f"  Fisher information eigenvalues (relative parameters): "
                 f"{', '.join(_g(v, '.3g') for v in ident['eigenvalues'])}; condition number "
                 f"{_g(ident['condition_number'], '.3g')}")
    lines += ["", f"{'residuals':<24}{'n':>6}{'mean':>12}{'std':>12}{'max |r|':>12}{'rms r/sigma':>13}"
                  f"{'lag-1 acf':>11}"]
    for tag, r in report["residuals"].items():
        lines.append(f"  {tag:<22}{r['n']:>6}{_g(r['mean'], '.3g'):>12}{_g(r['std'], '.3g'):>12}"
                     f"{_g(r['max_abs'], '.3g'):>12}{_g(r['standardised_rms'], '.3g'):>13}"
                     f"{_g(r['lag1_autocorrelation'], '+.2f'):>11}")
    if report.get("variance_parameters"):
        models = report["variance_models"]
        lines.append("  variance model: " + ", ".join(
            f"{tag} {models[tag]} {_g(v, '.3g')}" for tag, v in report["variance_parameters"].items()))
    lines.append(f"cost {_g(report['cost'])}, {report['degrees_of_freedom']} degrees of freedom, "
                 f"{report['evaluations']} model evaluations; {report['message']}")
    return "\n".join(lines)


def plot_fit(out: Path, fit: Any, experiments: Sequence[Any], model: Any, tag_of: Mapping[str, str],
             batches: Sequence[Any]) -> Iterator[Path]:
    """One ``fit_<tag>.png`` per measured output in ``out``: measured points and the fitted model (model units);
    yields each path. ``ImportError`` when matplotlib is missing."""
    from matplotlib.figure import Figure

    names = sorted({n for e in experiments for n in e.measurements})
    for name in names:
        fig = Figure(figsize=(9, 2.6 * len(experiments)))
        axes = fig.subplots(len(experiments), 1, squeeze=False)[:, 0]
        for ax, res, exp, batch in zip(axes, fit.fits, experiments, batches, strict=True):
            t_min = np.asarray(exp.times_s, dtype=float) / 60.0
            rows = model.state_slices.get(name) or model.output_slices[name]
            src = res.states if name in model.state_slices else res.outputs
            unit = next((v.unit for v in (*model.declaration.states, *model.declaration.outputs) if v.name == name), "")
            measured = np.asarray(exp.measurements.get(name, np.full(t_min.shape, math.nan)), dtype=float).ravel()
            ax.plot(t_min, measured, ".", ms=3, label="plant (recorded)")
            ax.plot(t_min, np.asarray(src[rows], dtype=float).ravel(), "-", lw=1.5, label="model (fitted)")
            ax.set_title(f"{tag_of.get(name, name)} — batch {batch.id}", fontsize=9)
            ax.set_ylabel(unit)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("batch time (min)")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"fit_{tag_of.get(name, name)}.png"
        fig.savefig(path, dpi=90)
        yield path
