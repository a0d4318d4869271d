"""The casadi translation of a trained network equals the torch forward pass (values and Jacobians, float64)."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest
import torch

from process_models.surrogates.casadi_mlp import mlp_function
from process_models.surrogates.mlp import MlpSpec, build_mlp
from process_models.surrogates.state_transition import train_state_transition


@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_translated_mlp_matches_torch_values_and_jacobians(activation):
    torch.manual_seed(1)
    spec = MlpSpec(5, 3, (16, 12), activation)
    net = build_mlp(spec)
    f = mlp_function(spec, net.state_dict())
    x_sym = ca.SX.sym("x", 5)
    jac = ca.Function("mlp_jacobian", [x_sym], [ca.jacobian(f(x_sym), x_sym)])
    rng = np.random.default_rng(2)
    for x in rng.normal(scale=2.0, size=(20, 5)):
        xt = torch.from_numpy(x)
        value = net(xt).detach().numpy()
        jt = torch.autograd.functional.jacobian(net, xt).numpy()
        assert np.max(np.abs(np.asarray(f(x)).ravel() - value)) <= 1e-10
        assert np.max(np.abs(np.asarray(jac(x)) - jt)) <= 1e-10


def test_surrogate_step_in_casadi_matches_the_torch_rollout(moments_dataset, moments_case):
    surrogate, *_ = train_state_transition(moments_dataset, hidden=(8, 8), epochs=2, window=3, seed=0,
                                           progress=False)
    model = moments_case.model
    step = surrogate.interval_function(model, 1)
    p = model.pack_parameters()
    x0 = moments_dataset.arrays["states"][:4, :, 0]
    u = moments_dataset.arrays["interval_inputs"][:4, :, :1]
    torch_next = surrogate.rollout(x0, u)[:, :, 1]
    for i in range(4):
        casadi_next = np.asarray(step(x0[i], u[i, :, 0], p, 0.0, surrogate.step_s)).ravel()
        np.testing.assert_allclose(casadi_next, torch_next[i], rtol=1e-10, atol=0)
    # Jacobian of the step w.r.t. the state: casadi AD vs torch autograd through scaling and network
    xs = ca.SX.sym("x", model.nx)
    jac = ca.Function("j", [xs], [ca.jacobian(step(xs, u[0, :, 0], p, 0.0, surrogate.step_s), xs)])

    def torch_step(x: torch.Tensor) -> torch.Tensor:
        z = surrogate.state_scaler.forward_torch(x[None])
        us = surrogate.input_scaler.forward_torch(torch.from_numpy(u[0, :, 0])[None])
        z1 = surrogate._step_scaled(z, us, torch.zeros((1, 0), dtype=torch.float64))
        return surrogate.state_scaler.inverse_torch(z1)[0]

    jt = torch.autograd.functional.jacobian(torch_step, torch.from_numpy(x0[0])).numpy()
    jc = np.asarray(jac(x0[0]))
    np.testing.assert_allclose(jc, jt, rtol=1e-10, atol=1e-10 * np.max(np.abs(jt)))
