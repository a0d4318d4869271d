"""State-transition surrogate of any declared model: ``x_{k+1} = x_k + Δt·f_θ(x_k, u_k, p)`` in scaled coordinates.

With ``z = S_x(x)`` (per-state log/affine scaling, :mod:`.scaling`), ``ũ = S_u(u)``, ``p̃ = S_p(p)``::

    z_{k+1} = z_k + (Δt / Δt_train) · d ⊙ g_θ(z_k, ũ_k, p̃)

where ``g_θ`` is an MLP, ``d`` the standard deviation of one-step increments of ``z`` in the training data (so
the network's outputs are O(1)), ``u_k`` the mean input over the step and ``p`` the parameters the design varied
(the others are fixed at the training values). Training unrolls the map over windows of ``window`` steps (with a
curriculum from one step to the full window) and minimises the squared error of the whole rolled-out window, so
errors do not grow over a batch; the validation criterion is the rollout of whole validation trajectories.
Outputs are the declared model's output expressions evaluated on the surrogate's states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
import torch

from process_models.declaration import CompiledModel
from process_models.surrogates.casadi_mlp import mlp_expression
from process_models.surrogates.dataset import DatasetError, TrainingDataset
from process_models.surrogates.mlp import MlpSpec, build_mlp
from process_models.surrogates.scaling import Scaler, fit_scaler
from process_models.surrogates.training_loop import TrainingHistory, fit, seeded, split_runs

__all__ = ["StateTransitionSurrogate", "train_state_transition"]


@dataclass
class StateTransitionSurrogate:
    """A trained state-transition surrogate (float64, evaluation mode)."""

    spec: MlpSpec
    network: torch.nn.Sequential
    state_scaler: Scaler
    input_scaler: Scaler
    parameter_scaler: Scaler
    increment_scale: np.ndarray
    step_s: float
    parameter_names: tuple[str, ...]
    fixed_parameters: Mapping[str, float]

    kind = "state_transition"

    # -- torch -------------------------------------------------------------------------------------
    def _step_scaled(self, z: torch.Tensor, u: torch.Tensor, p: torch.Tensor, ratio: float = 1.0) -> torch.Tensor:
        g = self.network(torch.cat([z, u, p], dim=-1))
        return z + ratio * torch.as_tensor(self.increment_scale, dtype=z.dtype) * g

    def rollout_scaled(self, z0: torch.Tensor, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``z0`` (B, nx), ``u`` scaled (B, K, nu), ``p`` scaled (B, np) -> scaled states (B, K, nx) after each step."""
        z, out = z0, []
        for k in range(u.shape[1]):
            z = self._step_scaled(z, u[:, k], p)
            out.append(z)
        return torch.stack(out, dim=1)

    # -- numpy -------------------------------------------------------------------------------------
    def rollout(self, x0: np.ndarray, interval_inputs: np.ndarray, parameters: np.ndarray | None = None
                ) -> np.ndarray:
        """Batched prediction: ``x0`` (B, nx), ``interval_inputs`` (B, nu, K) mean input per step, ``parameters``
        (B, n_varied) -> states (B, nx, K+1) in SI units, one step of ``step_s`` per input column."""
        x0 = np.atleast_2d(np.asarray(x0, dtype=float))
        u = np.asarray(interval_inputs, dtype=float)
        if u.ndim == 2:
            u = u[None]
        b = x0.shape[0]
        p = np.zeros((b, 0)) if parameters is None else np.atleast_2d(np.asarray(parameters, dtype=float))
        with torch.no_grad():
            z0 = torch.from_numpy(self.state_scaler.forward(x0))
            us = torch.from_numpy(self.input_scaler.forward(np.swapaxes(u, 1, 2)))
            ps = torch.from_numpy(self.parameter_scaler.forward(p))
            z = self.rollout_scaled(z0, us, ps).numpy()
        x = self.state_scaler.inverse(z)  # (B, K, nx)
        return np.concatenate([x0[:, :, None], np.swapaxes(x, 1, 2)], axis=2)

    def features(self, x: np.ndarray, u: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        """Scaled network inputs ``[z, ũ, p̃]`` for states (n, nx), inputs (n, nu), parameters (n, np)."""
        x = np.atleast_2d(x)
        p = np.zeros((x.shape[0], 0)) if p is None else np.atleast_2d(p)
        return np.hstack([self.state_scaler.forward(x), self.input_scaler.forward(np.atleast_2d(u)),
                          self.parameter_scaler.forward(p)])

    # -- casadi ------------------------------------------------------------------------------------
    def step_expression(self, x: ca.SX | ca.MX, u: ca.SX | ca.MX, p_varied: ca.SX | ca.MX,
                        ratio: ca.SX | ca.MX | float = 1.0) -> ca.SX | ca.MX:
        """One step as a casadi expression (``ratio`` = h / ``step_s``; 1 reproduces the trained step)."""
        z = self.state_scaler.forward_casadi(x)
        inp = ca.vertcat(z, self.input_scaler.forward_casadi(u), self.parameter_scaler.forward_casadi(p_varied))
        g = mlp_expression(self.spec, self.network.state_dict(), inp)
        z_next = z + ratio * ca.DM(self.increment_scale) * g
        return self.state_scaler.inverse_casadi(z_next)

    def interval_function(self, model: CompiledModel, steps: int, name: str = "surrogate_interval") -> ca.Function:
        """``(x, u, p, t, dt) -> x(t+dt)`` with the signature of :func:`process_models.discretization.rk4_interval`:
        ``steps`` surrogate steps of ``dt/steps`` each (exactly the trained map when ``dt/steps == step_s``);
        ``p`` is the model's full parameter vector, of which the varied parameters are picked by name."""
        if steps < 1:
            raise ValueError(f"interval_function: steps must be >= 1, got {steps}")
        missing = [n for n in self.parameter_names if n not in model.parameter_names]
        if missing:
            raise ValueError(f"surrogate parameters {missing} are not parameters of model '{model.declaration.name}'")
        xs, us, ps = ca.SX.sym("x", model.nx), ca.SX.sym("u", model.nu), ca.SX.sym("p", model.np)
        ts, dts = ca.SX.sym("t"), ca.SX.sym("dt")
        idx = [model.parameter_names.index(n) for n in self.parameter_names]
        pv = ps[idx] if idx else ca.SX(0, 1)
        ratio = dts / (steps * self.step_s)
        xk = xs
        for _ in range(steps):
            xk = self.step_expression(xk, us, pv, ratio)
        return ca.Function(name, [xs, us, ps, ts, dts], [xk])

    def architecture(self) -> dict[str, Any]:
        return {"kind": self.kind, "mlp": self.spec.to_json(), "step_s": self.step_s,
                "parameter_names": list(self.parameter_names), "fixed_parameters": dict(self.fixed_parameters),
                "state_scaler": self.state_scaler.to_json(), "input_scaler": self.input_scaler.to_json(),
                "parameter_scaler": self.parameter_scaler.to_json(),
                "increment_scale": self.increment_scale.tolist()}

    @classmethod
    def from_architecture(cls, doc: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                          arrays: Mapping[str, np.ndarray] | None = None) -> StateTransitionSurrogate:
        spec = MlpSpec.from_json(doc["mlp"])
        net = build_mlp(spec)
        net.load_state_dict(state_dict)
        net.eval()
        return cls(spec, net, Scaler.from_json(doc["state_scaler"]), Scaler.from_json(doc["input_scaler"]),
                   Scaler.from_json(doc["parameter_scaler"]), np.asarray(doc["increment_scale"], dtype=float),
                   float(doc["step_s"]), tuple(doc["parameter_names"]), dict(doc["fixed_parameters"]))


def _windows(states: np.ndarray, inputs: np.ndarray, params: np.ndarray, window: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All windows of ``window`` steps (stride window/2) of runs (S, T, nx) -> z0, U, P, Z."""
    s, t, _ = states.shape
    starts = list(range(0, max(t - 1 - window, 0) + 1, max(window // 2, 1)))
    z0 = np.concatenate([states[:, k] for k in starts])
    uu = np.concatenate([inputs[:, k:k + window] for k in starts])
    pp = np.concatenate([params for _ in starts])
    zz = np.concatenate([states[:, k + 1:k + 1 + window] for k in starts])
    return z0, uu, pp, zz


def _state_groups(dataset: TrainingDataset, nx: int) -> list[slice]:
    """Slices of the model's vector states (a size distribution's bins)."""
    model = dataset.source.build()
    if model.nx != nx:
        return []
    return [sl for sl in model.state_slices.values() if sl.stop - sl.start > 1]


def train_state_transition(dataset: TrainingDataset, *, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                           epochs: int = 300, window: int = 16, batch_size: int = 128, learning_rate: float = 3e-3,
                           patience: int = 40, seed: int = 0, progress: bool = True
                           ) -> tuple[StateTransitionSurrogate, TrainingHistory, dict[str, np.ndarray]]:
    """Train a state-transition surrogate on a dataset with stored states; returns the surrogate (best
    validation epoch), the loss history and the run split (``train``/``validation``/``test`` indices)."""
    if "states" not in dataset.arrays:
        raise DatasetError("a state-transition surrogate needs a dataset with states (store_states=True)")
    gen = seeded(seed)
    x = np.swapaxes(dataset.arrays["states"], 1, 2)  # (S, T, nx)
    u = np.swapaxes(dataset.arrays["interval_inputs"], 1, 2)  # (S, T-1, nu)
    p = dataset.arrays["parameters"]
    s, t, nx = x.shape
    if s < 3 or t < 2:
        raise DatasetError(f"state-transition training needs >= 3 runs of >= 2 times, got {s} runs of {t}")
    split = split_runs(s, seed)
    tr = split["train"]
    groups = _state_groups(dataset, nx)
    xs = fit_scaler(x[tr].reshape(-1, nx), groups=groups)
    us = fit_scaler(u[tr].reshape(-1, u.shape[2]), allow_log=False)
    ps = fit_scaler(p[tr], allow_log=False) if p.shape[1] else fit_scaler(np.zeros((1, 0)))
    z = xs.forward(x)
    uz = us.forward(u)
    pz = ps.forward(p) if p.shape[1] else np.zeros((s, 0))
    inc = np.diff(z[tr], axis=1).reshape(-1, nx).std(axis=0)
    inc = np.where(inc > 1e-9, inc, 1e-9)
    for group in groups:  # as for the states: no near-zero increment scale inside a vector quantity
        inc[group] = np.maximum(inc[group], 0.01 * np.max(inc[group]))
    spec = MlpSpec(nx + u.shape[2] + pz.shape[1], nx, tuple(hidden), activation)
    net = build_mlp(spec)
    design = dataset.design
    step_s = float(design.interval_s)
    surrogate = StateTransitionSurrogate(spec, net, xs, us, ps, inc, step_s,
                                         tuple(r.name for r in design.parameters), dict(design.base_parameters))
    window = max(1, min(window, t - 1))
    z0, uw, pw, zw = (torch.from_numpy(a) for a in _windows(z[tr], uz[tr], pz[tr], window))
    va = split["validation"]
    vz0, vu, vp, vz = (torch.from_numpy(a) for a in (z[va, 0], uz[va], pz[va], z[va, 1:]))
    ramp = max(1, epochs // 4)

    def batch_loss(idx: torch.Tensor, epoch: int) -> torch.Tensor:
        w = min(window, 1 + (window * epoch) // ramp)
        pred = surrogate.rollout_scaled(z0[idx], uw[idx, :w], pw[idx])
        return torch.mean((pred - zw[idx, :w]) ** 2)

    def validation_loss() -> float:
        return float(torch.mean((surrogate.rollout_scaled(vz0, vu, vp) - vz) ** 2))

    history = fit(net, batch_loss, z0.shape[0], validation_loss, epochs=epochs, batch_size=batch_size,
                  learning_rate=learning_rate, patience=patience, generator=gen,
                  label=f"training state-transition surrogate ({dataset.metadata['model_name']})", progress=progress)
    return surrogate, history, split
