"""What a rapid-equilibrium SMA run needs at its start: salt > 0 in the column and all through the inlet programme,
and the bound states in equilibrium with the liquid.

With ``binding = "rapid_equilibrium"`` the SMA column keeps its bound concentrations as states and holds them at
equilibrium by the differentiated equilibrium relation (:class:`process_models.chromatography.isotherms.
StericMassActionIsotherm`): that keeps an equilibrium, it does not make one, and ``q*`` is singular at zero salt. The
case loader and the section-wise simulator (:mod:`process_models.chromatography.column`) refuse a start that breaks
either, with the state or step named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from process_models.chromatography.inlet import InletProgram
from process_models.chromatography.isotherms import IsothermError, sma_equilibrium_bound
from process_models.chromatography.transport import ColumnLayout
from process_models.declaration import CompiledModel

EQUILIBRIUM_START_TOLERANCE = 1e-6
"""Largest ``|q - q*(c)|`` accepted in the initial state, relative to the ionic capacity."""


def _lowest_inlet_value(program: InletProgram, component: int) -> tuple[float, str]:
    """The smallest inlet concentration of ``component`` over the programme (exact for the cubic per section) and
    the section where it occurs."""
    lowest, where = math.inf, ""
    for section, a, b in program.section_bounds():
        coeff = section.coefficients()[:, component]
        poly = np.polynomial.Polynomial(coeff)
        candidates = [0.0, b - a] + [float(r.real) for r in poly.deriv().roots()
                                     if abs(r.imag) < 1e-12 and 0.0 < r.real < b - a]
        value = min(float(poly(tau)) for tau in candidates)
        if value < lowest:
            lowest, where = value, section.name
    return lowest, where


def rapid_equilibrium_start_problems(layout: ColumnLayout, model: CompiledModel, state: np.ndarray,
                                     program: InletProgram, parameters: Mapping[str, float] | None = None) -> list[str]:
    """What keeps a rapid-equilibrium SMA run (bound states held at equilibrium) from starting; empty otherwise.

    The salt (component 0) must be > 0 in the initial liquid and all through the inlet programme (``q*`` is
    singular at ``c_0 = 0``), and the initial bound concentrations must be in equilibrium with the initial liquid
    (pore liquid; ED: bulk) within :data:`EQUILIBRIUM_START_TOLERANCE` x Lambda: nothing would hold the mass balance
    otherwise. ``state``: the flat state vector of ``model`` (the column's compiled model). Other columns: always
    empty."""
    if not layout.implicit_equilibrium:
        return []
    comps = layout.components
    values = model.declaration.parameter_values(parameters)
    states = model.unpack_states(state)
    liquid_kind = "pore" if layout.shells else "bulk"
    problems: list[str] = []
    lowest, where = _lowest_inlet_value(program, 0)
    if not lowest > 0:
        problems.append(f"rapid_equilibrium SMA needs the salt '{comps[0]}' > 0 in the inlet (q* is singular at "
                        f"c_salt = 0); step/section '{where}' goes down to {lowest:g} mol/m3")
    for kind in dict.fromkeys(("bulk", liquid_kind)):
        low = float(np.min(states[f"{kind}_concentration_{comps[0]}"]))
        if not low > 0:
            problems.append(f"[initial_state] '{kind}_concentration_{comps[0]}' = {low:g} mol/m3: rapid_equilibrium "
                            "SMA needs the salt > 0 (q* is singular at c_salt = 0)")
    if problems:
        return problems
    liquid = [np.asarray(states[f"{liquid_kind}_concentration_{c}"]) for c in comps]
    try:
        expected = sma_equilibrium_bound(liquid, values, comps)
    except IsothermError as exc:
        return [str(exc)]
    tolerance = EQUILIBRIUM_START_TOLERANCE * float(values["ionic_capacity"])
    for c, q_eq in zip(comps, expected, strict=True):
        given = np.asarray(states[f"bound_concentration_{c}"])
        worst = int(np.argmax(np.abs(given - q_eq)))
        if abs(given[worst] - q_eq[worst]) > tolerance:
            problems.append(f"[initial_state] 'bound_concentration_{c}' = {given[worst]:g} (entry {worst}) is not in "
                            f"SMA equilibrium with the initial {liquid_kind} liquid: expected {q_eq[worst]:.10g} "
                            "mol/m3 solid (rapid_equilibrium binding; ChromatographyColumn.initial_state(liquid) "
                            "gives the equilibrium state)")
    return problems
