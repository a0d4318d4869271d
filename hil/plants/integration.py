"""Fixed-step classical Runge–Kutta (RK4) on small plain-float state vectors.

The HIL plants have a handful of states, so plain Python floats are faster than numpy arrays here.
Reference: Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Springer
1993, §II.1 (the classical fourth-order method).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Rhs = Callable[[Sequence[float]], list[float]]


def rk4(rhs: Rhs, state: Sequence[float], dt_s: float, max_substep_s: float) -> list[float]:
    """Advance ``state`` by ``dt_s`` seconds with RK4 in equal substeps no longer than ``max_substep_s``.

    ``rhs(state)`` returns the time derivative (inputs are held constant over the step, zero-order hold,
    as a PLC scan would hold them).
    """
    if dt_s <= 0.0:
        return list(state)
    n = max(1, math.ceil(dt_s / max_substep_s - 1e-9))
    h = dt_s / n
    x = list(state)
    for _ in range(n):
        k1 = rhs(x)
        k2 = rhs([xi + 0.5 * h * ki for xi, ki in zip(x, k1, strict=True)])
        k3 = rhs([xi + 0.5 * h * ki for xi, ki in zip(x, k2, strict=True)])
        k4 = rhs([xi + h * ki for xi, ki in zip(x, k3, strict=True)])
        x = [
            xi + h / 6.0 * (a + 2.0 * b + 2.0 * c + d)
            for xi, a, b, c, d in zip(x, k1, k2, k3, k4, strict=True)
        ]
    return x
