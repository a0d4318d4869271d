"""Simulating crystallizer models with well-scaled states.

The crystallizer's SI states span many decades (a concentration of 0.3 kg/kg next to mu0 ~ 1e7 /kg,
mu4 ~ 1e-8 m^4/kg and a number density ~ 1e13 /(m kg)), so one scalar absolute tolerance cannot suit them
all. :func:`scale_model` derives a declaration whose states are the SI states divided by fixed scales
(``x = D z``, ``dz/dt = f(D z)/D``; outputs untouched), and :func:`simulate_scaled` integrates that one with
:func:`process_models.simulator.simulate` and returns the trajectory in SI units again. The scaling is a
change of variables only: every equation and output is the original declaration's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import casadi as ca
import numpy as np

from process_models.declaration import (
    CompiledModel,
    Equations,
    ModelDeclaration,
    Symbols,
    compile_model,
)
from process_models.simulator import InputSpec, SimulationResult, simulate

# Typical magnitudes used as floors for the scales (a crystallizer with ~1e6 crystals of ~100 um per kg).
_NOMINAL_SIZE_M = 1e-4
_NOMINAL_COUNT_PER_KG = 1e6
NOMINAL_MAGNITUDES: dict[str, float] = {
    "solute_concentration": 0.1,
    "temperature": 300.0,
    **{f"mu{k}": _NOMINAL_COUNT_PER_KG * _NOMINAL_SIZE_M**k for k in range(5)},
    "number_density": _NOMINAL_COUNT_PER_KG / _NOMINAL_SIZE_M,
}


def state_scales(declaration: ModelDeclaration,
                 typical_state: Mapping[str, float | np.ndarray] | None = None) -> dict[str, float]:
    """One positive scale per state: max(|typical value|, nominal magnitude); a vector state gets one scale.

    ``typical_state`` is usually the initial state.
    """
    scales: dict[str, float] = {}
    for v in declaration.states:
        floor = NOMINAL_MAGNITUDES.get(v.name, 1.0)
        typical = 0.0
        if typical_state is not None and v.name in typical_state:
            typical = float(np.max(np.abs(np.asarray(typical_state[v.name], dtype=float))))
        scales[v.name] = max(typical, floor)
    return scales


def scaled_declaration(declaration: ModelDeclaration, scales: Mapping[str, float]) -> ModelDeclaration:
    """The same model with states ``z = x / scale`` (dimensionless); outputs, inputs, parameters unchanged."""
    missing = [v.name for v in declaration.states if v.name not in scales]
    if missing:
        raise KeyError(f"scaled_declaration: no scale for states {missing}")
    states = tuple(
        replace(v, unit=f"({v.unit})/{scales[v.name]:.6g}", lower=v.lower / scales[v.name],
                upper=v.upper / scales[v.name], description=f"{v.description} (scaled)")
        for v in declaration.states
    )

    def equations(s: Symbols) -> Equations:
        x = {name: sym * scales[name] for name, sym in s.x.items()}
        eq = declaration.equations(Symbols(x=x, u=s.u, p=s.p, t=s.t))
        derivatives = {name: ca.SX(expr) / scales[name] for name, expr in eq.derivatives.items()}
        return Equations(derivatives, eq.outputs, eq.state_constraints)

    return ModelDeclaration(
        name=f"{declaration.name}_scaled", description=f"{declaration.description} (scaled states)",
        states=states, inputs=declaration.inputs, parameters=declaration.parameters,
        outputs=declaration.outputs, equations=equations, reference=declaration.reference,
    )


@dataclass(frozen=True)
class ScaledModel:
    """A compiled scaled model, its scales and the compiled original (for SI results). Build once, reuse."""

    original: CompiledModel
    scaled: CompiledModel
    scales: Mapping[str, float]

    def scale_vector(self) -> np.ndarray:
        out = np.ones(self.original.nx)
        for name, sl in self.original.state_slices.items():
            out[sl] = self.scales[name]
        return out


def scale_model(declaration: ModelDeclaration,
                typical_state: Mapping[str, float | np.ndarray] | None = None) -> ScaledModel:
    """Compile ``declaration`` and its scaled twin (scales from :func:`state_scales`)."""
    scales = state_scales(declaration, typical_state)
    return ScaledModel(compile_model(declaration), compile_model(scaled_declaration(declaration, scales)), scales)


def simulate_scaled(model: ScaledModel, initial_state: Mapping[str, float | np.ndarray], times_s: Sequence[float],
                    inputs: Mapping[str, InputSpec], parameters: Mapping[str, float] | None = None,
                    rtol: float = 1e-8, atol: float = 1e-10, progress: bool = False,
                    integrator_options: Mapping[str, Any] | None = None) -> SimulationResult:
    """:func:`process_models.simulator.simulate` on the scaled states; the result is in SI units.

    ``atol`` applies to the scaled (order-one) states, i.e. it is relative to each state's scale.
    """
    z0 = {}
    for name, value in initial_state.items():
        scale = model.scales.get(name)
        z0[name] = value if scale is None else np.asarray(value, dtype=float) / scale
    result = simulate(model.scaled, z0, times_s, inputs, parameters, rtol=rtol, atol=atol, progress=progress,
                      integrator_options=integrator_options)
    return SimulationResult(
        model=model.original, times_s=result.times_s, states=result.states * model.scale_vector()[:, None],
        outputs=result.outputs, inputs=result.inputs, wall_time_s=result.wall_time_s, parameters=result.parameters,
    )
