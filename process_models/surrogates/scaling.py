"""Per-element scaling of states, inputs and parameters into the coordinates a surrogate works in.

``z = (phi(x) - offset) / scale`` with ``phi = log`` for elements marked ``log`` (positive quantities spanning
decades, e.g. crystal moments) and the identity otherwise. The same formula is applied to numpy arrays, torch
tensors and casadi expressions, so the translated network sees exactly what the trained one saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
import torch

__all__ = ["Scaler", "fit_scaler"]


@dataclass(frozen=True)
class Scaler:
    """Affine (optionally log-affine) scaling per element; arrays of equal length."""

    offset: np.ndarray
    scale: np.ndarray
    log: np.ndarray

    @property
    def size(self) -> int:
        return int(self.offset.size)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Scale ``x`` (last axis = elements)."""
        x = np.asarray(x, dtype=float)
        phi = np.where(self.log, np.log(np.where(self.log, np.maximum(x, 1e-300), 1.0)), x)
        return (phi - self.offset) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        phi = np.asarray(z, dtype=float) * self.scale + self.offset
        return np.where(self.log, np.exp(np.where(self.log, phi, 0.0)), phi)

    def forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        off, sc, lg = (torch.as_tensor(a, dtype=x.dtype) for a in (self.offset, self.scale, self.log))
        phi = torch.where(lg.bool(), torch.log(torch.clamp(x, min=1e-300)), x)
        return (phi - off) / sc

    def inverse_torch(self, z: torch.Tensor) -> torch.Tensor:
        off, sc, lg = (torch.as_tensor(a, dtype=z.dtype) for a in (self.offset, self.scale, self.log))
        phi = z * sc + off
        return torch.where(lg.bool(), torch.exp(torch.where(lg.bool(), phi, torch.zeros_like(phi))), phi)

    def forward_casadi(self, x: ca.SX | ca.MX) -> ca.SX | ca.MX:
        # log|x| (floored) instead of log x: equal for x > 0, and no NaN when an optimiser's trial point makes a
        # positive quantity negative (IPOPT would stop with Invalid_Number_Detected)
        parts = [((ca.log(ca.fmax(ca.fabs(x[i]), 1e-300)) if self.log[i] else x[i]) - float(self.offset[i]))
                 / float(self.scale[i]) for i in range(self.size)]
        return ca.vertcat(*parts) if parts else x[0:0]

    def inverse_casadi(self, z: ca.SX | ca.MX) -> ca.SX | ca.MX:
        parts = []
        for i in range(self.size):
            phi = z[i] * float(self.scale[i]) + float(self.offset[i])
            parts.append(ca.exp(ca.fmin(phi, 700.0)) if self.log[i] else phi)  # no overflow to inf
        return ca.vertcat(*parts) if parts else z[0:0]

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset.tolist(), "scale": self.scale.tolist(), "log": self.log.astype(bool).tolist()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Scaler:
        return cls(np.asarray(doc["offset"], dtype=float), np.asarray(doc["scale"], dtype=float),
                   np.asarray(doc["log"], dtype=bool))


def fit_scaler(samples: np.ndarray, allow_log: bool = True, log_ratio: float = 100.0,
               groups: list[slice] | None = None, group_floor: float = 0.01) -> Scaler:
    """Scaler of ``samples`` ``(n, size)``: log for elements that are all > 0 and span more than ``log_ratio``
    (max/min), then mean 0 and standard deviation 1 (a constant element gets scale 1 x its magnitude or 1).

    ``groups``: element slices of one vector quantity (a size distribution's bins); the scale of an element is at
    least ``group_floor`` x the largest scale of its group, so a bin that is almost always empty in the data
    does not blow up when it fills."""
    x = np.asarray(samples, dtype=float).reshape(-1, samples.shape[-1]) if samples.size else np.zeros((1, 0))
    if x.shape[1] == 0:
        return Scaler(np.zeros(0), np.ones(0), np.zeros(0, dtype=bool))
    lo, hi = x.min(axis=0), x.max(axis=0)
    log = allow_log & (lo > 0) & (hi > log_ratio * np.where(lo > 0, lo, 1.0))
    phi = np.where(log, np.log(np.where(log, np.maximum(x, 1e-300), 1.0)), x)
    offset = phi.mean(axis=0)
    scale = phi.std(axis=0)
    tiny = scale <= 1e-12 * np.maximum(np.abs(offset), 1e-300)
    scale = np.where(tiny, np.where(np.abs(offset) > 0, np.abs(offset), 1.0), scale)
    for group in groups or []:
        if group.stop - group.start > 1:
            part = scale[group]
            scale[group] = np.maximum(part, group_floor * np.max(np.where(log[group], 0.0, part)))
    return Scaler(offset, scale, log)
