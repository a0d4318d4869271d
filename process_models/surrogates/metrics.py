"""Accuracy measures of a surrogate against the physics model."""

from __future__ import annotations

import numpy as np

__all__ = ["nrmse", "nrmse_by_output", "nrmse_per_row"]


def nrmse(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error normalised by the range (max - min) of ``reference`` (0 for an exact match; a
    constant reference is normalised by its magnitude, or not at all when it is zero)."""
    p, r = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    rmse = float(np.sqrt(np.mean((p - r) ** 2)))
    span = float(np.max(r) - np.min(r)) if r.size else 0.0
    if span <= 1e-12 * max(float(np.max(np.abs(r))) if r.size else 0.0, 1e-300):
        span = float(np.max(np.abs(r))) if r.size and np.max(np.abs(r)) > 0 else 1.0
    return rmse / span


def nrmse_per_row(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """NRMSE of each row ``i`` of (runs, rows, times) arrays, over all runs and times."""
    return np.array([nrmse(predicted[:, i], reference[:, i]) for i in range(reference.shape[1])])


def nrmse_by_output(predicted: np.ndarray, reference: np.ndarray, names: list[str], sizes: list[int]
                    ) -> dict[str, float]:
    """NRMSE of each named output over its rows (a vector output, e.g. a size distribution, as one quantity)."""
    out, start = {}, 0
    for name, size in zip(names, sizes, strict=True):
        out[name] = nrmse(predicted[:, start:start + size], reference[:, start:start + size])
        start += size
    return out
