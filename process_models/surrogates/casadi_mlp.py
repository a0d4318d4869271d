"""Translation of a trained MLP (:mod:`.mlp`) into casadi expressions, the weights as constants.

Each ``Linear`` layer becomes ``W @ a + b`` with ``W``, ``b`` casadi ``DM`` constants (float64, exactly the torch
values), ``tanh`` becomes ``ca.tanh`` and SiLU ``a / (1 + exp(-a))``. The result is an ordinary casadi expression:
IPOPT gets exact first and second derivatives by casadi's algorithmic differentiation, with no callback into torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import casadi as ca
import numpy as np
import torch

from process_models.surrogates.mlp import MlpSpec

__all__ = ["mlp_expression", "mlp_function"]


def _layers(spec: MlpSpec, state_dict: Mapping[str, torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    n_linear = len(spec.hidden) + 1
    for i in range(n_linear):
        idx = 2 * i  # Sequential index of the i-th Linear (activations sit between)
        w = state_dict[f"{idx}.weight"].detach().to(torch.float64).cpu().numpy()
        b = state_dict[f"{idx}.bias"].detach().to(torch.float64).cpu().numpy()
        out.append((w, b))
    return out


def mlp_expression(spec: MlpSpec, state_dict: Mapping[str, torch.Tensor], inputs: ca.SX | ca.MX) -> ca.SX | ca.MX:
    """The network applied to the column vector ``inputs`` (length ``spec.inputs``) as a casadi expression."""
    if inputs.numel() != spec.inputs:
        raise ValueError(f"mlp_expression: network takes {spec.inputs} inputs, got an expression of {inputs.numel()}")
    layers = _layers(spec, state_dict)
    a = ca.reshape(inputs, spec.inputs, 1)
    for i, (w, b) in enumerate(layers):
        a = ca.mtimes(ca.DM(w), a) + ca.DM(b)
        if i < len(layers) - 1:
            a = ca.tanh(a) if spec.activation == "tanh" else a / (1 + ca.exp(-a))
    return a


def mlp_function(spec: MlpSpec, state_dict: Mapping[str, torch.Tensor], name: str = "mlp") -> ca.Function:
    """``(input[n_in]) -> output[n_out]`` as a casadi Function (SX)."""
    x = ca.SX.sym("input", spec.inputs)
    return ca.Function(name, [x], [mlp_expression(spec, state_dict, x)], ["input"], ["output"])
