"""Outlet-curve surrogate of a chromatography column: programme and isotherm parameters -> outlet curves.

The design point of a run (load concentration, load end, gradient end, isotherm parameters ..., the unit-cube
coordinates of :class:`~.design.TrainingDesign`, centred to [-1, 1]) is mapped by an MLP to the coefficients of the
curves on a reduced basis: with every output curve scaled by its largest training value and the curves of a run
concatenated into one vector ``y``, the training set's mean ``ȳ`` and leading right singular vectors ``V_k``
(SVD / PCA; Sirovich 1987) give ``y ≈ ȳ + c V_k``. The network predicts ``c`` (normalised by the singular
values); the loss is the squared error of the reconstructed curves. 1,000 what-if runs are one batched forward
pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from process_models.surrogates.dataset import DatasetError, TrainingDataset
from process_models.surrogates.mlp import MlpSpec, build_mlp
from process_models.surrogates.training_loop import TrainingHistory, fit, seeded, split_runs

__all__ = ["OutletCurveSurrogate", "train_outlet_curve"]


@dataclass
class OutletCurveSurrogate:
    """A trained outlet-curve surrogate: ``predict(points)`` -> curves (B, n_outputs, T)."""

    spec: MlpSpec
    network: torch.nn.Sequential
    output_names: tuple[str, ...]
    output_scale: np.ndarray
    mean: np.ndarray
    basis: np.ndarray
    coefficient_scale: np.ndarray
    times_s: np.ndarray

    kind = "outlet_curve"

    def _curves(self, coefficients: torch.Tensor) -> torch.Tensor:
        c = coefficients * torch.as_tensor(self.coefficient_scale)
        return torch.as_tensor(self.mean) + c @ torch.as_tensor(self.basis)

    def features(self, points: np.ndarray) -> np.ndarray:
        """Network inputs (centred design coordinates) of unit-cube design points (B, d)."""
        return 2.0 * np.atleast_2d(np.asarray(points, dtype=float)) - 1.0

    def predict(self, points: np.ndarray) -> np.ndarray:
        """Outlet curves (B, n_outputs, T) in SI units for design points (B, d) in the unit cube."""
        with torch.no_grad():
            y = self._curves(self.network(torch.from_numpy(self.features(points)))).numpy()
        n, t = len(self.output_names), self.times_s.size
        return y.reshape(-1, n, t) * self.output_scale[None, :, None]

    def architecture(self) -> dict[str, Any]:
        return {"kind": self.kind, "mlp": self.spec.to_json(), "output_names": list(self.output_names),
                "output_scale": self.output_scale.tolist(), "basis_size": int(self.basis.shape[0])}

    @classmethod
    def from_architecture(cls, doc: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                          arrays: Mapping[str, np.ndarray] | None = None) -> OutletCurveSurrogate:
        if arrays is None:
            raise DatasetError("an outlet-curve surrogate needs its basis arrays")
        spec = MlpSpec.from_json(doc["mlp"])
        net = build_mlp(spec)
        net.load_state_dict(state_dict)
        net.eval()
        return cls(spec, net, tuple(doc["output_names"]), np.asarray(doc["output_scale"], dtype=float),
                   arrays["curve_mean"], arrays["curve_basis"], arrays["coefficient_scale"], arrays["times_s"])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"curve_mean": self.mean, "curve_basis": self.basis, "coefficient_scale": self.coefficient_scale,
                "times_s": self.times_s}


def train_outlet_curve(dataset: TrainingDataset, *, hidden: Sequence[int] = (128, 128), activation: str = "tanh",
                       epochs: int = 2000, batch_size: int = 32, learning_rate: float = 3e-3, patience: int = 300,
                       energy: float = 1 - 1e-7, max_basis: int = 40, seed: int = 0, progress: bool = True
                       ) -> tuple[OutletCurveSurrogate, TrainingHistory, dict[str, np.ndarray]]:
    """Train on a dataset's stored outputs (all of them are curves to predict); returns the surrogate, history
    and run split. The basis keeps the fewest singular vectors holding ``energy`` of the variance (at most
    ``max_basis``)."""
    y = np.asarray(dataset.arrays["outputs"], dtype=float)  # (S, n, T)
    s, n, t = y.shape
    if s < 5:
        raise DatasetError(f"outlet-curve training needs >= 5 runs, got {s}")
    gen = seeded(seed)
    split = split_runs(s, seed)
    tr, va = split["train"], split["validation"]
    scale = np.max(np.abs(y[tr]), axis=(0, 2))
    scale = np.where(scale > 0, scale, 1.0)
    flat = (y / scale[None, :, None]).reshape(s, n * t)
    mean = flat[tr].mean(axis=0)
    _, sing, vt = np.linalg.svd(flat[tr] - mean, full_matrices=False)
    cum = np.cumsum(sing**2) / max(np.sum(sing**2), 1e-300)
    k = int(min(max_basis, np.searchsorted(cum, energy) + 1, vt.shape[0]))
    basis = vt[:k]
    coef_scale = sing[:k] / np.sqrt(max(len(tr), 1))
    coef_scale = np.where(coef_scale > 0, coef_scale, 1.0)
    points = dataset.arrays["points"]
    spec = MlpSpec(points.shape[1], k, tuple(hidden), activation)
    net = build_mlp(spec)
    surrogate = OutletCurveSurrogate(spec, net, tuple(dataset.metadata["outputs"]), scale, mean, basis, coef_scale,
                                     np.asarray(dataset.arrays["times_s"], dtype=float))
    x_tr = torch.from_numpy(surrogate.features(points[tr]))
    y_tr = torch.from_numpy(flat[tr])
    x_va = torch.from_numpy(surrogate.features(points[va]))
    y_va = torch.from_numpy(flat[va])

    def batch_loss(idx: torch.Tensor, epoch: int) -> torch.Tensor:
        return torch.mean((surrogate._curves(net(x_tr[idx])) - y_tr[idx]) ** 2)

    def validation_loss() -> float:
        return float(torch.mean((surrogate._curves(net(x_va)) - y_va) ** 2))

    history = fit(net, batch_loss, len(tr), validation_loss, epochs=epochs, batch_size=batch_size,
                  learning_rate=learning_rate, patience=patience, generator=gen,
                  label=f"training outlet-curve surrogate ({dataset.metadata['model_name']}, basis {k})",
                  progress=progress)
    return surrogate, history, split
