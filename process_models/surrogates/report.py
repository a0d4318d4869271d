"""The PNG validation report of a surrogate: parity plots of every kept output over the held-out test runs and
the worst test trajectories against the physics model. Drawn on a matplotlib ``Figure`` without pyplot (no global
backend or figure state is touched), as :mod:`hil.scenario_report` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from process_models.declaration import CompiledModel
from process_models.surrogates.dataset import TrainingDataset
from process_models.surrogates.metrics import nrmse

__all__ = ["write_report"]

_MAX_OUTPUTS = 6


def _pick_outputs(reference: np.ndarray, names: Sequence[str]) -> list[int]:
    """Up to six outputs that vary (constant outputs say little in a parity plot)."""
    varying = [i for i in range(len(names)) if np.ptp(reference[:, i]) > 0]
    return (varying or list(range(len(names))))[:_MAX_OUTPUTS]


def write_report(path: str | Path, model: CompiledModel, dataset: TrainingDataset, runs: np.ndarray,
                 predicted: np.ndarray, reference: np.ndarray, names: Sequence[str], artifact: Any) -> Path:
    """Write the report PNG to ``path``: row 1-2 parity plots, row 3 the worst test runs of the first output."""
    picked = _pick_outputs(reference, names)
    units = {v.name: v.unit for v in model.declaration.outputs}
    t_min = np.asarray(dataset.arrays["times_s"]) / 60.0
    fig = Figure(figsize=(12, 10))
    FigureCanvasAgg(fig)
    for j, i in enumerate(picked):
        ax = fig.add_subplot(3, 3, j + 1)
        ref, pred = reference[:, i].ravel(), predicted[:, i].ravel()
        ax.plot(ref, pred, ".", ms=2, alpha=0.5)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_title(f"{names[i]}  NRMSE {nrmse(predicted[:, i], reference[:, i]):.2%}", fontsize=8)
        ax.set_xlabel(f"physics [{units.get(names[i].split('[')[0], '')}]", fontsize=7)
        ax.set_ylabel("surrogate", fontsize=7)
        ax.tick_params(labelsize=6)
    key = picked[0]
    errors = [nrmse(predicted[r, key], reference[r, key]) for r in range(reference.shape[0])]
    for j, r in enumerate(np.argsort(errors)[::-1][:3]):
        ax = fig.add_subplot(3, 3, 7 + j)
        ax.plot(t_min, reference[r, key], "k-", lw=1.2, label="physics")
        ax.plot(t_min, predicted[r, key], "r--", lw=1.2, label="surrogate")
        ax.set_title(f"worst #{j + 1}: test run {int(runs[r])}, {names[key]} NRMSE {errors[r]:.2%}", fontsize=8)
        ax.set_xlabel("time [min]", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle(f"{artifact.metadata['kind']} surrogate of {model.declaration.name}: "
                 f"{dataset.sample_count} runs, test NRMSE max {artifact.metadata['metrics']['test_nrmse_max']:.2%}",
                 fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    return out
