"""The multilayer perceptron every surrogate uses: Linear -> activation -> ... -> Linear (float64).

The architecture is data (:class:`MlpSpec`, stored in the artifact) so the network can be rebuilt for
``torch.load(..., weights_only=True)`` and translated to casadi (:mod:`.casadi_mlp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MlpSpec", "build_mlp"]

ACTIVATIONS = ("tanh", "silu")


@dataclass(frozen=True)
class MlpSpec:
    """``inputs`` -> ``hidden`` layer widths (``activation`` after each) -> ``outputs`` (linear)."""

    inputs: int
    outputs: int
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.inputs < 1 or self.outputs < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(f"MLP sizes must be >= 1, got inputs={self.inputs} hidden={self.hidden} "
                             f"outputs={self.outputs}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "hidden": list(self.hidden),
                "activation": self.activation}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> MlpSpec:
        return cls(int(doc["inputs"]), int(doc["outputs"]), tuple(doc["hidden"]), str(doc["activation"]))


def build_mlp(spec: MlpSpec) -> nn.Sequential:
    """An untrained float64 network of ``spec`` (initialised from torch's current RNG state)."""
    layers: list[nn.Module] = []
    width = spec.inputs
    for h in spec.hidden:
        layers.append(nn.Linear(width, h))
        layers.append(nn.Tanh() if spec.activation == "tanh" else nn.SiLU())
        width = h
    layers.append(nn.Linear(width, spec.outputs))
    return nn.Sequential(*layers).to(torch.float64)
