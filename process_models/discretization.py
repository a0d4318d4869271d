"""Fixed-step discretisation of a declared model, shared by the NMPC and the moving-horizon estimator."""

from __future__ import annotations

import casadi as ca

from process_models.declaration import CompiledModel


def rk4_interval(model: CompiledModel, substeps: int, name: str = "rk4_interval") -> ca.Function:
    """``(x, u, p, t, dt) -> x(t + dt)``: classical RK4 (Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed.,
    1993, §II.1) in ``substeps`` equal steps over an interval of (symbolic) length ``dt`` s, inputs held."""
    if substeps < 1:
        raise ValueError(f"rk4_interval: substeps must be >= 1, got {substeps}")
    xs, us, ps = ca.SX.sym("x", model.nx), ca.SX.sym("u", model.nu), ca.SX.sym("p", model.np)
    ts, dts = ca.SX.sym("t"), ca.SX.sym("dt")
    h = dts / substeps
    xk, tk = xs, ts
    for _ in range(substeps):
        k1 = model.rhs(xk, us, ps, tk)
        k2 = model.rhs(xk + h / 2 * k1, us, ps, tk + h / 2)
        k3 = model.rhs(xk + h / 2 * k2, us, ps, tk + h / 2)
        k4 = model.rhs(xk + h * k3, us, ps, tk + h)
        xk = xk + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        tk = tk + h
    return ca.Function(name, [xs, us, ps, ts, dts], [xk])
