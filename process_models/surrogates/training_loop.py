"""The shared training loop: seeded Adam with early stopping on a validation loss, progress with the loss."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from process_models.surrogates.progress import Progress

__all__ = ["TrainingHistory", "fit", "seeded", "split_runs"]


@dataclass
class TrainingHistory:
    """Losses per epoch (training mean and validation), the epoch whose weights were kept, and why it stopped."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped: str = ""

    def to_json(self) -> dict[str, object]:
        return {"train_loss": self.train_loss, "validation_loss": self.validation_loss,
                "best_epoch": self.best_epoch, "stopped": self.stopped, "epochs_run": len(self.train_loss)}


def seeded(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight initialisation) and return a generator for shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def split_runs(n: int, seed: int, validation: float = 0.15, test: float = 0.15) -> dict[str, np.ndarray]:
    """Seeded split of run indices into train / validation / test (each non-empty when n >= 3)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test * n))) if n >= 3 else 0
    n_val = max(1, int(round(validation * n))) if n >= 3 else 0
    return {"test": np.sort(order[:n_test]), "validation": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


def fit(module: nn.Module, batch_loss: Callable[[torch.Tensor, int], torch.Tensor], n_train: int,
        validation_loss: Callable[[], float], *, epochs: int, batch_size: int, learning_rate: float,
        patience: int, generator: torch.Generator, label: str, progress: bool = True) -> TrainingHistory:
    """Train ``module`` with Adam (cosine-decayed learning rate) on mini-batches of ``range(n_train)``.

    ``batch_loss(indices, epoch)``: loss of one mini-batch; ``validation_loss()``: the early-stopping criterion,
    evaluated every epoch without gradients. The weights of the best validation epoch are restored; training stops
    after ``patience`` epochs without improvement.
    """
    opt = torch.optim.Adam(module.parameters(), lr=learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=learning_rate * 0.02)
    history = TrainingHistory()
    best, best_state, waited = math.inf, copy.deepcopy(module.state_dict()), 0
    bar = Progress(label, epochs, "epochs", enabled=progress)
    for epoch in range(epochs):
        module.train()
        perm = torch.randperm(n_train, generator=generator)
        total, batches = 0.0, 0
        for start in range(0, n_train, batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad()
            loss = batch_loss(idx, epoch)
            loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), 10.0)
            opt.step()
            total += float(loss.detach())
            batches += 1
        sched.step()
        module.eval()
        with torch.no_grad():
            val = float(validation_loss())
        history.train_loss.append(total / max(batches, 1))
        history.validation_loss.append(val)
        if val < best:
            best, best_state, waited, history.best_epoch = val, copy.deepcopy(module.state_dict()), 0, epoch
        else:
            waited += 1
        bar.update(epoch + 1, f"loss {history.train_loss[-1]:.3e}  val {val:.3e}  best {best:.3e}")
        if not math.isfinite(history.train_loss[-1]):
            history.stopped = f"non-finite training loss at epoch {epoch}"
            break
        if waited >= patience:
            history.stopped = f"early stop: no validation improvement in {patience} epochs"
            break
    else:
        history.stopped = f"epoch limit {epochs}"
    bar.close(history.stopped)
    module.load_state_dict(best_state)
    module.eval()
    return history
